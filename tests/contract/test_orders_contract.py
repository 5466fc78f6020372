"""The `Orders` port's contract, run against `PaperBroker` and `AlpacaBroker` on the local server.

Both brokers get the same bracket orders and bars and must hand back the same fills: an entry at
`max(trigger, open)`, a stop in the fill bar, a target later, a flatten at the next open, one
order per client order id, a refusal handed over as an `OrderRejection` with its code, the
account's equity (none for paper, whose equity is the project's records). The Alpaca broker's
extras (partial fills, a `rejected` trade update, restore and reconciliation) are checked
against the local server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from alpaca_support import SYM, T0, Harness, alpaca_harness, bar, bracket, summary
from fin_agent.adapters.broker.alpaca_local.records import LocalPosition
from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.domain.orders import BracketOrder, FillKind, RejectionCode
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.domain.values import Side


@pytest_asyncio.fixture(params=["paper", "alpaca"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Each broker of the port."""
    if request.param == "paper":
        yield Harness(broker=PaperBroker(ExecutionCosts()))
        return
    made, close = await alpaca_harness()
    try:
        yield made
    finally:
        await close()


@pytest.mark.asyncio
async def test_orders_fill_entry_then_target_and_a_resubmit_makes_no_second_order(
    harness: Harness,
) -> None:
    await harness.broker.submit(bracket())
    await harness.broker.submit(bracket())  # a retried submit
    entry = await harness.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])
    later = await harness.fills([bar(1, "10.60", "11.60", "10.55", "11.40")])
    assert summary(entry) == [("entry", 100, Decimal("10.50"), T0 + timedelta(minutes=1))]
    assert summary(later) == [("target", 100, Decimal("11.50"), T0 + timedelta(minutes=2))]
    if harness.server is not None:
        assert len([o for o in harness.server.book.orders.values() if o.parent_id is None]) == 1
        assert harness.server.book.submissions[bracket().client_order_id] == 2  # both received


@pytest.mark.asyncio
async def test_orders_stop_in_the_fill_bar(harness: Harness) -> None:
    await harness.broker.submit(bracket())
    fills = await harness.fills([bar(0, "10.60", "10.70", "9.90", "9.95")])
    assert summary(fills) == [
        ("entry", 100, Decimal("10.60"), T0 + timedelta(minutes=1)),
        ("stop", 100, Decimal("10.00"), T0 + timedelta(minutes=1)),
    ]


@pytest.mark.asyncio
async def test_orders_cancel_drops_an_unfilled_entry(harness: Harness) -> None:
    await harness.broker.submit(bracket())
    await harness.broker.cancel(bracket().client_order_id)
    assert await harness.fills([bar(0, "10.40", "10.60", "10.35", "10.55")]) == []


@pytest.mark.asyncio
async def test_orders_close_flattens_at_the_next_open(harness: Harness) -> None:
    await harness.broker.submit(bracket())
    await harness.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])
    await harness.broker.close(bracket().client_order_id, FillKind.FLATTEN, T0)
    fills = await harness.fills([bar(1, "10.70", "10.80", "10.65", "10.75")])
    assert summary(fills) == [("flatten", 100, Decimal("10.70"), T0 + timedelta(minutes=1))]
    if harness.server is not None:
        assert harness.server.book.positions == {}


@pytest.mark.asyncio
async def test_orders_close_pending_at_the_session_end_fills_at_the_last_close(
    harness: Harness,
) -> None:
    await harness.broker.submit(bracket())
    await harness.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])
    end = T0 + timedelta(hours=6)
    await harness.broker.close(bracket().client_order_id, FillKind.FLATTEN, end)
    await harness.broker.end_of_session(end)
    fills = await harness.broker.take_fills()
    assert summary(fills) == [("flatten", 100, Decimal("10.55"), end)]


@pytest.mark.asyncio
async def test_orders_restore_holds_a_position_and_exits_it(harness: Harness) -> None:
    if harness.server is not None:  # the account really holds the position
        await harness.broker.submit(bracket())
        await harness.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])
        harness, close = await _restarted(harness)
    else:
        close = None
    try:
        await harness.broker.restore(
            [], [(bracket(), T0)], [bar(0, "10.40", "10.60", "10.35", "10.55")]
        )
        fills = await harness.fills([bar(1, "10.30", "10.40", "9.80", "9.90")])
        assert summary(fills) == [("stop", 100, Decimal("10.00"), T0 + timedelta(minutes=2))]
        assert harness.problems == []
    finally:
        if close is not None:
            await close()


def _refuse(harness: Harness, code: RejectionCode) -> int:
    """Make the broker refuse the next order of SYM for `code`; the quantity to order."""
    if isinstance(harness.broker, PaperBroker):
        harness.broker.refuse(SYM, code, f"{code} (told to refuse)")
        return 100
    assert harness.server is not None
    book = harness.server.book
    if code is RejectionCode.INSUFFICIENT_BUYING_POWER:
        return 100_000  # 1.05 M of a 100 k account with 4x buying power
    if code is RejectionCode.HALTED:
        book.not_tradable.add(str(SYM))
    else:
        book.not_shortable.add(str(SYM))
    return 100


