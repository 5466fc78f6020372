"""Portfolio risk through a trading day with in-memory adapters: the marked loss limit stops new
entries before any loss is realised, its flatten action closes the book, a resumed day keeps the
state, the error breaker halts on order rejections, and the VaR limit refuses an entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, time
from typing import Any

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
from fin_agent.domain.errors import OrderRejectedError
from fin_agent.domain.events import (
    OrderPlaced,
    PlanExecuted,
    PlanRejected,
    PositionClosed,
    RiskStateChanged,
)
from fin_agent.domain.orders import BracketOrder, ExitReason, RejectionCode
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.domain.rules import LossAction, LossBasis, RiskLimits, Strategy
from fin_agent.domain.values import Bar, symbol

pytestmark = pytest.mark.asyncio

# AAA enters at 11.21 (stop 11.01, 2230 shares) in the 09:35 bar; the 09:36 bar closes at 11.05,
# above the stop: open loss (11.05 - 11.21) * 2230 = -356.80, past a 0.3 % limit (300.00) with
# nothing realised. BBB triggers at 09:40.
BARS = [
    bar("AAA", 9, 35, "11.15", "11.25", "11.12", "11.22"),
    bar("AAA", 9, 36, "11.10", "11.10", "11.02", "11.05"),
    bar("AAA", 9, 37, "11.06", "11.08", "11.03", "11.04"),
    bar("BBB", 9, 40, "11.15", "11.25", "11.12", "11.22"),
]


def make_day(
    market: InMemoryMarketData,
    strategy: Strategy,
    orders: PaperBroker | None = None,
    records: InMemoryScanRecords | None = None,
    **extra: Any,
) -> tuple[TradingDay, InMemoryEventBus]:
    session = FixedCalendar().session(DAY)
    assert session is not None
    bus = InMemoryEventBus()
    ports = DayPorts(
        clock=FixedClock(et(9, 0)),
        market=market,
        news=InMemoryNews(),
        orders=orders or PaperBroker(strategy.costs),
        bus=bus,
        records=records or InMemoryScanRecords(),
    )
    day = TradingDay(
        session=session,
        times=DayTimes.of(session, strategy, NY, time(9, 0)),
        strategy=strategy,
        start_equity=D(100_000),
        ports=ports,
        **extra,
    )
    return day, bus


def strategy(**risk: Any) -> Strategy:
    return replace(Strategy(), risk=replace(RiskLimits(daily_loss_limit_pct=D("0.3")), **risk))


async def minutes(day: TradingDay, market: InMemoryMarketData) -> list[list[Bar]]:
    grouped: dict[datetime, list[Bar]] = {}
    for b in await market.session_bars(day.day, day.watchlist):
        grouped.setdefault(b.start, []).append(b)
    return [grouped[start] for start in sorted(grouped)]


async def run_minutes(day: TradingDay, bars: Sequence[list[Bar]]) -> None:
    for minute in bars:
        await day.on_bars(minute)


async def test_open_losses_past_the_limit_stop_new_entries_before_any_loss_is_realised() -> None:
    market = market_with("AAA", "BBB", extra_bars=BARS)
    day, bus = make_day(market, strategy())
    await day.scan()

    await run_minutes(day, await minutes(day, market))

    [change] = of_type(bus, RiskStateChanged)
    assert (change.current, change.reason, change.occurred_at) == (
        TradingState.REDUCING,
        RiskReason.DAILY_LOSS_LIMIT,
        et(9, 36),
    )
    assert change.detail == (
        "realised 0.00 and open -356.80 (risk.loss_limit_basis marked) reached the daily loss "
        "limit of -300.00 (risk.daily_loss_limit_pct 0.3)"
    )
    [refusal] = of_type(bus, PlanRejected)
    assert (refusal.symbol, refusal.reason, refusal.occurred_at) == (
        "BBB",
        "risk:reducing",
        et(9, 40),
    )
    assert of_type(bus, PositionClosed) == []  # no loss realised: AAA still holds its stop
    assert day.ledger.realised == 0
    assert len(day.ledger.open_positions) == 1
    [placed] = of_type(bus, OrderPlaced)
    assert placed.order.symbol == "AAA"


async def test_the_realised_basis_lets_the_second_entry_through() -> None:
    market = market_with("AAA", "BBB", extra_bars=BARS)
    day, bus = make_day(market, strategy(loss_limit_basis=LossBasis.REALISED))
    await day.scan()

    await run_minutes(day, await minutes(day, market))

    assert of_type(bus, RiskStateChanged) == []
    assert [p.order.symbol for p in of_type(bus, OrderPlaced)] == ["AAA", "BBB"]


async def test_the_flatten_action_closes_the_book_at_the_next_bar_open() -> None:
    market = market_with("AAA", "BBB", extra_bars=BARS)
    day, bus = make_day(market, strategy(loss_limit_action=LossAction.FLATTEN))
    await day.scan()

    await run_minutes(day, await minutes(day, market))

    [change] = of_type(bus, RiskStateChanged)
    assert change.reason is RiskReason.DAILY_LOSS_FLATTEN
    [closed] = of_type(bus, PositionClosed)
    assert (closed.trade.exit_price, closed.trade.exit_reason) == (D("11.06"), ExitReason.FLATTEN)
    assert closed.trade.net_pnl == D("-334.50")  # (11.06 - 11.21) * 2230
    assert [r.symbol for r in of_type(bus, PlanRejected)] == ["BBB"]


@pytest.mark.parametrize("action", list(LossAction))
async def test_a_resumed_day_keeps_the_reduced_state_and_its_action(action: LossAction) -> None:
    market = market_with("AAA", "BBB", extra_bars=BARS)
    records = InMemoryScanRecords()  # the store's, which the restarted day reads
    day, bus = make_day(market, strategy(loss_limit_action=action), records=records)
    await day.scan()
    bars = await minutes(day, market)
    await run_minutes(day, bars[:-2])  # killed after the 09:36 mark, before 09:37
    stored = list(bus.published)

    resumed, later = make_day(market, strategy(loss_limit_action=action), records=records)
    await resumed.resume(stored)
    assert resumed.risk.state is TradingState.REDUCING
    assert resumed.risk.loss_limit_hit
    assert resumed.risk.flatten_due is (action is LossAction.FLATTEN)
    await run_minutes(resumed, bars[-2:])

    assert of_type(later, RiskStateChanged) == []  # not decided twice
    [refusal] = of_type(later, PlanRejected)
    assert refusal.reason == "risk:reducing"
    assert len(of_type(later, PositionClosed)) == (1 if action is LossAction.FLATTEN else 0)


async def test_a_resumed_day_keeps_a_halt_of_the_error_breaker() -> None:
    market = market_with("AAA", "BBB", extra_bars=BARS)
    records = InMemoryScanRecords()
    day, bus = make_day(market, strategy(error_breaker_count=1), RejectingBroker(), records)
    await day.scan()
    bars = await minutes(day, market)
    upto = [m for m in bars if m[0].start <= et(9, 35)]
    await run_minutes(day, upto)  # AAA's order is rejected at 09:35

    [rejected] = [e for e in of_type(bus, PlanRejected) if e.symbol == "AAA"]
    assert (rejected.reason, rejected.detail) == (
        "order_rejected:refused",
        "insufficient buying power",
    )
    [halt] = of_type(bus, RiskStateChanged)
    assert (halt.current, halt.reason) == (TradingState.HALTED, RiskReason.ERROR_BREAKER)
    assert "risk.error_breaker.count 1" in halt.detail

    resumed, later = make_day(market, strategy(error_breaker_count=1), records=records)
    await resumed.resume(list(bus.published))
    assert resumed.risk.state is TradingState.HALTED
    assert resumed.risk.halted_by is RiskReason.ERROR_BREAKER
    await run_minutes(resumed, bars[len(upto) :])
    assert [(r.symbol, r.reason) for r in of_type(later, PlanRejected)] == [("BBB", "risk:halted")]


async def test_the_var_limit_refuses_an_entry_that_takes_the_book_over_it() -> None:
    # Both histories are flat (returns 0) but for one day 10 % lower: a position of about 25 %
    # of equity loses about 2,500 on it, past a 1 % (1,000) VaR limit.
    market = market_with("AAA", "BBB", extra_bars=BARS)
    for name in ("AAA", "BBB"):
        daily = market.daily[symbol(name)]
        low = daily[-10]
        daily[-10] = replace(
            low, open=low.open * D("0.9"), high=low.high * D("0.9"), low=low.low * D("0.9"),
            close=low.close * D("0.9"),
        )  # fmt: skip
    day, bus = make_day(market, strategy(max_var_pct=D(1)))
    await day.scan()

    await run_minutes(day, await minutes(day, market))

    refusals = [(r.symbol, r.reason) for r in of_type(bus, PlanRejected)]
    assert refusals == [("AAA", "risk:max_var"), ("BBB", "risk:max_var")]
    assert "VaR would be" in of_type(bus, PlanRejected)[0].detail
    assert of_type(bus, OrderPlaced) == []


class RejectingBroker(PaperBroker):
    """A paper broker that refuses every order."""

    def __init__(self) -> None:
        super().__init__(Strategy().costs)

    async def submit(self, order: BracketOrder) -> None:
        raise OrderRejectedError("insufficient buying power")


async def test_a_broker_refusal_rejects_the_plan_with_its_code_and_message() -> None:
    market = market_with("AAA", "BBB", extra_bars=BARS)
    broker = PaperBroker(Strategy().costs)
    broker.refuse(symbol("AAA"), RejectionCode.HALTED, 'asset "AAA" is halted')
    records = InMemoryScanRecords()
    day, bus = make_day(market, strategy(), broker, records)
    await day.scan()
    await run_minutes(day, await minutes(day, market))

    [rejected] = [e for e in of_type(bus, PlanRejected) if e.symbol == "AAA"]
    assert (rejected.reason, rejected.detail, rejected.occurred_at) == (
        "order_rejected:halted",
        'asset "AAA" is halted',
        et(9, 35),
    )
    placed = [e.order.symbol for e in of_type(bus, OrderPlaced)]
    assert placed == ["AAA", "BBB"]
    assert [e.fill.symbol for e in of_type(bus, PlanExecuted)] == ["BBB"]  # AAA never filled
    resumed, _ = make_day(market, strategy(), records=records)
    await resumed.resume(list(bus.published))
    assert resumed.state.working_orders() == ()  # the rejected order is not placed again


async def test_a_day_starting_past_the_max_drawdown_starts_halted() -> None:
    # Peak 112,000 over the stored reports, equity 100,000: 10.71 % down, past a 10 % limit.
    market = market_with("AAA", "BBB", extra_bars=BARS)
    day, bus = make_day(market, strategy(max_drawdown_pct=D(10)), equity_peak=D(112_000))
    await day.scan()
    await run_minutes(day, await minutes(day, market))

    [halt] = of_type(bus, RiskStateChanged)
    assert (halt.current, halt.reason, halt.occurred_at) == (
        TradingState.HALTED,
        RiskReason.MAX_DRAWDOWN,
        day.times.scan_at,
    )
    assert "10.71 % below its peak of 112000.00" in halt.detail
    assert {r.reason for r in of_type(bus, PlanRejected)} == {"risk:halted"}
    assert of_type(bus, OrderPlaced) == []


async def test_store_outages_trip_the_error_breaker_at_the_next_minute() -> None:
    outages = [0]
    market = market_with("AAA", "BBB", extra_bars=BARS)
    day, bus = make_day(market, strategy(error_breaker_count=2), store_failures=lambda: outages[0])
    await day.scan()
    for minute in await minutes(day, market):
        if minute[0].start == et(9, 33):
            outages[0] = 2  # two outages since the last minute
        await day.on_bars(minute)

    [halt] = of_type(bus, RiskStateChanged)
    assert (halt.current, halt.reason, halt.occurred_at) == (
        TradingState.HALTED,
        RiskReason.ERROR_BREAKER,
        et(9, 33),
    )
    assert of_type(bus, OrderPlaced) == []
