"""Ledger and report: P&L adds up over random fills, R multiples, refusals, performance figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fin_agent.domain.errors import DomainError
from fin_agent.domain.orders import ExitReason, Fill, FillKind
from fin_agent.domain.positions import ClosedTrade, Ledger
from fin_agent.domain.report import DailyReport, performance, summarize
from fin_agent.domain.values import Side, Symbol, symbol

T0 = datetime(2024, 1, 2, 14, 40, tzinfo=UTC)
START = Decimal(100_000)
ZERO = Decimal(0)


def fill(
    cid: str,
    kind: FillKind,
    qty: int,
    price: str | Decimal,
    *,
    side: Side = Side.LONG,
    commission: str | Decimal = "0",
    name: str = "AAA",
    at: datetime = T0,
) -> Fill:
    return Fill(
        client_order_id=cid,
        symbol=symbol(name),
        side=side,
        kind=kind,
        qty=qty,
        price=Decimal(price),
        commission=Decimal(commission),
        at=at,
    )


# --- hand-worked round trips ----------------------------------------------------------------------


def test_ledger_long_round_trip_to_target() -> None:
    ledger = Ledger(START)
    ledger.open(
        fill("p1", FillKind.ENTRY, 100, "10.00", commission="0.50"),
        stop=Decimal("9.60"),
        target=Decimal("10.80"),
        planned_entry=Decimal("10.00"),
    )

    trade = ledger.close(fill("p1", FillKind.TARGET, 100, "10.80", commission="0.50"))

    # gross = (10.80 - 10.00) * 100 = 80.00; commissions 1.00; net 79.00
    # one R = (10.00 - 9.60) * 100 = 40.00; r = 79 / 40 = 1.975
    assert (trade.gross_pnl, trade.commission, trade.net_pnl) == (
        Decimal(80),
        Decimal(1),
        Decimal(79),
    )
    assert trade.r_multiple == Decimal("1.9750")
    assert trade.exit_reason is ExitReason.TARGET
    assert ledger.equity() == START + 79
    assert ledger.open_positions == ()


def test_ledger_short_round_trip_to_stop() -> None:
    ledger = Ledger(START)
    ledger.open(
        fill("p1", FillKind.ENTRY, 50, "20.00", side=Side.SHORT, commission="0.25"),
        stop=Decimal("20.50"),
        target=Decimal("19.00"),
        planned_entry=Decimal("20.00"),
    )

    trade = ledger.close(fill("p1", FillKind.STOP, 50, "20.50", side=Side.SHORT, commission="0.25"))

    # gross = (20.50 - 20.00) * 50 * -1 = -25.00; net = -25.50; R = 0.50 * 50 = 25; r = -1.02
    assert (trade.gross_pnl, trade.net_pnl, trade.r_multiple) == (
        Decimal(-25),
        Decimal("-25.50"),
        Decimal("-1.0200"),
    )


def test_ledger_r_multiple_uses_the_planned_entry_not_the_slipped_fill() -> None:
    ledger = Ledger(START)
    ledger.open(
        fill("p1", FillKind.ENTRY, 10, "10.10"),
        stop=Decimal("9.00"),
        target=Decimal("12.00"),
        planned_entry=Decimal("10.00"),
    )

    trade = ledger.close(fill("p1", FillKind.STOP, 10, "9.00"))

    # net = (9.00 - 10.10) * 10 = -11.00; one R = (10.00 - 9.00) * 10 = 10.00; r = -1.1
    assert trade.r_multiple == Decimal("-1.1000")


def test_ledger_equity_counts_open_entry_commissions_and_marks() -> None:
    ledger = Ledger(START)
    position = ledger.open(
        fill("p1", FillKind.ENTRY, 100, "10.00", commission="1.00"),
        stop=Decimal(9),
        target=Decimal(12),
        planned_entry=Decimal(10),
    )

    assert ledger.equity() == START - 1
    assert ledger.equity({symbol("AAA"): Decimal("10.50")}) == START + 50 - 1
    assert ledger.gross_exposure == Decimal(1000)
    assert ledger.position("p1") == position
    assert position.initial_risk == Decimal(100)


def test_ledger_refuses_a_non_entry_fill_as_an_open() -> None:
    with pytest.raises(DomainError, match=r"^fill p1 is a stop fill, not an entry$"):
        Ledger(START).open(
            fill("p1", FillKind.STOP, 10, "10"),
            stop=Decimal(9),
            target=Decimal(12),
            planned_entry=Decimal(10),
        )


def test_ledger_refuses_a_second_position_for_the_same_plan() -> None:
    ledger = Ledger(START)
    ledger.open(
        fill("p1", FillKind.ENTRY, 10, "10"),
        stop=Decimal(9),
        target=Decimal(12),
        planned_entry=Decimal(10),
    )

    with pytest.raises(DomainError, match=r"^plan p1 already holds a position$"):
        ledger.open(
            fill("p1", FillKind.ENTRY, 10, "10"),
            stop=Decimal(9),
            target=Decimal(12),
            planned_entry=Decimal(10),
        )


def test_ledger_refuses_an_exit_without_a_position() -> None:
    with pytest.raises(DomainError, match=r"^exit fill for p1, which holds no position$"):
        Ledger(START).close(fill("p1", FillKind.STOP, 10, "9"))


def open_ten(ledger: Ledger) -> None:
    ledger.open(
        fill("p1", FillKind.ENTRY, 10, "10", commission="1"),
        stop=Decimal(9),
        target=Decimal(12),
        planned_entry=Decimal(10),
    )


def test_ledger_refuses_a_partial_exit() -> None:
    ledger = Ledger(START)
    open_ten(ledger)

    with pytest.raises(DomainError, match=r"^exit of 5 shares for a position of 10$"):
        ledger.close(fill("p1", FillKind.STOP, 5, "9"))


def test_ledger_keeps_the_position_after_refusing_a_partial_exit() -> None:
    ledger = Ledger(START)
    open_ten(ledger)

    with pytest.raises(DomainError):
        ledger.close(fill("p1", FillKind.STOP, 5, "9"))

    assert ledger.position("p1") is not None
    assert ledger.equity() == START - 1


def test_ledger_keeps_the_position_after_refusing_an_entry_fill_as_an_exit() -> None:
    ledger = Ledger(START)
    open_ten(ledger)

    with pytest.raises(DomainError, match="is an entry fill, not an exit"):
        ledger.close(fill("p1", FillKind.ENTRY, 10, "9"))

    assert ledger.position("p1") is not None


# --- properties over random fill sequences --------------------------------------------------------

prices = st.decimals(min_value=Decimal("1.00"), max_value=Decimal(500), places=2)
commissions = st.sampled_from([Decimal(0), Decimal("0.005"), Decimal("0.01"), Decimal("0.035")])
exit_kinds = st.sampled_from([FillKind.STOP, FillKind.TARGET, FillKind.FLATTEN, FillKind.HALTED])


@dataclass(frozen=True, slots=True)
class RoundTrip:
    cid: str
    name: Symbol
    side: Side
    qty: int
    entry: Decimal
    exit: Decimal
    stop_distance: Decimal
    per_share: Decimal
    kind: FillKind


@st.composite
def round_trips(draw: st.DrawFn) -> list[RoundTrip]:
    count = draw(st.integers(min_value=1, max_value=8))
    return [
        RoundTrip(
            cid=f"p{i}",
            name=symbol(draw(st.sampled_from(["AAA", "BBB", "CCC"]))),
            side=draw(st.sampled_from(Side)),
            qty=draw(st.integers(min_value=1, max_value=2_000)),
            entry=draw(prices),
            exit=draw(prices),
            stop_distance=draw(
                st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5), places=2)
            ),
            per_share=draw(commissions),
            kind=draw(exit_kinds),
        )
        for i in range(count)
    ]


def play(ledger: Ledger, trips: list[RoundTrip], data: st.DataObject) -> list[ClosedTrade]:
    """Open and close every round trip, interleaved in an order hypothesis chooses."""
    waiting = list(trips)
    held: list[RoundTrip] = []
    closed: list[ClosedTrade] = []
    clock = T0
    while waiting or held:
        clock += timedelta(minutes=1)
        if waiting and (not held or data.draw(st.booleans())):
            trip = waiting.pop(0)
            ledger.open(
                fill(
                    trip.cid,
                    FillKind.ENTRY,
                    trip.qty,
                    trip.entry,
                    side=trip.side,
                    commission=trip.per_share * trip.qty,
                    name=trip.name,
                    at=clock,
                ),
                stop=trip.entry - trip.side.sign * trip.stop_distance,
                target=trip.entry + trip.side.sign * 2 * trip.stop_distance,
                planned_entry=trip.entry,
            )
            held.append(trip)
            entry_commissions = sum((p.entry_commission for p in ledger.open_positions), ZERO)
            assert ledger.equity() == START + ledger.realised - entry_commissions
        else:
            trip = held.pop(data.draw(st.integers(min_value=0, max_value=len(held) - 1)))
            closed.append(
                ledger.close(
                    fill(
                        trip.cid,
                        trip.kind,
                        trip.qty,
                        trip.exit,
                        side=trip.side,
                        commission=trip.per_share * trip.qty,
                        name=trip.name,
                        at=clock,
                    )
                )
            )
        assert ledger.gross_exposure == sum((p.exposure for p in ledger.open_positions), ZERO)
    return closed


@given(trips=round_trips(), data=st.data())
def test_ledger_net_pnl_adds_up_to_the_change_in_equity(
    trips: list[RoundTrip], data: st.DataObject
) -> None:
    ledger = Ledger(START)

    closed = play(ledger, trips, data)

    net = sum((t.net_pnl for t in closed), ZERO)
    gross = sum((t.gross_pnl for t in closed), ZERO)
    paid = sum((t.commission for t in closed), ZERO)
    assert ledger.open_positions == ()
    assert net == ledger.equity() - START == ledger.realised
    assert net == gross - paid
    assert paid == sum((2 * t.per_share * t.qty for t in trips), ZERO)
    for t in closed:
        assert t.gross_pnl == (t.exit_price - t.entry_price) * t.qty * t.side.sign


@given(trips=round_trips(), data=st.data())
def test_ledger_r_multiple_sign_matches_net_pnl_sign(
    trips: list[RoundTrip], data: st.DataObject
) -> None:
    closed = play(Ledger(START), trips, data)

    for trade in closed:
        one_r = next(t.stop_distance * t.qty for t in trips if t.cid == trade.plan_id)
        if abs(trade.net_pnl / one_r) < Decimal("0.00005"):
            # below the 4-decimal resolution of r_multiple: it rounds to zero
            assert trade.r_multiple == 0
        elif trade.net_pnl > 0:
            assert trade.r_multiple > 0
        else:
            assert trade.r_multiple < 0


@given(trips=round_trips(), data=st.data())
def test_performance_agrees_with_the_ledger(trips: list[RoundTrip], data: st.DataObject) -> None:
    ledger = Ledger(START)
    closed = play(ledger, trips, data)

    perf = performance(START, closed)

    assert perf.end_equity == ledger.equity()
    assert perf.net_pnl == perf.gross_pnl - perf.commissions
    assert perf.wins + perf.losses == len(closed)
    assert perf.max_drawdown >= ZERO
    assert ZERO <= perf.win_rate <= 1


# --- performance on a hand-made curve -------------------------------------------------------------


def trade(plan: str, minute: int, net: str, r: str = "0") -> ClosedTrade:
    pnl = Decimal(net)
    return ClosedTrade(
        plan_id=plan,
        symbol=symbol("AAA"),
        side=Side.LONG,
        qty=100,
        entry_price=Decimal(10),
        exit_price=Decimal(10) + pnl / 100,
        entry_at=T0,
        exit_at=T0 + timedelta(minutes=minute),
        exit_reason=ExitReason.TARGET if pnl > 0 else ExitReason.STOP,
        gross_pnl=pnl + 1,
        commission=Decimal(1),
        net_pnl=pnl,
        r_multiple=Decimal(r),
    )


CURVE = [  # given out of exit order: performance() sorts by exit time
    trade("p4", 4, "1000", "2"),  # 10800: new peak
    trade("p1", 1, "500", "1"),  # 10500: peak
    trade("p3", 3, "-400", "-1"),  # 9800: 700 below the peak of 10500 (the max drawdown)
    trade("p2", 2, "-300", "-0.5"),  # 10200
    trade("p5", 5, "-200", "-0.5"),  # 10600: 200 below 10800
]


def test_performance_on_a_hand_made_equity_curve() -> None:
    perf = performance(Decimal(10_000), CURVE)

    assert [t.plan_id for t in perf.trades] == ["p1", "p2", "p3", "p4", "p5"]
    assert perf.end_equity == Decimal(10_600)
    assert perf.net_pnl == Decimal(600)
    assert perf.gross_pnl == Decimal(605)
    assert perf.commissions == Decimal(5)
    assert (perf.wins, perf.losses) == (2, 3)
    assert perf.win_rate == Decimal("0.4000")
    assert perf.avg_r == Decimal("0.2000")  # (1 - 0.5 - 1 + 2 - 0.5) / 5
    assert perf.max_drawdown == Decimal(700)
    assert perf.max_drawdown_pct == Decimal("6.6667")  # 100 * 700 / 10500


def test_performance_counts_a_breakeven_trade_as_not_a_win() -> None:
    perf = performance(Decimal(10_000), [trade("p1", 1, "0"), trade("p2", 2, "10")])

    assert (perf.wins, perf.losses, perf.win_rate) == (1, 1, Decimal("0.5000"))


def test_performance_without_trades_is_all_zero() -> None:
    perf = performance(Decimal(10_000), [])

    assert perf.end_equity == Decimal(10_000)
    assert (perf.win_rate, perf.avg_r, perf.max_drawdown, perf.max_drawdown_pct) == (
        ZERO,
        ZERO,
        ZERO,
        ZERO,
    )


def test_summarize_carries_equity_across_days() -> None:
    day1 = DailyReport(
        day=date(2024, 1, 2),
        strategy="gap_and_go",
        candidates=2,
        plans=2,
        plans_rejected=0,
        performance=performance(Decimal(10_000), CURVE[:2]),
    )
    day2 = DailyReport(
        day=date(2024, 1, 3),
        strategy="gap_and_go",
        candidates=3,
        plans=3,
        plans_rejected=0,
        performance=performance(Decimal(11_500), CURVE[2:]),
    )

    perf = summarize(Decimal(10_000), [day1, day2])

    assert perf.end_equity == Decimal(10_600)
    assert perf.max_drawdown == Decimal(700)
