"""The events a trading day makes, built in one place: the scan's, a refusal, a state change,
and the causal order in which a day made them (for folding a day's stored events).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.events import (
    BarsClosed,
    DayStarted,
    DomainEvent,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    ScanCompleted,
    SignalGenerated,
    SnapshotTaken,
)
from fin_agent.domain.gap_scanner import ScanResult, UniverseSnapshot
from fin_agent.domain.risk_engine import StateChange
from fin_agent.domain.trade_plan import PlanRejectReason
from fin_agent.domain.values import Symbol


def scan_events(
    key: str,
    day: date,
    *,
    start_equity: Decimal,
    strategy: str,
    times: DayTimes,
    snapshot: UniverseSnapshot,
    result: ScanResult,
    versions: Mapping[str, str],
    at: datetime,
) -> list[DomainEvent]:
    """A day's start: the day, the scan's inputs (as record `key`, attached), its result and a
    signal per candidate."""
    events: list[DomainEvent] = [
        DayStarted(
            id=DayStarted.id_for(key),
            occurred_at=at,
            trading_day=day,
            start_equity=start_equity,
            strategy=strategy,
            session_open=times.opens_at,
            session_close=times.closes_at,
        ),
        SnapshotTaken.of(key, at=at, day=day, snapshot=snapshot),
        ScanCompleted(
            id=ScanCompleted.id_for(key),
            occurred_at=at,
            trading_day=day,
            result=result,
            config_version=versions.get("config_version", ""),
            strategy_version=versions.get("strategy_version", ""),
        ),
    ]
    return [*events, *signal_events(key, day, result, at)]


def signal_events(key: str, day: date, result: ScanResult, at: datetime) -> list[DomainEvent]:
    """A signal per candidate of the scan `result` (the same ids each time they are made)."""
    return [
        SignalGenerated(
            id=SignalGenerated.id_for(f"{key}:{c.symbol}"),
            occurred_at=at,
            trading_day=day,
            candidate=c,
        )
        for c in result.candidates
    ]


def state_changed(day: date, change: StateChange, at: datetime) -> RiskStateChanged:
    """The event of a trading-state change."""
    return RiskStateChanged(
        id=RiskStateChanged.id_for(f"{day}:{change.current}:{at.isoformat()}"),
        occurred_at=at,
        trading_day=day,
        previous=change.previous,
        current=change.current,
        reason=change.reason,
        detail=change.detail,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A `PlanRejected` but for its detail, which the deciding code adds."""

    id: str
    day: date
    plan_id: str
    symbol: Symbol
    reason: str
    at: datetime

    def with_detail(self, detail: str) -> PlanRejected:
        return PlanRejected(
            id=self.id,
            occurred_at=self.at,
            trading_day=self.day,
            plan_id=self.plan_id,
            symbol=self.symbol,
            reason=self.reason,
            detail=detail,
        )


# Within one instant, the order in which a day makes its events (a stop can close in the bar
# its entry filled in, and the loss limit follows the close that reached it).
_ORDER: dict[str, int] = {
    DayStarted.TYPE: 0,
    SnapshotTaken.TYPE: 1,
    ScanCompleted.TYPE: 2,
    SignalGenerated.TYPE: 3,
    BarsClosed.TYPE: 4,
    PlanCreated.TYPE: 5,
    PlanRejected.TYPE: 6,
    OrderPlaced.TYPE: 7,
    PlanExecuted.TYPE: 8,
    PositionClosed.TYPE: 9,
    RiskStateChanged.TYPE: 10,
    PlanExpired.TYPE: 11,
    ReportDaily.TYPE: 12,
}


def causal_order(event: DomainEvent) -> tuple[datetime, float]:
    if isinstance(event, PlanRejected) and event.reason.startswith(PlanRejectReason.ORDER_REJECTED):
        return event.occurred_at, _ORDER[OrderPlaced.TYPE] + 0.5  # the broker refused the order
    return event.occurred_at, _ORDER.get(event.TYPE, len(_ORDER))
