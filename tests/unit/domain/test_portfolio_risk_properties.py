"""Portfolio risk: historical VaR, the marked loss limit, the drawdown halt, the error breaker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from fin_agent.domain.risk_engine import RiskEngine, RiskReason, StateChange, TradingState
from fin_agent.domain.rules import LossAction, LossBasis, RiskLimits
from fin_agent.domain.values import symbol
from fin_agent.domain.var import book_scenarios, book_var, daily_returns, historical_var

EQUITY = Decimal(100_000)
T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
AAA, BBB = symbol("AAA"), symbol("BBB")

money = st.decimals(min_value=-5000, max_value=5000, places=2, allow_nan=False)
pnl_lists = st.lists(money, min_size=1, max_size=60)
rets = st.lists(
    st.decimals(min_value="-0.2", max_value="0.2", places=4, allow_nan=False),
    min_size=1,
    max_size=40,
)


def state_of(risk: RiskEngine) -> TradingState:
    return risk.state


def act(risk: RiskEngine, change: StateChange | None) -> StateChange | None:
    if change is not None:
        risk.apply(change.current, change.reason)
    return change


@given(pnl_lists)
def test_var99_is_at_least_var95_and_within_the_worst_loss(pnls: list[Decimal]) -> None:
    v95, v99 = historical_var(pnls, 95), historical_var(pnls, 99)
    assert Decimal(0) <= v95 <= v99 <= max(-min(pnls), Decimal(0))


@given(pnl_lists, st.integers(min_value=1, max_value=50))
def test_var_scales_with_the_book(pnls: list[Decimal], k: int) -> None:
    assert historical_var([p * k for p in pnls], 95) == historical_var(pnls, 95) * k


@given(pnl_lists)
def test_var_of_a_history_that_never_lost_is_zero(pnls: list[Decimal]) -> None:
    assert historical_var([abs(p) for p in pnls], 99) == 0


def test_var95_is_the_third_worst_of_forty_two_days() -> None:
    pnls = [Decimal(-i) for i in range(1, 43)]  # worst -42, then -41, -40
    assert historical_var(pnls, 95) == 40  # ceil(42 * 5 %) = 3rd worst
    assert historical_var(pnls, 99) == 42


@given(rets, st.integers(min_value=1, max_value=10_000))
def test_book_of_one_long_loses_its_exposure_times_the_quantile_return(
    returns: list[Decimal], qty: int
) -> None:
    exposure = Decimal(qty) * 10
    var = book_var({AAA: exposure}, {AAA: returns})
    assert var.var95 == historical_var([exposure * r for r in returns], 95).quantize(
        Decimal("0.01")
    )
    assert var.days == len(returns)


@given(rets)
def test_a_hedged_book_has_no_var(returns: list[Decimal]) -> None:
    # Long and short the same symbol: every scenario nets to zero.
    assert book_scenarios({AAA: Decimal(0)}, {AAA: returns}) == ()
    assert book_var({AAA: Decimal(1000)}, {AAA: returns}).var99 >= 0
    netted = book_var({AAA: Decimal(1000), BBB: Decimal(-1000)}, {AAA: returns, BBB: returns})
    assert netted.var95 == 0
    assert netted.var99 == 0


def test_book_scenarios_align_on_the_most_recent_common_days() -> None:
    scenarios = book_scenarios(
        {AAA: Decimal(100), BBB: Decimal(200)},
        {AAA: [Decimal("0.5"), Decimal("0.1"), Decimal("-0.1")], BBB: [Decimal("0.01")] * 2},
    )
    assert scenarios == (Decimal("12.00"), Decimal("-8.00"))


def test_daily_returns_skip_a_zero_close() -> None:
    assert daily_returns([Decimal(10), Decimal(11), Decimal(0), Decimal(5)]) == (
        Decimal("0.1"),
        Decimal(-1),
    )


@given(
    realised=st.decimals(min_value=-3000, max_value=3000, places=2, allow_nan=False),
    open_pnl=st.decimals(min_value=-3000, max_value=3000, places=2, allow_nan=False),
)
def test_marked_loss_limit_fires_when_realised_plus_open_losses_reach_it(
    realised: Decimal, open_pnl: Decimal
) -> None:
    risk = RiskEngine(RiskLimits(daily_loss_limit_pct=Decimal(2)), EQUITY)
    change = risk.on_loss(realised, open_pnl)
    counted = realised + min(open_pnl, Decimal(0))
    assert (change is not None) == (counted <= -2000)
    # never later than the realised-only limit, so never more entries than before
    realised_only = RiskEngine(RiskLimits(loss_limit_basis=LossBasis.REALISED), EQUITY).on_loss(
        realised, open_pnl
    )
    assert realised_only is None or change is not None
    if change is not None:
        assert change.current is TradingState.REDUCING
        assert change.reason is RiskReason.DAILY_LOSS_LIMIT


def test_loss_limit_with_flatten_action_is_due_to_flatten_after_it_is_applied() -> None:
    risk = RiskEngine(RiskLimits(loss_limit_action=LossAction.FLATTEN), EQUITY)
    change = act(risk, risk.on_loss(Decimal(0), Decimal(-2500)))
    assert change is not None
    assert change.reason is RiskReason.DAILY_LOSS_FLATTEN
    assert risk.state is TradingState.REDUCING
    assert risk.flatten_due
    assert risk.loss_limit_hit
    assert "closing every open position" in change.detail
    assert risk.on_loss(Decimal(0), Decimal(-9000)) is None  # once a day


@given(
    peak=st.decimals(min_value=50_000, max_value=200_000, places=2, allow_nan=False),
    fall_pct=st.decimals(min_value=0, max_value=60, places=2, allow_nan=False),
)
def test_drawdown_halts_exactly_at_the_limit(peak: Decimal, fall_pct: Decimal) -> None:
    risk = RiskEngine(RiskLimits(max_drawdown_pct=Decimal(10)), EQUITY)
    equity = peak * (1 - fall_pct / 100)
    change = risk.on_drawdown(peak, equity)
    assert (change is not None) == (100 * (peak - equity) / peak >= 10)
    if change is not None:
        assert change.current is TradingState.HALTED
        assert change.reason is RiskReason.MAX_DRAWDOWN


def test_drawdown_is_off_by_default_and_an_operator_lifts_its_halt_for_the_day() -> None:
    assert RiskEngine(RiskLimits(), EQUITY).on_drawdown(EQUITY, Decimal(1)) is None
    risk = RiskEngine(RiskLimits(max_drawdown_pct=Decimal(5)), EQUITY)
    act(risk, risk.on_drawdown(EQUITY, Decimal(90_000)))
    assert risk.state is TradingState.HALTED
    assert risk.halted_by is RiskReason.MAX_DRAWDOWN
    assert risk.resume("back", RiskReason.STORE_OUTAGE) is None
    act(risk, risk.resume("looked at it"))
    assert state_of(risk) is TradingState.ACTIVE
    assert risk.on_drawdown(EQUITY, Decimal(80_000)) is None  # not again the same day


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=20),
    count=st.integers(min_value=1, max_value=6),
)
def test_error_breaker_trips_when_count_errors_fall_within_the_window(
    gaps: list[int], count: int
) -> None:
    limits = RiskLimits(error_breaker_count=count, error_breaker_window_mins=10)
    risk = RiskEngine(limits, EQUITY)
    times: list[datetime] = []
    at = T0
    for gap in gaps:
        at += timedelta(minutes=gap)
        times.append(at)
        risk.record_error(at)
        in_window = sum(1 for t in times if at - t < timedelta(minutes=10))
        change = risk.on_errors(at)
        assert (change is not None) == (in_window >= count)
        if change is not None:
            assert change.reason is RiskReason.ERROR_BREAKER
            return


def test_error_breaker_off_at_zero_and_reset_by_a_resume() -> None:
    off = RiskEngine(RiskLimits(error_breaker_count=0), EQUITY)
    off.record_error(T0, 100)
    assert off.on_errors(T0) is None
    risk = RiskEngine(replace(RiskLimits(), error_breaker_count=2), EQUITY)
    risk.record_error(T0, 2)
    act(risk, risk.on_errors(T0))
    assert risk.state is TradingState.HALTED
    assert risk.halted_by is RiskReason.ERROR_BREAKER
    act(risk, risk.resume("fixed the broker"))
    assert state_of(risk) is TradingState.ACTIVE
    risk.record_error(T0 + timedelta(minutes=1))
    assert risk.on_errors(T0 + timedelta(minutes=1)) is None  # the errors before count no more


def test_var_limit_refuses_an_entry_over_it() -> None:
    risk = RiskEngine(RiskLimits(max_var_pct=Decimal(1)), EQUITY)
    ok = risk.check(
        notional=Decimal(1000), open_positions=0, gross_exposure=Decimal(0), at=T0,
        book_var=Decimal(1000),
    )  # fmt: skip
    refused = risk.check(
        notional=Decimal(1000), open_positions=0, gross_exposure=Decimal(0), at=T0,
        book_var=Decimal("1000.01"),
    )  # fmt: skip
    assert ok.approved
    assert not refused.approved
    assert refused.reason is RiskReason.MAX_VAR
    assert refused.reason.keeps_plan_armed
    assert "risk.max_var_pct 1" in refused.detail
