"""Audit replay: re-run a stored day's inputs through the domain and compare every decision.

The inputs on record are the scan's snapshot (`scan.snapshot_taken`), the session times and start
equity (`day.started`) and the minutes of bars (`market.bars_closed`). Decisions carry
deterministic ids, so each replayed decision is matched to the recorded one by id and compared
field by field; a difference names the event and what changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import (
    FixedCalendar,
    InMemoryMarketData,
    InMemoryNews,
)
from fin_agent.app.bootstrap import build, running
from fin_agent.app.config.settings import Settings
from fin_agent.app.runner import run_session
from fin_agent.domain.errors import DataError
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
from fin_agent.domain.values import Session
from fin_agent.ports.store import Store

DECISIONS: tuple[type[DomainEvent], ...] = (
    ScanCompleted,
    SignalGenerated,
    PlanCreated,
    PlanRejected,
    OrderPlaced,
    PlanExecuted,
    PlanExpired,
    PositionClosed,
    RiskStateChanged,
    ReportDaily,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One decision that differs: missing from the replay, new in it, or changed."""

    kind: str
    event_type: str
    event_id: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditResult:
    """The outcome of replaying one day."""

    day: date
    decisions: int
    differences: tuple[Difference, ...]

    @property
    def matches(self) -> bool:
        """True when every decision was made again exactly."""
        return not self.differences


async def audit_day(store: Store, settings: Settings, day: date) -> AuditResult:
    """Replay `day` from the store with the current strategy and compare its decisions."""
    recorded = await store.events(day=day)
    started = _one(recorded, DayStarted, day)
    snapshot = _one(recorded, SnapshotTaken, day).snapshot
    market = InMemoryMarketData()
    news = InMemoryNews()
    for item in snapshot.symbols:
        market.add_daily(item.daily_bars)
        if item.premarket is not None:
            market.premarkets[(item.symbol, day)] = item.premarket
        news.items.extend(item.headlines)
    market.add_intraday(b for e in recorded if isinstance(e, BarsClosed) for b in e.bars)
    session = Session(day=day, open=started.session_open, close=started.session_close)
    calendar = FixedCalendar()
    container = await build(
        settings, market=market, news=news, calendar=calendar, bus="memory", store="memory"
    )
    async with running(container):
        await run_session(
            container,
            session,
            started.start_equity,
            universe=[s.symbol for s in snapshot.symbols],
        )
        replayed = await container.store.events(day=day)
    return compare(day, recorded, replayed)


def compare(
    day: date, recorded: Sequence[DomainEvent], replayed: Sequence[DomainEvent]
) -> AuditResult:
    """Match decisions by id and compare their fields (time of the decision excluded)."""
    codec = EventCodec(default_registry())
    kinds = tuple(DECISIONS)
    before = {e.id: e for e in recorded if isinstance(e, kinds)}
    after = {e.id: e for e in replayed if isinstance(e, kinds)}
    differences: list[Difference] = []
    for event_id, old in before.items():
        new = after.get(event_id)
        if new is None:
            differences.append(
                Difference(kind="missing", event_type=old.TYPE, event_id=event_id,
                           detail="recorded, but the replay did not decide it")
            )  # fmt: skip
            continue
        old_data = json.loads(codec.encode(old)["data"])
        new_data = json.loads(codec.encode(new)["data"])
        if old_data != new_data:
            keys = old_data.keys() | new_data.keys()
            changed = sorted(k for k in keys if old_data.get(k) != new_data.get(k))
            differences.append(
                Difference(kind="changed", event_type=old.TYPE, event_id=event_id,
                           detail=f"fields differ: {', '.join(changed)}")
            )  # fmt: skip
    for event_id, new in after.items():
        if event_id not in before:
            differences.append(
                Difference(kind="extra", event_type=new.TYPE, event_id=event_id,
                           detail="the replay decided it, the record does not have it")
            )  # fmt: skip
    return AuditResult(day=day, decisions=len(before), differences=tuple(differences))


E = TypeVar("E", bound=DomainEvent)


def _one(events: Sequence[DomainEvent], kind: type[E], day: date) -> E:
    for event in events:
        if isinstance(event, kind):
            return event
    raise DataError(
        f"no {kind.TYPE} event stored for {day}: the day cannot be replayed (it was recorded "
        "without its inputs, or `fin-agent db` points at another store)"
    )
