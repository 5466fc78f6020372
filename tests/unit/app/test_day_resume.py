"""Resuming a day: the state rebuilt from a day's stored events equals the state the day had.

Checked on simulated days (the plan outcomes the simulator produces: expired, rejected by risk,
stopped, targets, flattened): the restored
plans, ledger and bookkeeping equal the original's; a day cut before a close holds the position."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.day.resume import restore
from fin_agent.app.day.times import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.runner import run_session
from fin_agent.domain.events import DomainEvent
from fin_agent.domain.trade_plan import PlanState

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.asyncio


def snapshot(day: TradingDay) -> tuple[object, ...]:
    """The day's state; trades closed in the same instant may come back in another order."""
    return (
        {s: (p.state, p.fill_price, p.exit_price) for s, p in day.plans.items()},
        sorted(day.ledger.open_positions, key=lambda p: p.plan_id),
        sorted(day.ledger.closed_trades, key=lambda t: t.plan_id),
        day.orders_placed,
        day.risk.state,
        day.planned,
        (day.config_version, day.strategy_version),
    )


async def test_a_day_restored_from_its_events_equals_the_day_at_every_cut() -> None:
    settings = load_settings(REPO / "config.yaml", environ={})
    container = await build_simulation(settings, bus="memory", store="memory")
    sessions = container.calendar.sessions(
        settings.simulator.start_date, settings.simulator.start_date + timedelta(days=14)
    )
    outcomes: set[PlanState] = set()
    async with running(container):
        for session in sessions[:8]:
            await run_session(container, session, Decimal(100_000))
            day = container.agent.day
            assert day is not None
            events = list(await container.store.events(day=session.day))
            outcomes |= {p.state for p in day.plans.values()}
            fresh = TradingDay(
                session=session,
                times=day.times,
                strategy=day.strategy,
                start_equity=day.ledger.start_equity,
                ports=DayPorts(
                    clock=container.clock,
                    market=container.market,
                    news=container.news,
                    orders=PaperBroker(day.strategy.costs),
                    bus=container.bus,
                ),
            )
            resumed = restore(fresh, events)
            assert snapshot(fresh) == snapshot(day)
            assert resumed.working == ()  # the day is over: nothing works, nothing is held
            assert resumed.held == ()
    assert {PlanState.CLOSED, PlanState.EXPIRED} <= outcomes


async def test_a_day_cut_while_a_position_is_open_gives_the_broker_its_order_back() -> None:
    settings = load_settings(REPO / "config.yaml", environ={})
    container = await build_simulation(settings, bus="memory", store="memory")
    sessions = container.calendar.sessions(
        settings.simulator.start_date, settings.simulator.start_date + timedelta(days=14)
    )
    cuts = 0
    async with running(container):
        for session in sessions[:8]:
            await run_session(container, session, Decimal(100_000))
            day = container.agent.day
            assert day is not None
            events = list(await container.store.events(day=session.day))
            for trade in day.ledger.closed_trades:
                # Cut just before the close: the events up to then hold the position open.
                before: list[DomainEvent] = [e for e in events if e.occurred_at < trade.exit_at]
                fresh = TradingDay(
                    session=session,
                    times=day.times,
                    strategy=day.strategy,
                    start_equity=day.ledger.start_equity,
                    ports=DayPorts(
                        clock=container.clock,
                        market=container.market,
                        news=container.news,
                        orders=PaperBroker(day.strategy.costs),
                        bus=container.bus,
                    ),
                )
                resumed = restore(fresh, before)
                held = {order.client_order_id for order, _bar in resumed.held}
                assert trade.plan_id in held
                assert trade.plan_id in {p.plan_id for p in fresh.ledger.open_positions}
                cuts += 1
    assert cuts > 0
