"""The handlers of one trading day, driven through in-memory adapters with hand-worked figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, time

import pytest

from day_market import DAY, NY, D, bar, et, market_with, of_type
from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.memory import (
    FixedCalendar,
    FixedClock,
    InMemoryEventBus,
    InMemoryMarketData,
    InMemoryNews,
)
from fin_agent.adapters.storage.memory_scan_records import InMemoryScanRecords
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.events import (
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    SignalGenerated,
)
from fin_agent.domain.gap_scanner import RejectRule
from fin_agent.domain.orders import ExitReason
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.domain.rules import RiskLimits, Strategy
from fin_agent.domain.trade_plan import PlanState
from fin_agent.domain.values import Bar, symbol


def make_day(
    market: InMemoryMarketData,
    strategy: Strategy | None = None,
    entry_guard: Callable[[], str | None] | None = None,
) -> tuple[TradingDay, InMemoryEventBus]:
    strategy = strategy or Strategy()
    session = FixedCalendar().session(DAY)
    assert session is not None
    bus = InMemoryEventBus()
    ports = DayPorts(
        clock=FixedClock(et(9, 0)),
        market=market,
        news=InMemoryNews(),
        orders=PaperBroker(strategy.costs),
        bus=bus,
        records=InMemoryScanRecords(),
    )
    times = DayTimes.of(session, strategy, NY, time(9, 0))
    day = TradingDay(
        session=session,
        times=times,
        strategy=strategy,
        start_equity=D(100_000),
        ports=ports,
        entry_guard=entry_guard,
    )
    return day, bus


async def run(day: TradingDay, market: InMemoryMarketData) -> None:
    await day.scan()
    bars = await market.session_bars(DAY, day.watchlist)
    minutes: dict[datetime, list[Bar]] = {}
    for b in bars:
        minutes.setdefault(b.start, []).append(b)
    for start in sorted(minutes):
        await day.on_bars(minutes[start])


@pytest.mark.asyncio
async def test_trading_day_takes_a_breakout_to_its_target_with_hand_worked_figures() -> None:
    # entry 11.20 + 0.01 = 11.21; stop = max(10.90 - 0.01, ceil(11.21 - 0.5 * 0.40)) = 11.01;
    # R = 0.20; target = 11.21 + 2 * 0.20 = 11.61; size = min(floor(1000 / 0.20) = 5000,
    # floor(25000 / 11.21) = 2230) = 2230; P&L = (11.61 - 11.21) * 2230 = 892.00, R multiple 2.
    market = market_with(
        "GAPR",
        extra_bars=[
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPR", 9, 36, "11.30", "11.65", "11.28", "11.60"),
        ],
    )
    day, bus = make_day(market)

    await run(day, market)
    report = await day.finish()

    [signal] = of_type(bus, SignalGenerated)
    assert signal.candidate.symbol == "GAPR"
    assert signal.candidate.gap_pct == D(10)
    [plan] = [e.plan for e in of_type(bus, PlanCreated)]
    assert (plan.entry, plan.stop, plan.target, plan.qty) == (
        D("11.21"),
        D("11.01"),
        D("11.61"),
        2230,
    )
    [executed] = of_type(bus, PlanExecuted)
    assert executed.fill.price == D("11.21")
    [closed] = of_type(bus, PositionClosed)
    assert closed.trade.exit_price == D("11.61")
    assert closed.trade.exit_reason is ExitReason.TARGET
    assert closed.trade.net_pnl == D("892.00")
    assert closed.trade.r_multiple == D("2.0000")
    assert day.plans[symbol("GAPR")].state is PlanState.CLOSED
    assert report.performance.net_pnl == D("892.00")
    assert report.performance.end_equity == D("100892.00")
    [scan_rejection] = [r for r in day.scan_result.rejections] if day.scan_result else []
    assert (scan_rejection.symbol, scan_rejection.rule) == ("FLAT", RejectRule.GAP_BAND)
    assert isinstance(bus.published[-1], ReportDaily)


@pytest.mark.asyncio
async def test_trading_day_flattens_at_the_open_of_the_1555_bar() -> None:
    market = market_with(
        "GAPR",
        extra_bars=[
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPR", 12, 0, "11.30", "11.40", "11.25", "11.35"),
            bar("GAPR", 15, 55, "11.33", "11.36", "11.30", "11.31"),
            bar("GAPR", 15, 56, "11.31", "11.70", "11.31", "11.69"),
        ],
    )
    day, bus = make_day(market)

    await run(day, market)
    await day.finish()

    [closed] = of_type(bus, PositionClosed)
    assert closed.trade.exit_reason is ExitReason.FLATTEN
    assert closed.trade.exit_price == D("11.33")
    assert closed.trade.exit_at == et(15, 55)


@pytest.mark.asyncio
async def test_trading_day_expires_a_plan_untriggered_by_the_entry_deadline() -> None:
    market = market_with(
        "GAPR",
        extra_bars=[
            bar("GAPR", 10, 29, "11.00", "11.20", "10.95", "11.10"),
            bar("GAPR", 10, 30, "11.10", "11.50", "11.10", "11.40"),  # too late to enter
        ],
    )
    day, bus = make_day(market)

    await run(day, market)
    await day.finish()

    assert [e.symbol for e in of_type(bus, PlanExpired)] == ["GAPR"]
    assert of_type(bus, OrderPlaced) == []
    assert day.plans[symbol("GAPR")].state is PlanState.EXPIRED


@pytest.mark.asyncio
async def test_trading_day_refuses_entries_beyond_max_open_positions_by_scan_rank() -> None:
    breakout = [bar(s, 9, 35, "11.15", "11.25", "11.12", "11.22") for s in ("AAA", "BBB", "CCC")]
    market = market_with("AAA", "BBB", "CCC", extra_bars=breakout)
    strategy = replace(Strategy(), risk=RiskLimits(max_open_positions=2))
    day, bus = make_day(market, strategy)

    await run(day, market)

    placed = [e.order.symbol for e in of_type(bus, OrderPlaced)]
    assert placed == ["AAA", "BBB"]  # equal gaps and volume: ranked by symbol
    [refusal] = of_type(bus, PlanRejected)
    assert refusal.symbol == "CCC"
    assert refusal.reason == "risk:max_open_positions"
    assert day.plans[symbol("CCC")].state is PlanState.PLANNED  # refused, but still armed


@pytest.mark.asyncio
async def test_a_plan_refused_for_the_position_cap_stays_armed_only_until_the_entry_deadline() -> (
    None
):
    # DESIGN 2.3: CCC is refused at 09:35 and again at 10:29 while AAA holds the one slot; AAA
    # stops out in the 10:30 bar, but CCC's 10:31 trigger is past plan.entry_deadline: it expires.
    market = market_with(
        "AAA",
        "CCC",
        extra_bars=[
            bar("AAA", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("CCC", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("AAA", 10, 29, "11.20", "11.24", "11.18", "11.22"),
            bar("CCC", 10, 29, "11.20", "11.30", "11.18", "11.28"),
            bar("AAA", 10, 30, "11.10", "11.10", "10.95", "11.00"),
            bar("CCC", 10, 31, "11.28", "11.40", "11.25", "11.35"),
        ],
    )
    strategy = replace(Strategy(), risk=RiskLimits(max_open_positions=1))
    day, bus = make_day(market, strategy)

    await run(day, market)
    await day.finish()

    assert [e.order.symbol for e in of_type(bus, OrderPlaced)] == ["AAA"]
    [refusal] = of_type(bus, PlanRejected)  # announced once, though refused at 09:35 and 10:29
    assert (refusal.symbol, refusal.reason) == ("CCC", "risk:max_open_positions")
    assert [e.symbol for e in of_type(bus, PlanExpired)] == ["CCC"]
    assert day.plans[symbol("CCC")].state is PlanState.EXPIRED


@pytest.mark.asyncio
async def test_a_plan_refused_for_the_position_cap_enters_once_an_exit_frees_a_slot() -> None:
    # DESIGN 2.3: a plan refused for the cap stays armed until its deadline and is checked again
    # on later bars; a bar's exits free their slots from the next bar on. AAA stops out in the
    # 09:36 bar (low 10.95 <= stop 11.01), where CCC is still refused; CCC enters at 09:37.
    market = market_with(
        "AAA",
        "CCC",
        extra_bars=[
            bar("AAA", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("CCC", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("AAA", 9, 36, "11.10", "11.10", "10.95", "11.00"),
            bar("CCC", 9, 36, "11.22", "11.30", "11.20", "11.28"),
            bar("CCC", 9, 37, "11.28", "11.35", "11.25", "11.30"),
        ],
    )
    strategy = replace(Strategy(), risk=RiskLimits(max_open_positions=1))
    day, bus = make_day(market, strategy)

    await run(day, market)

    assert [(e.order.symbol, e.occurred_at) for e in of_type(bus, OrderPlaced)] == [
        ("AAA", et(9, 35)),
        ("CCC", et(9, 37)),
    ]
    [refusal] = of_type(bus, PlanRejected)  # announced once, though refused at 09:35 and 09:36
    assert (refusal.symbol, refusal.occurred_at) == ("CCC", et(9, 35))
    executed = {e.fill.symbol: e.fill.price for e in of_type(bus, PlanExecuted)}
    assert executed[symbol("CCC")] == D("11.28")  # max(trigger 11.21, the 09:37 open 11.28)
    assert day.plans[symbol("CCC")].state is PlanState.FILLED


@pytest.mark.asyncio
async def test_trading_day_stops_new_entries_after_the_daily_loss_limit() -> None:
    # A stop-out loses (11.01 - 11.21) * 2230 = -446.00; a 0.4 % limit is 400 of 100,000.
    market = market_with(
        "AAA",
        "BBB",
        extra_bars=[
            bar("AAA", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("AAA", 9, 36, "11.10", "11.10", "10.95", "11.00"),
            bar("BBB", 9, 40, "11.15", "11.25", "11.12", "11.22"),
        ],
    )
    strategy = replace(Strategy(), risk=RiskLimits(daily_loss_limit_pct=D("0.4")))
    day, bus = make_day(market, strategy)

    await run(day, market)

    [closed] = of_type(bus, PositionClosed)
    assert closed.trade.net_pnl == D("-446.00")
    [change] = of_type(bus, RiskStateChanged)
    assert change.current is TradingState.REDUCING
    [refusal] = of_type(bus, PlanRejected)
    assert (refusal.symbol, refusal.reason) == ("BBB", "risk:reducing")


@pytest.mark.asyncio
async def test_a_store_down_too_long_halts_new_entries_and_its_return_resumes_them() -> None:
    market = market_with(
        "GAPR",
        extra_bars=[
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),  # triggers while halted
            bar("GAPR", 9, 36, "11.22", "11.30", "11.20", "11.28"),  # and again once resumed
        ],
    )
    blocked: list[str | None] = ["the store has refused writes for 901 s"]
    day, bus = make_day(market, entry_guard=lambda: blocked[0])  # the coordinator's guard
    await day.scan()
    minutes: dict[datetime, list[Bar]] = {}
    for b in await market.session_bars(DAY, day.watchlist):
        minutes.setdefault(b.start, []).append(b)
    for start in sorted(minutes):
        if start == et(9, 36):
            blocked[0] = None
        await day.on_bars(minutes[start])

    changes = [(e.current, e.reason, e.occurred_at) for e in of_type(bus, RiskStateChanged)]
    assert changes == [
        (TradingState.HALTED, RiskReason.STORE_OUTAGE, et(9, 30)),
        (TradingState.ACTIVE, RiskReason.STORE_OUTAGE, et(9, 36)),
    ]
    [refusal] = of_type(bus, PlanRejected)
    assert (refusal.reason, refusal.occurred_at) == ("risk:halted", et(9, 35))
    [placed] = of_type(bus, OrderPlaced)
    assert placed.occurred_at == et(9, 36)  # armed through the halt, entered after it
