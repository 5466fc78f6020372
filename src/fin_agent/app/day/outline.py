"""A day's decisions read back from its stored events: the scan's candidates, the rejections counted
by rule, and for each candidate its plan (if any) and why it was or was not traded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fin_agent.domain.events import (
    DomainEvent,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ScanCompleted,
)
from fin_agent.domain.gap_scanner import Candidate, ScanResult
from fin_agent.domain.trade_plan import TradePlan
from fin_agent.ports.store import Store

__all__ = [
    "OUTLINE_TYPES",
    "DayOutline",
    "Decision",
    "Outcome",
    "outline_day",
    "outline_days",
    "rejections_by_rule",
]

OUTLINE_TYPES = (
    ScanCompleted.TYPE,
    PlanCreated.TYPE,
    PlanRejected.TYPE,
    PlanExecuted.TYPE,
    PlanExpired.TYPE,
    PositionClosed.TYPE,
)


class Outcome(StrEnum):
    """What became of a candidate by the day's end."""

    NOT_PLANNED = "not_planned"  # refused while planning (no opening range, zero size...)
    TRADED = "traded"
    REJECTED = "rejected"  # its plan was refused (a risk limit) and never filled
    EXPIRED = "expired"  # its entry never triggered before the deadline
    OPEN = "open"  # planned, still armed when the events end


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """One refusal of a candidate or plan: the reason code and its words."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One candidate of the day: its scan figures, its plan if one was made, and its outcome."""

    candidate: Candidate
    plan: TradePlan | None
    outcome: Outcome
    refusals: tuple[Refused, ...]
    exit_reason: str | None = None
    net_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DayOutline:
    """A day's candidates with their decisions, and the scan's rejections counted by rule."""

    day: date
    decisions: tuple[Decision, ...]
    scan_rejections: tuple[tuple[str, int], ...]  # (rule, count), most common first


def outline_day(day: date, events: Sequence[DomainEvent]) -> DayOutline:
    """The outline of `day` from its events (a day without a scan has no candidates)."""
    scans = [e for e in events if isinstance(e, ScanCompleted)]
    if not scans:
        return DayOutline(day=day, decisions=(), scan_rejections=())
    result = scans[-1].result
    plans = {e.plan.symbol: e.plan for e in events if isinstance(e, PlanCreated)}
    refusals: dict[str, list[Refused]] = {}
    for e in events:
        if isinstance(e, PlanRejected):
            refusals.setdefault(e.symbol, []).append(Refused(reason=e.reason, detail=e.detail))
    executed = {e.plan_id for e in events if isinstance(e, PlanExecuted)}
    expired = {e.plan_id for e in events if isinstance(e, PlanExpired)}
    closed = {e.trade.plan_id: e.trade for e in events if isinstance(e, PositionClosed)}
    decisions: list[Decision] = []
    for candidate in result.candidates:
        plan = plans.get(candidate.symbol)
        refused = tuple(refusals.get(candidate.symbol, ()))
        trade = closed.get(plan.id) if plan is not None else None
        if plan is None:
            outcome = Outcome.NOT_PLANNED
        elif plan.id in executed:
            outcome = Outcome.TRADED
        elif refused:
            outcome = Outcome.REJECTED
        elif plan.id in expired:
            outcome = Outcome.EXPIRED
        else:
            outcome = Outcome.OPEN
        decisions.append(
            Decision(
                candidate=candidate,
                plan=plan,
                outcome=outcome,
                refusals=refused,
                exit_reason=str(trade.exit_reason) if trade is not None else None,
                net_pnl=trade.net_pnl if trade is not None else None,
            )
        )
    return DayOutline(
        day=day, decisions=tuple(decisions), scan_rejections=rejections_by_rule(result)
    )


def rejections_by_rule(result: ScanResult) -> tuple[tuple[str, int], ...]:
    """A scan's rejections counted by the rule each symbol failed first, most common first."""
    return tuple(Counter(str(r.rule) for r in result.rejections).most_common())


async def outline_days(store: Store, days: Sequence[date]) -> list[DayOutline]:
    """The outline of each of `days` from the store's events."""
    return [outline_day(day, await store.events(day=day, types=OUTLINE_TYPES)) for day in days]
