"""Resuming a day: a day cut at any minute and rebuilt from its events ends as if never cut.

Each simulated day runs once straight through; then, for cuts at many minutes, a fresh day and a
fresh broker are rebuilt from the events published up to the cut (the fold, `TradingDay.resume`),
the rest of the session is fed to them, and every event of the whole day must equal the straight
run's, by id and content. A loss limit small enough to be hit checks that a resume remembers it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.memory import FixedCalendar, FixedClock, InMemoryEventBus
from fin_agent.adapters.simulator.market import SimulatedMarket
from fin_agent.adapters.storage.memory_scan_records import InMemoryScanRecords
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.events import (
    BarsClosed,
    DomainEvent,
    PlanRejected,
    PositionClosed,
    RiskStateChanged,
)
from fin_agent.domain.risk_engine import TradingState
from fin_agent.domain.rules import RiskLimits, Strategy
from fin_agent.domain.values import Bar, Session

NY = ZoneInfo("America/New_York")
pytestmark = pytest.mark.asyncio
CALENDAR = FixedCalendar()


MARKET = SimulatedMarket(seed=7, calendar=CALENDAR, universe_size=40)


def market() -> SimulatedMarket:
    return MARKET  # deterministic: every day built on it sees the same market


def new_day(
    session: Session,
    strategy: Strategy,
    bus: InMemoryEventBus,
    records: InMemoryScanRecords | None = None,
) -> TradingDay:
    """A day on `bus`, keeping its scan record in `records` (the store a restart reads)."""
    ports = DayPorts(
        clock=FixedClock(session.open),
        market=market(),
        news=market(),
        orders=PaperBroker(strategy.costs),
        bus=bus,
        records=records or InMemoryScanRecords(),
    )
    return TradingDay(
        session=session,
        times=DayTimes.of(session, strategy, NY, time(9, 0)),
        strategy=strategy,
        start_equity=Decimal(100_000),
        ports=ports,
    )


async def minutes_of(day: TradingDay, session: Session) -> list[BarsClosed]:
    bars = await market().session_bars(session.day, day.watchlist)
    return [
        BarsClosed(
            id=BarsClosed.id_for(f"{session.day}:{start.isoformat()}"),
            occurred_at=group[0].end,
            trading_day=session.day,
            bars=tuple(group),
        )
        for start, grouped in itertools.groupby(bars, key=_start)
        if (group := list(grouped))
    ]


def _start(bar: Bar) -> datetime:
    return bar.start


async def straight(session: Session, strategy: Strategy) -> tuple[list[DomainEvent], int]:
    """The uninterrupted day's events (its minutes included) and how many minutes it had."""
    bus = InMemoryEventBus()
    day = new_day(session, strategy, bus)
    await day.scan()
    minutes = await minutes_of(day, session)
    for minute in minutes:
        await bus.publish([minute])
        await day.on_bars(minute.bars)
    await day.finish()
    return list(bus.published), len(minutes)


async def cut_at(session: Session, strategy: Strategy, cut: int) -> list[DomainEvent]:
    """The day killed after `cut` minutes, rebuilt from what it had published, then finished."""
    bus, records = InMemoryEventBus(), InMemoryScanRecords()
    day = new_day(session, strategy, bus, records)
    await day.scan()
    minutes = await minutes_of(day, session)
    for minute in minutes[:cut]:
        await bus.publish([minute])
        await day.on_bars(minute.bars)
    stored = list(bus.published)  # what the store holds when the agent dies
    later = InMemoryEventBus()
    resumed = new_day(session, strategy, later, records)
    await resumed.resume(stored)
    for minute in minutes[cut:]:
        await later.publish([minute])
        await resumed.on_bars(minute.bars)
    await resumed.finish()
    return stored + list(later.published)


def by_id(events: list[DomainEvent]) -> dict[str, DomainEvent]:
    return {e.id: e for e in events}


def sessions(count: int) -> list[Session]:
    return list(CALENDAR.sessions(date(2025, 3, 3), date(2025, 3, 31)))[:count]


@pytest.mark.parametrize("session", sessions(6), ids=lambda s: str(s.day))
async def test_a_day_cut_at_any_minute_and_resumed_makes_exactly_the_events_of_the_straight_day(
    session: Session,
) -> None:
    strategy = Strategy()
    whole, minutes = await straight(session, strategy)
    for cut in sorted({0, 1, 3, 5, 6, 7, 10, 30, 60, minutes // 2, minutes - 1, minutes}):
        assert by_id(await cut_at(session, strategy, cut)) == by_id(whole), f"cut at {cut}"


async def test_a_resumed_day_remembers_the_daily_loss_limit_it_hit_before_the_restart() -> None:
    # A limit of 0.05 % of equity (50.00): the first losing trade puts the day in REDUCING.
    strategy = replace(Strategy(), risk=RiskLimits(daily_loss_limit_pct=Decimal("0.05")))
    for session in sessions(20):
        whole, _ = await straight(session, strategy)
        changes = [e for e in whole if isinstance(e, RiskStateChanged)]
        refused = [e for e in whole if isinstance(e, PlanRejected) and "reducing" in e.reason]
        if changes and refused:
            break
    else:
        pytest.fail("no simulated day hit the loss limit and then refused an entry")
    assert changes[0].current is TradingState.REDUCING
    minutes = [e for e in whole if isinstance(e, BarsClosed)]
    # Cut after the minute whose close hit the limit, before the refusal it causes.
    cut = sum(1 for m in minutes if m.occurred_at <= changes[0].occurred_at)
    assert any(m.occurred_at > changes[0].occurred_at for m in minutes[cut:])
    assert all(r.occurred_at >= minutes[cut].bars[0].start for r in refused)

    resumed = await cut_at(session, strategy, cut)

    assert by_id(resumed) == by_id(whole)


async def test_the_days_cut_above_trade_so_cuts_fall_between_entries_and_exits() -> None:
    kinds: set[str] = set()
    for session in sessions(6):
        whole, _ = await straight(session, Strategy())
        kinds |= {str(e.fill.kind) for e in whole if isinstance(e, PositionClosed)}
    assert len(kinds) >= 2, kinds  # positions closed by different rules: stop, target, flatten
