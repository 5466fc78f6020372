"""Report statistics: Sharpe, Sortino, CAGR, drawdown, profit factor, exposure, worked by hand and
held to their properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from fin_agent.domain.orders import ExitReason
from fin_agent.domain.performance import (
    average_holding,
    buy_and_hold,
    cagr_pct,
    drawdown,
    expectancy_r,
    exposure_pct,
    profit_factor,
    returns,
    sharpe,
    sortino,
    statistics,
    win_rate,
)
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.values import Side, symbol

D = Decimal
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
SESSION = timedelta(minutes=390)


def at(minutes: int) -> datetime:
    return OPEN + timedelta(minutes=minutes)


def trade(net: str, r: str, entry_min: int, exit_min: int, gross: str | None = None) -> ClosedTrade:
    return ClosedTrade(
        plan_id=f"p{entry_min}",
        symbol=symbol("AAA"),
        side=Side.LONG,
        qty=100,
        entry_price=D(10),
        exit_price=D(11),
        entry_at=at(entry_min),
        exit_at=at(exit_min),
        exit_reason=ExitReason.TARGET,
        gross_pnl=D(gross or net),
        commission=D(gross or net) - D(net),
        net_pnl=D(net),
        r_multiple=D(r),
    )


def test_returns_are_each_sample_over_the_one_before() -> None:
    assert returns(D(100), [D(110), D(99)]) == [D("0.1"), D("-0.1")]


def test_sharpe_worked_by_hand() -> None:
    # mean 0.01; deviations .01 -.01 -.02 .02: squares sum .001, sample variance .001/3;
    # mean / sd = sqrt(0.3); annualised * sqrt(252) = sqrt(75.6) = 8.69482...
    assert sharpe([D("0.02"), D(0), D("-0.01"), D("0.03")]) == D("8.6948")


def test_sortino_worked_by_hand() -> None:
    # downside deviation sqrt(0.01^2 / 4) = 0.005; 0.01 / 0.005 = 2; * sqrt(252) = 31.7490
    assert sortino([D("0.02"), D(0), D("-0.01"), D("0.03")]) == D("31.7490")


def test_ratios_are_none_when_they_cannot_be_computed() -> None:
    assert sharpe([D("0.01")]) is None
    assert sharpe([D("0.01"), D("0.01")]) is None  # no variation
    assert sortino([D("0.01"), D("0.02")]) is None  # no loss
    assert profit_factor([D(5), D(1)]) is None
    assert expectancy_r([]) is None
    assert win_rate([]) is None
    assert average_holding([]) is None
    assert cagr_pct(D(100), D(110), 0) is None


def test_cagr_of_21_percent_over_two_years_is_10_percent() -> None:
    assert cagr_pct(D(100), D(121), 504) == D("10.0000")


def test_drawdown_runs_from_the_peak_to_the_recovery() -> None:
    # start 100, then 120 (peak, index 1), 90 (trough, 25 % down), 100, 130 (recovered, index 4)
    fall = drawdown(D(100), [D(120), D(90), D(100), D(130), D(125)])

    assert (fall.amount, fall.pct, fall.peak_index, fall.trough_index) == (D(30), D(25), 1, 2)
    assert (fall.duration_periods, fall.recovered) == (3, True)


def test_drawdown_not_recovered_lasts_to_the_end() -> None:
    fall = drawdown(D(100), [D(120), D(90), D(100)])

    assert (fall.duration_periods, fall.recovered) == (2, False)


def test_profit_factor_expectancy_and_win_rate_by_hand() -> None:
    pnls = [D(100), D(-50), D(30), D(-30)]
    assert profit_factor(pnls) == D("1.6250")  # 130 / 80
    assert win_rate(pnls) == D("0.5000")
    assert expectancy_r([D(2), D(-1), D("0.6"), D(-1)]) == D("0.1500")


def test_exposure_counts_overlapping_positions_once() -> None:
    held = [(at(5), at(15)), (at(10), at(30)), (at(90), at(120))]
    # union: 09:35-10:00 (25 min) and 11:00-11:30 (30 min) = 55 of 390 minutes
    assert exposure_pct(held, SESSION) == D("14.1026")
    assert average_holding(held) == timedelta(minutes=20)


def test_statistics_of_a_run() -> None:
    trades = [trade("200", "2", 5, 12, gross="201"), trade("-100", "-1", 6, 40)]

    stats = statistics(
        start_equity=D(1000),
        daily_equity=[D(1100), D(1100)],
        trades=trades,
        market_time=SESSION * 2,
    )

    assert (stats.net_pnl, stats.gross_pnl, stats.sessions, stats.trade_count) == (
        D(100),
        D(101),
        2,
        2,
    )
    assert (stats.profit_factor, stats.expectancy_r, stats.win_rate) == (D(2), D("0.5"), D("0.5"))
    assert stats.exposure_pct == D("4.4872")  # 09:35-10:10 = 35 of 780 minutes
    assert stats.avg_holding == timedelta(minutes=20, seconds=30)


def test_buy_and_hold_follows_the_closes_from_the_first_open() -> None:
    stats = buy_and_hold(start_equity=D(1000), first_open=D(50), closes=[D(55), D(45), D(60)])

    assert stats.end_equity == D(1200)
    assert (stats.max_drawdown, stats.max_drawdown_pct, stats.max_drawdown_sessions) == (
        D(200),
        D("18.1818"),
        2,
    )
    assert stats.exposure_pct == D(100)


equities = st.lists(
    st.decimals(min_value=1, max_value=10**6, places=2, allow_nan=False), min_size=1, max_size=40
)
daily_returns = st.lists(
    st.decimals(min_value=D("-0.2"), max_value=D("0.2"), places=4, allow_nan=False),
    min_size=2,
    max_size=40,
)


@given(start=st.decimals(min_value=1, max_value=10**6, places=2), curve=equities)
def test_drawdown_is_a_fall_from_a_peak_within_the_curve(
    start: Decimal, curve: list[Decimal]
) -> None:
    fall = drawdown(start, curve)
    points = [start, *curve]

    assert D(0) <= fall.pct <= D(100)
    assert fall.amount == points[fall.peak_index] - points[fall.trough_index] or fall.amount == 0
    assert fall.amount <= max(points) - min(points)
    assert fall.duration_periods <= len(curve)


@given(start=st.decimals(min_value=1, max_value=10**6, places=2), curve=equities)
def test_a_rising_curve_has_no_drawdown(start: Decimal, curve: list[Decimal]) -> None:
    rising = sorted(c + start for c in curve)

    assert drawdown(start, rising).amount == 0


@given(daily_returns, st.integers(min_value=2, max_value=9))
def test_sharpe_does_not_change_with_leverage(values: list[Decimal], k: int) -> None:
    plain, levered = sharpe(values), sharpe([v * k for v in values])

    if plain is None:
        assert levered is None
    else:
        assert levered is not None
        assert abs(plain - levered) <= D("0.0001")


@given(st.lists(st.decimals(min_value=-1000, max_value=1000, places=2), min_size=1, max_size=30))
def test_profit_factor_above_one_exactly_when_the_total_is_positive(pnls: list[Decimal]) -> None:
    factor = profit_factor(pnls)

    if factor is not None and factor != 1:
        assert (factor > 1) == (sum(pnls) > 0)


@given(
    start=st.decimals(min_value=1, max_value=10**6, places=2),
    end=st.decimals(min_value=1, max_value=10**6, places=2),
    sessions=st.integers(min_value=1, max_value=2000),
)
def test_cagr_has_the_sign_of_the_gain(start: Decimal, end: Decimal, sessions: int) -> None:
    growth = cagr_pct(start, end, sessions)

    if growth is None:  # a short run annualised past 10^12: only ever a large gain
        assert end > start
    elif end > start:
        assert growth >= 0
    elif end < start:
        assert growth <= 0


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=380), st.integers(min_value=1, max_value=60)),
        max_size=20,
    )
)
def test_exposure_is_at_most_the_summed_holdings(spans: list[tuple[int, int]]) -> None:
    held = [(at(start), at(min(start + length, 390))) for start, length in spans]
    total = sum((b - a for a, b in held), timedelta(0))

    exposure = exposure_pct(held, SESSION)

    assert exposure is not None
    assert D(0) <= exposure <= D(100)
    assert exposure <= D(100) * D(total.total_seconds()) / D(SESSION.total_seconds()) + D("0.0001")


def test_cagr_is_none_for_a_wiped_out_account_or_a_meaningless_annualisation() -> None:
    assert cagr_pct(D(100), D(0), 10) is None
    assert cagr_pct(D(100), D(200), 1) is None  # 2^252: no one's growth rate