def _short(qty: int) -> BracketOrder:
    return BracketOrder(
        client_order_id="2026-03-02:GAPX:short", symbol=SYM, side=Side.SHORT, qty=qty,
        trigger=Decimal("10.00"), stop=Decimal("10.50"), target=Decimal("9.00"), placed_at=T0,
    )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("code", list(RejectionCode)[:3])
async def test_orders_a_refused_order_is_a_rejection_with_its_code_and_never_fills(
    harness: Harness, code: RejectionCode
) -> None:
    qty = _refuse(harness, code)
    order = _short(qty) if code is RejectionCode.NOT_SHORTABLE else bracket(qty=qty)
    await harness.broker.submit(order)
    rejections = await harness.broker.take_rejections()
    assert [(r.client_order_id, r.code) for r in rejections] == [(order.client_order_id, code)]
    assert rejections[0].message
    assert await harness.broker.take_rejections() == []
    assert await harness.fills([bar(0, "9.00", "12.00", "8.00", "10.55")]) == []
    if harness.server is not None:
        assert harness.server.book.orders == {}


@pytest.mark.asyncio
async def test_orders_account_equity_is_the_brokers_or_none_for_paper(harness: Harness) -> None:
    expected = None if harness.server is None else Decimal(100_000)
    assert await harness.broker.account_equity() == expected


async def _restarted(old: Harness) -> tuple[Harness, Callable[[], Awaitable[None]]]:
    """A new AlpacaBroker (a restarted agent) on the same local server."""
    assert old.server is not None
    assert old.alpaca is not None
    await old.alpaca.stop()
    book = old.server.book
    await old.server.stop()
    return await alpaca_harness(book)


# -- the Alpaca broker's own cases -----------------------------------------------------------


@pytest_asyncio.fixture
async def alpaca() -> AsyncIterator[Harness]:
    """The Alpaca broker on the local server."""
    made, close = await alpaca_harness()
    try:
        yield made
    finally:
        await close()


@pytest.mark.asyncio
async def test_alpaca_partial_fills_make_one_entry_at_the_average_price(alpaca: Harness) -> None:
    assert alpaca.server is not None
    alpaca.server.book.max_qty_per_bar[str(SYM)] = 60
    await alpaca.broker.submit(bracket())
    first = await alpaca.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])
    second = await alpaca.fills([bar(1, "10.70", "10.80", "10.65", "10.75")])
    assert first == []
    # 60 at 10.50, then 40 at the next open 10.70: 10.58 on average, filled in the second bar
    assert summary(second) == [("entry", 100, Decimal("10.58"), T0 + timedelta(minutes=1))]


@pytest.mark.asyncio
async def test_alpaca_a_rejected_trade_update_is_a_rejection(alpaca: Harness) -> None:
    assert alpaca.server is not None
    alpaca.server.book.halted.add(str(SYM))  # accepted, then rejected
    await alpaca.broker.submit(bracket())
    await alpaca.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])  # reads the orders again
    rejections = await alpaca.broker.take_rejections()
    assert [(r.client_order_id, r.code) for r in rejections] == [
        (bracket().client_order_id, RejectionCode.REFUSED)
    ]
    assert "rejected trade update" in rejections[0].message
    assert await alpaca.fills([bar(1, "10.60", "11.60", "10.55", "11.40")]) == []


@pytest.mark.asyncio
async def test_alpaca_partial_fills_in_lots_make_one_entry_at_the_bars_price(
    alpaca: Harness,
) -> None:
    assert alpaca.server is not None
    book = alpaca.server.book
    book.fill_lots = 3
    await alpaca.broker.submit(bracket())
    fills = await alpaca.fills([bar(0, "10.40", "10.60", "10.35", "10.55")])
    assert summary(fills) == [("entry", 100, Decimal("10.50"), T0 + timedelta(minutes=1))]
    events = [u["data"]["event"] for u in book.updates]
    assert events.count("partial_fill") == 2
    assert events.count("fill") == 1


@pytest.mark.asyncio
async def test_alpaca_a_bar_sent_again_fills_nothing_twice(alpaca: Harness) -> None:
    await alpaca.broker.submit(bracket())
    assert await alpaca.fills([bar(0, "10.40", "10.45", "10.35", "10.40")]) == []
    # the same minute again, now through the trigger: the server already had it
    assert await alpaca.fills([bar(0, "10.40", "10.60", "10.35", "10.55")]) == []
    fills = await alpaca.fills([bar(1, "10.40", "10.60", "10.35", "10.55")])
    assert summary(fills) == [("entry", 100, Decimal("10.50"), T0 + timedelta(minutes=2))]


@pytest.mark.asyncio
async def test_alpaca_reconcile_reports_a_position_the_plans_do_not_know(alpaca: Harness) -> None:
    assert alpaca.server is not None
    assert alpaca.alpaca is not None
    book = alpaca.server.book
    book.positions.clear()
    book.positions["OTHER"] = LocalPosition(symbol="OTHER", qty=5, avg_entry=Decimal(20))
    await alpaca.alpaca.reconcile()
    assert [code for code, _ in alpaca.problems] == ["broker_position_mismatch"]
    assert "OTHER: the broker holds 5 shares, the agent's plans 0" in alpaca.problems[0][1]
    assert alpaca.alpaca.equity == Decimal(100_000) + 5 * Decimal(20)
