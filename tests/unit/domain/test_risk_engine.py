"""RiskEngine: refusal reasons in priority order, the order-rate window, loss limit, halt/resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fin_agent.domain.risk_engine import (
    RiskDecision,
    RiskEngine,
    RiskReason,
    StateChange,
    TradingState,
)
from fin_agent.domain.rules import RiskLimits

EQUITY = Decimal(100_000)
T0 = datetime(2024, 1, 2, 14, 40, tzinfo=UTC)
LIMITS = RiskLimits(
    max_open_positions=3,
    max_gross_exposure_pct=Decimal(100),
    daily_loss_limit_pct=Decimal(2),
    max_orders_per_minute=10,
)


def engine(limits: RiskLimits = LIMITS) -> RiskEngine:
    return RiskEngine(limits, EQUITY)


def check(
    risk: RiskEngine,
    *,
    notional: str = "10000",
    open_positions: int = 0,
    gross_exposure: str = "0",
    at: datetime = T0,
) -> RiskDecision:
    return risk.check(
        notional=Decimal(notional),
        open_positions=open_positions,
        gross_exposure=Decimal(gross_exposure),
        at=at,
    )


def fill_rate(risk: RiskEngine, count: int = 10) -> None:
    """Approve and place `count` orders one second apart from T0."""
    for i in range(count):
        assert check(risk, at=T0 + timedelta(seconds=i)).approved
        risk.record_order(T0 + timedelta(seconds=i))


def act(risk: RiskEngine, change: StateChange | None) -> StateChange | None:
    """Apply a decided change, as the day does when its `risk.state_changed` event is applied."""
    if change is not None:
        risk.apply(change.current, change.reason)
    return change


def test_risk_engine_approves_an_entry_inside_every_limit() -> None:
    assert check(engine()) == RiskDecision(approved=True)


def test_risk_engine_refuses_when_max_open_positions_reached() -> None:
    decision = check(engine(), open_positions=3)

    assert decision == RiskDecision(
        approved=False,
        reason=RiskReason.MAX_OPEN_POSITIONS,
        detail="3 positions open, risk.max_open_positions is 3",
    )


def test_risk_engine_approves_one_below_max_open_positions() -> None:
    assert check(engine(), open_positions=2).approved


def test_risk_engine_refuses_when_gross_exposure_would_exceed_the_cap() -> None:
    decision = check(engine(), gross_exposure="90000", notional="10000.01")

    assert decision == RiskDecision(
        approved=False,
        reason=RiskReason.MAX_GROSS_EXPOSURE,
        detail="gross exposure would be 100000.01, cap 100000.00 (risk.max_gross_exposure_pct 100)",
    )


def test_risk_engine_approves_gross_exposure_exactly_at_the_cap() -> None:
    assert check(engine(), gross_exposure="90000", notional="10000").approved


def test_risk_engine_refuses_beyond_max_orders_per_minute() -> None:
    risk = engine()
    fill_rate(risk)

    decision = check(risk, at=T0 + timedelta(seconds=59))

    assert decision == RiskDecision(
        approved=False,
        reason=RiskReason.MAX_ORDER_RATE,
        detail="10 orders in the last minute, risk.max_orders_per_minute is 10",
    )


def test_risk_engine_order_rate_window_slides_after_one_minute() -> None:
    risk = engine()
    fill_rate(risk)  # at T0, T0+1s, ..., T0+9s

    # exactly one minute after the first order, that order has left the window
    assert check(risk, at=T0 + timedelta(seconds=60)).approved
    risk.record_order(T0 + timedelta(seconds=60))
    # the window now holds T0+1s .. T0+9s and T0+60s: full again
    assert not check(risk, at=T0 + timedelta(seconds=60, microseconds=500_000)).approved
    assert check(risk, at=T0 + timedelta(seconds=61)).approved


def test_risk_engine_refusals_do_not_count_toward_the_order_rate() -> None:
    risk = engine(RiskLimits(max_orders_per_minute=1))
    for _ in range(5):
        assert not check(risk, open_positions=3).approved

    assert check(risk).approved
    risk.record_order(T0)
    assert check(risk).reason is RiskReason.MAX_ORDER_RATE


def test_risk_engine_decisions_change_nothing_until_applied() -> None:
    risk = engine()

    change = risk.on_realised(Decimal(-2000))
    risk.halt("stop")
    assert check(risk).approved  # decided twice, applied never: still ACTIVE

    act(risk, change)
    assert risk.state is TradingState.REDUCING
    assert risk.loss_limit_hit


def failing_everything(risk: RiskEngine) -> RiskDecision:
    return check(risk, open_positions=3, gross_exposure="100000", at=T0 + timedelta(seconds=30))


def test_risk_engine_refusal_priority_halted_first() -> None:
    risk = engine()
    fill_rate(risk)
    act(risk, risk.halt("operator"))

    assert failing_everything(risk).reason is RiskReason.HALTED


def test_risk_engine_refusal_priority_reducing_before_the_limits() -> None:
    risk = engine()
    fill_rate(risk)
    act(risk, risk.on_realised(Decimal(-2000)))

    assert failing_everything(risk).reason is RiskReason.REDUCING


@pytest.mark.parametrize(
    ("open_positions", "gross_exposure", "reason"),
    [
        (3, "100000", RiskReason.MAX_OPEN_POSITIONS),
        (2, "100000", RiskReason.MAX_GROSS_EXPOSURE),
        (2, "0", RiskReason.MAX_ORDER_RATE),
    ],
)
def test_risk_engine_refusal_priority_positions_then_exposure_then_rate(
    open_positions: int, gross_exposure: str, reason: RiskReason
) -> None:
    risk = engine()
    fill_rate(risk)  # the rate limit is reached too

    decision = check(
        risk,
        open_positions=open_positions,
        gross_exposure=gross_exposure,
        at=T0 + timedelta(seconds=30),
    )

    assert decision.reason is reason


def test_risk_engine_loss_limit_is_the_percentage_of_start_equity() -> None:
    assert engine().loss_limit == Decimal(2000)


def test_risk_engine_stays_active_one_cent_short_of_the_daily_loss_limit() -> None:
    risk = engine()

    assert risk.on_realised(Decimal("-1999.99")) is None
    assert risk.state is TradingState.ACTIVE


def test_risk_engine_moves_to_reducing_exactly_at_the_daily_loss_limit() -> None:
    risk = engine()

    change = act(risk, risk.on_realised(Decimal("-2000.00")))

    assert change == StateChange(
        previous=TradingState.ACTIVE,
        current=TradingState.REDUCING,
        reason=RiskReason.DAILY_LOSS_LIMIT,
        detail=(
            "realised -2000.00 reached the daily loss limit of -2000.00 "
            "(risk.daily_loss_limit_pct 2)"
        ),
    )
    assert risk.state is TradingState.REDUCING


def test_risk_engine_refuses_new_entries_when_reducing() -> None:
    risk = engine()
    act(risk, risk.on_realised(Decimal(-2500)))

    assert check(risk) == RiskDecision(
        approved=False,
        reason=RiskReason.REDUCING,
        detail="daily loss limit hit: no new entries today",
    )


def test_risk_engine_reports_the_reducing_change_only_once() -> None:
    risk = engine()
    act(risk, risk.on_realised(Decimal(-2000)))

    assert risk.on_realised(Decimal(-3000)) is None
    assert risk.on_realised(Decimal(500)) is None
    assert risk.state is TradingState.REDUCING


def test_risk_engine_ignores_profits() -> None:
    risk = engine()

    assert risk.on_realised(Decimal(5000)) is None
    assert risk.state is TradingState.ACTIVE


def test_risk_engine_halt_refuses_entries_until_resumed() -> None:
    risk = engine()

    halted = act(risk, risk.halt("operator pressed stop"))

    assert halted == StateChange(
        previous=TradingState.ACTIVE,
        current=TradingState.HALTED,
        reason=RiskReason.OPERATOR,
        detail="operator pressed stop",
    )
    assert check(risk) == RiskDecision(
        approved=False, reason=RiskReason.HALTED, detail="trading is halted by an operator"
    )

    resumed = act(risk, risk.resume("all clear"))

    assert resumed == StateChange(
        previous=TradingState.HALTED,
        current=TradingState.ACTIVE,
        reason=RiskReason.OPERATOR,
        detail="all clear",
    )
    assert check(risk).approved


def test_risk_engine_halt_twice_and_resume_when_not_halted_change_nothing() -> None:
    risk = engine()

    assert risk.resume("not halted") is None
    act(risk, risk.halt("stop"))
    assert risk.halt("stop again") is None
    assert risk.state is TradingState.HALTED


def test_risk_engine_can_halt_while_reducing() -> None:
    risk = engine()
    act(risk, risk.on_realised(Decimal(-2000)))

    change = act(risk, risk.halt("stop"))

    assert change is not None
    assert (change.previous, change.current) == (TradingState.REDUCING, TradingState.HALTED)


def test_risk_engine_loss_while_halted_does_not_leave_halted_but_is_recorded() -> None:
    risk = engine()
    act(risk, risk.halt("stop"))

    change = act(risk, risk.on_realised(Decimal(-5000)))

    assert change is not None
    assert (change.previous, change.current) == (TradingState.HALTED, TradingState.HALTED)
    assert change.reason is RiskReason.DAILY_LOSS_LIMIT
    assert risk.state is TradingState.HALTED
    assert risk.loss_limit_hit


def test_risk_engine_resume_after_the_daily_loss_limit_still_refuses_entries() -> None:
    risk = engine()
    act(risk, risk.on_realised(Decimal(-2000)))
    risk.halt("stop")

    act(risk, risk.resume("all clear"))

    assert risk.state is TradingState.REDUCING
    assert not check(risk).approved


def test_risk_engine_resume_remembers_a_loss_limit_crossed_while_halted() -> None:
    risk = engine()
    act(risk, risk.halt("stop"))
    act(risk, risk.on_realised(Decimal(-2000)))

    act(risk, risk.resume("all clear"))

    assert not check(risk).approved


def test_risk_engine_store_outage_halt_is_lifted_by_the_store_not_over_an_operators_halt() -> None:
    risk = engine()
    act(risk, risk.halt("store down for 900 s", RiskReason.STORE_OUTAGE))
    assert risk.halted_by is RiskReason.STORE_OUTAGE
    assert risk.resume("operator says go") is None  # an operator's resume is not the store's

    act(risk, risk.resume("the store is back", RiskReason.STORE_OUTAGE))
    assert risk.state is TradingState.ACTIVE
    assert risk.halted_by is None

    act(risk, risk.halt("operator pressed stop"))
    assert risk.resume("the store is back", RiskReason.STORE_OUTAGE) is None
    assert risk.state is TradingState.HALTED
