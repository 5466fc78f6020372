"""PaperBroker: bracket orders filled against bars with the exact rules of DESIGN.md section 2.4."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.domain.orders import BracketOrder, Fill, FillKind
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.domain.values import Bar, Side, symbol

pytestmark = pytest.mark.asyncio

D = Decimal
FIRST = datetime(2024, 1, 2, 14, 35, tzinfo=UTC)  # 09:35 ET, the first bar of the entry window
ZERO_COSTS = ExecutionCosts()


def start(minute: int) -> datetime:
    return FIRST + timedelta(minutes=minute)


def bar(minute: int, o: str, h: str, low: str, c: str, name: str = "AAA") -> Bar:
    return Bar(
        symbol=symbol(name),
        start=start(minute),
        open=D(o),
        high=D(h),
        low=D(low),
        close=D(c),
        volume=1_000,
    )


def order(
    side: Side = Side.LONG,
    *,
    cid: str = "p-AAA",
    name: str = "AAA",
    trigger: str | None = None,
    stop: str | None = None,
    target: str | None = None,
    qty: int = 100,
) -> BracketOrder:
    """Long: 10.51 / stop 10.14 / target 11.25; short: 10.09 / stop 10.46 / target 9.35."""
    levels = ("10.51", "10.14", "11.25") if side is Side.LONG else ("10.09", "10.46", "9.35")
    return BracketOrder(
        client_order_id=cid,
        symbol=symbol(name),
        side=side,
        qty=qty,
        trigger=D(trigger or levels[0]),
        stop=D(stop or levels[1]),
        target=D(target or levels[2]),
        placed_at=FIRST,
    )


def summary(fills: Sequence[Fill]) -> list[tuple[FillKind, Decimal, datetime]]:
    return [(f.kind, f.price, f.at) for f in fills]


async def broker_with(*orders: BracketOrder, costs: ExecutionCosts = ZERO_COSTS) -> PaperBroker:
    broker = PaperBroker(costs)
    for o in orders:
        await broker.submit(o)
    return broker


async def run(broker: PaperBroker, *bars: Bar) -> list[Fill]:
    for b in bars:
        await broker.on_market([b])
    return list(await broker.take_fills())


# long entry bar: rises through the trigger 10.51, stays above the stop 10.14
LONG_ENTRY = bar(0, "10.40", "10.60", "10.35", "10.55")


# --- entries --------------------------------------------------------------------------------------


async def test_paper_broker_fills_a_long_entry_at_the_trigger() -> None:
    broker = await broker_with(order())

    fills = await run(broker, LONG_ENTRY)

    assert fills == [
        Fill(
            client_order_id="p-AAA",
            symbol=symbol("AAA"),
            side=Side.LONG,
            kind=FillKind.ENTRY,
            qty=100,
            price=D("10.51"),
            commission=D(0),
            at=start(1),  # the end of the fill bar
        )
    ]


async def test_paper_broker_fills_a_gap_through_the_trigger_at_the_open() -> None:
    broker = await broker_with(order())

    fills = await run(broker, bar(0, "10.70", "10.90", "10.60", "10.80"))

    assert summary(fills) == [(FillKind.ENTRY, D("10.70"), start(1))]


async def test_paper_broker_does_not_fill_an_entry_the_bar_does_not_reach() -> None:
    broker = await broker_with(order())

    fills = await run(broker, bar(0, "10.40", "10.50", "10.35", "10.45"))

    assert fills == []


async def test_paper_broker_fills_an_order_only_on_bars_of_its_symbol() -> None:
    broker = await broker_with(order())

    fills = await run(broker, bar(0, "10.40", "10.60", "10.35", "10.55", name="BBB"))

    assert fills == []


# --- exits ----------------------------------------------------------------------------------------


async def test_paper_broker_checks_only_the_stop_in_the_fill_bar_at_the_stop_price() -> None:
    broker = await broker_with(order())

    fills = await run(broker, bar(0, "10.40", "10.60", "10.00", "10.05"))

    assert summary(fills) == [
        (FillKind.ENTRY, D("10.51"), start(1)),
        (FillKind.STOP, D("10.14"), start(1)),
    ]


async def test_paper_broker_ignores_the_target_in_the_fill_bar() -> None:
    broker = await broker_with(order())

    fills = await run(broker, bar(0, "10.40", "11.50", "10.35", "11.40"))

    assert summary(fills) == [(FillKind.ENTRY, D("10.51"), start(1))]


async def test_paper_broker_assumes_the_stop_first_when_a_later_bar_reaches_both() -> None:
    broker = await broker_with(order())

    fills = await run(broker, LONG_ENTRY, bar(1, "10.60", "11.30", "10.10", "10.20"))

    assert summary(fills)[1:] == [(FillKind.STOP, D("10.14"), start(2))]


async def test_paper_broker_fills_a_gap_beyond_the_stop_at_the_open() -> None:
    broker = await broker_with(order())

    fills = await run(broker, LONG_ENTRY, bar(1, "10.00", "10.10", "9.90", "9.95"))

    assert summary(fills)[1:] == [(FillKind.STOP, D("10.00"), start(2))]


async def test_paper_broker_fills_the_target_at_the_target_price() -> None:
    broker = await broker_with(order())

    fills = await run(
        broker,
        LONG_ENTRY,
        bar(1, "10.55", "10.70", "10.50", "10.65"),  # nothing reached
        bar(2, "11.00", "11.30", "10.90", "11.20"),
    )

    assert summary(fills)[1:] == [(FillKind.TARGET, D("11.25"), start(3))]


async def test_paper_broker_fills_a_gap_beyond_the_target_at_the_open() -> None:
    broker = await broker_with(order())

    fills = await run(broker, LONG_ENTRY, bar(1, "11.40", "11.60", "11.30", "11.50"))

    assert summary(fills)[1:] == [(FillKind.TARGET, D("11.40"), start(2))]


async def test_paper_broker_exits_only_once() -> None:
    broker = await broker_with(order())

    fills = await run(
        broker,
        LONG_ENTRY,
        bar(1, "11.00", "11.30", "10.90", "11.20"),
        bar(2, "10.00", "11.30", "9.00", "9.50"),
    )

    assert [f.kind for f in fills] == [FillKind.ENTRY, FillKind.TARGET]


# --- shorts ---------------------------------------------------------------------------------------


async def test_paper_broker_mirrors_a_short_entry_and_target() -> None:
    broker = await broker_with(order(Side.SHORT))

    fills = await run(
        broker,
        bar(0, "10.20", "10.25", "10.05", "10.10"),
        bar(1, "9.60", "9.70", "9.30", "9.40"),
    )

    assert summary(fills) == [
        (FillKind.ENTRY, D("10.09"), start(1)),
        (FillKind.TARGET, D("9.35"), start(2)),
    ]


async def test_paper_broker_mirrors_a_short_gap_through_the_trigger_and_the_stop() -> None:
    broker = await broker_with(order(Side.SHORT))

    fills = await run(
        broker,
        bar(0, "10.00", "10.05", "9.90", "9.95"),  # opens below the trigger: fills at the open
        bar(1, "10.60", "10.70", "10.55", "10.65"),  # opens above the stop: fills at the open
    )

    assert summary(fills) == [
        (FillKind.ENTRY, D("10.00"), start(1)),
        (FillKind.STOP, D("10.60"), start(2)),
    ]


async def test_paper_broker_checks_a_short_stop_in_the_fill_bar_at_the_stop_price() -> None:
    broker = await broker_with(order(Side.SHORT))

    fills = await run(broker, bar(0, "10.20", "10.60", "9.00", "10.55"))

    assert summary(fills) == [
        (FillKind.ENTRY, D("10.09"), start(1)),
        (FillKind.STOP, D("10.46"), start(1)),
    ]


# --- costs ----------------------------------------------------------------------------------------

TEN_BPS = ExecutionCosts(slippage_bps=D(10))


async def test_paper_broker_slips_a_long_against_the_trader_both_ways() -> None:
    broker = await broker_with(order(trigger="10.00", stop="9.50", target="11.00"), costs=TEN_BPS)

    fills = await run(
        broker,
        bar(0, "9.90", "10.10", "9.85", "10.05"),
        bar(1, "10.90", "11.10", "10.85", "11.05"),
    )

    # buy 10.00 * 1.001 = 10.0100; sell 11.00 * 0.999 = 10.9890
    assert [f.price for f in fills] == [D("10.0100"), D("10.9890")]


async def test_paper_broker_slips_a_short_against_the_trader_both_ways() -> None:
    broker = await broker_with(
        order(Side.SHORT, trigger="10.00", stop="10.50", target="9.00"), costs=TEN_BPS
    )

    fills = await run(
        broker,
        bar(0, "10.10", "10.15", "9.95", "9.98"),
        bar(1, "9.10", "9.15", "8.95", "9.00"),
    )

    # sell 10.00 * 0.999 = 9.9900; buy back 9.00 * 1.001 = 9.0090
    assert [f.price for f in fills] == [D("9.9900"), D("9.0090")]


async def test_paper_broker_slips_a_stop_fill_against_the_trader() -> None:
    broker = await broker_with(order(trigger="10.00", stop="9.50", target="11.00"), costs=TEN_BPS)

    fills = await run(broker, bar(0, "9.90", "10.10", "9.40", "9.45"))

    # sell at the stop: 9.50 * 0.999 = 9.49050
    assert [f.price for f in fills] == [D("10.0100"), D("9.4905")]


async def test_paper_broker_charges_commission_per_share_on_every_fill() -> None:
    broker = await broker_with(
        order(qty=200), costs=ExecutionCosts(commission_per_share=D("0.005"))
    )

    fills = await run(broker, LONG_ENTRY, bar(1, "11.00", "11.30", "10.90", "11.20"))

    assert [f.commission for f in fills] == [D("1.000"), D("1.000")]


# --- idempotence, cancel, close -------------------------------------------------------------------


async def test_paper_broker_ignores_a_resubmitted_client_order_id() -> None:
    broker = await broker_with(order(), order())

    fills = await run(broker, LONG_ENTRY)
    await broker.submit(order())
    fills += await run(broker, bar(1, "10.55", "10.70", "10.50", "10.65"))
    fills += await run(broker, bar(2, "10.00", "10.10", "9.90", "9.95"))
    await broker.submit(order())
    fills += await run(broker, bar(3, "10.50", "10.80", "10.40", "10.70"))

    assert [f.kind for f in fills] == [FillKind.ENTRY, FillKind.STOP]


async def test_paper_broker_cancel_drops_an_unfilled_entry_for_good() -> None:
    broker = await broker_with(order())

    await broker.cancel("p-AAA")
    await broker.submit(order())  # the id was seen: still nothing
    fills = await run(broker, LONG_ENTRY)

    assert fills == []


async def test_paper_broker_cancel_after_the_fill_keeps_the_bracket() -> None:
    broker = await broker_with(order())
    fills = await run(broker, LONG_ENTRY)

    await broker.cancel("p-AAA")
    fills += await run(broker, bar(1, "10.30", "10.40", "10.10", "10.20"))

    assert [f.kind for f in fills] == [FillKind.ENTRY, FillKind.STOP]


async def test_paper_broker_close_fills_at_the_next_open_of_that_symbol() -> None:
    broker = await broker_with(order())
    fills = await run(broker, LONG_ENTRY)

    await broker.close("p-AAA", FillKind.FLATTEN, start(1))
    fills += await run(
        broker,
        bar(1, "20.00", "20.00", "1.00", "10.00", name="BBB"),  # another symbol: nothing
        bar(1, "10.80", "10.90", "10.00", "10.10"),  # opens 10.80, then even breaks the stop
        bar(2, "11.30", "11.40", "11.20", "11.30"),  # the position is gone: no target fill
    )

    assert summary(fills)[1:] == [(FillKind.FLATTEN, D("10.80"), start(1))]


async def test_paper_broker_close_before_the_entry_fills_cancels_it() -> None:
    broker = await broker_with(order())

    await broker.close("p-AAA", FillKind.HALTED, FIRST)
    fills = await run(broker, LONG_ENTRY)
    await broker.end_of_session(start(30))

    assert fills + list(await broker.take_fills()) == []


async def test_paper_broker_close_of_an_unknown_order_does_nothing() -> None:
    broker = await broker_with(order())

    await broker.close("nope", FillKind.FLATTEN, FIRST)
    fills = await run(broker, LONG_ENTRY)

    assert [f.kind for f in fills] == [FillKind.ENTRY]


async def test_paper_broker_end_of_session_fills_pending_closes_at_the_last_close() -> None:
    broker = await broker_with(order(), order(cid="p-BBB", name="BBB"))
    fills = await run(
        broker,
        LONG_ENTRY,  # AAA closes the bar at 10.55
        bar(0, "10.40", "10.60", "10.35", "10.52", name="BBB"),
        bar(1, "10.50", "10.70", "10.45", "10.62", name="BBB"),  # BBB's last close: 10.62
    )
    await broker.close("p-AAA", FillKind.FLATTEN, start(2))
    await broker.close("p-BBB", FillKind.FLATTEN, start(2))
    end = start(25)

    await broker.end_of_session(end)
    fills += await broker.take_fills()

    assert [(f.client_order_id, f.kind, f.price, f.at) for f in fills[2:]] == [
        ("p-AAA", FillKind.FLATTEN, D("10.55"), end),
        ("p-BBB", FillKind.FLATTEN, D("10.62"), end),
    ]
    await broker.end_of_session(end)
    assert await broker.take_fills() == []


async def test_paper_broker_take_fills_hands_each_fill_over_once() -> None:
    broker = await broker_with(order())
    await broker.on_market([LONG_ENTRY])

    first = await broker.take_fills()
    second = await broker.take_fills()

    assert len(first) == 1
    assert second == []
