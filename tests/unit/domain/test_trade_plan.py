"""TradePlan: build_plan figures worked by hand, rejections, the state machine and triggers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fin_agent.domain.errors import InvalidTransitionError
from fin_agent.domain.gap_scanner import Candidate
from fin_agent.domain.indicators import OpeningRange
from fin_agent.domain.orders import ExitReason
from fin_agent.domain.rules import PlanRules
from fin_agent.domain.trade_plan import (
    EntryWindow,
    PlanRejection,
    PlanRejectReason,
    PlanState,
    TradePlan,
    build_plan,
    plan_id,
)
from fin_agent.domain.values import Bar, Side, symbol

DAY = date(2024, 1, 2)
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # 09:30 ET
OR_END = OPEN + timedelta(minutes=5)  # 09:35 ET
DEADLINE = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)  # 10:30 ET
WINDOW = EntryWindow(opens_at=OR_END, closes_at=DEADLINE)
EQUITY = Decimal(100_000)
AAA = symbol("AAA")
PLAN_ID = "gap_and_go-2024-01-02-AAA"


def candidate(side: Side = Side.LONG, atr: str = "0.75", rank: int = 1) -> Candidate:
    return Candidate(
        symbol=AAA,
        rank=rank,
        side=side,
        prev_close=Decimal("9.50"),
        pm_last=Decimal("10.30"),
        pm_volume=100_000,
        gap_pct=Decimal("8.42"),
        atr=Decimal(atr),
        adv=Decimal(1_000_000),
        history_bars=20,
        headline_count=0,
        top_headline=None,
    )


def opening(high: str = "10.50", low: str = "10.10") -> OpeningRange:
    return OpeningRange(high=Decimal(high), low=Decimal(low), bar_count=5, ends_at=OR_END)


def plan_for(
    cand: Candidate,
    rng: OpeningRange | None,
    *,
    equity: Decimal = EQUITY,
    rules: PlanRules | None = None,
) -> TradePlan | PlanRejection:
    return build_plan(
        cand,
        rng,
        day=DAY,
        equity=equity,
        window=WINDOW,
        rules=rules or PlanRules(),
        strategy="gap_and_go",
        at=OR_END,
    )


def built(
    cand: Candidate, rng: OpeningRange | None, *, rules: PlanRules | None = None
) -> TradePlan:
    plan = plan_for(cand, rng, rules=rules)
    assert isinstance(plan, TradePlan), plan
    return plan


# --- build_plan figures ---------------------------------------------------------------------------


def test_build_plan_long_takes_the_atr_stop_rounded_up_and_caps_the_size() -> None:
    # entry = OR_high + 0.01 = 10.50 + 0.01 = 10.51
    # OR stop = OR_low - 0.01 = 10.09; ATR stop = 10.51 - 0.5 * 0.75 = 10.135 -> up to 10.14
    # stop = the higher (tighter) = 10.14; R = 10.51 - 10.14 = 0.37
    # target = 10.51 + 2 * 0.37 = 11.25
    # size by risk = floor(100000 * 1% / 0.37) = floor(2702.7) = 2702
    # cap = floor(100000 * 25% / 10.51) = floor(2378.7) = 2378 -> qty 2378
    plan = built(candidate(Side.LONG, atr="0.75"), opening("10.50", "10.10"))

    assert (plan.entry, plan.stop, plan.target, plan.qty) == (
        Decimal("10.51"),
        Decimal("10.14"),
        Decimal("11.25"),
        2378,
    )
    assert plan.risk_per_share == Decimal("0.37")
    assert plan.state is PlanState.PLANNED
    assert plan.id == PLAN_ID
    assert (plan.or_high, plan.or_low, plan.atr) == (
        Decimal("10.50"),
        Decimal("10.10"),
        Decimal("0.75"),
    )
    assert plan.updated_at == OR_END
    assert plan.window == WINDOW


def test_build_plan_long_takes_the_opening_range_stop_when_tighter_and_sizes_by_risk() -> None:
    # entry = 20.00 + 0.01 = 20.01
    # OR stop = 19.00 - 0.01 = 18.99; ATR stop = 20.01 - 0.5 * 4.00 = 18.01 -> stop 18.99
    # R = 20.01 - 18.99 = 1.02; target = 20.01 + 2 * 1.02 = 22.05
    # size by risk = floor(1000 / 1.02) = floor(980.39) = 980
    # cap = floor(25000 / 20.01) = floor(1249.4) = 1249 -> qty 980
    plan = built(candidate(Side.LONG, atr="4.00"), opening("20.00", "19.00"))

    assert (plan.entry, plan.stop, plan.target, plan.qty) == (
        Decimal("20.01"),
        Decimal("18.99"),
        Decimal("22.05"),
        980,
    )


def test_build_plan_short_mirrors_entry_stop_rounding_and_target() -> None:
    # entry = OR_low - 0.01 = 10.10 - 0.01 = 10.09
    # OR stop = OR_high + 0.01 = 10.51; ATR stop = 10.09 + 0.375 = 10.465 -> down to 10.46
    # stop = the lower (tighter) = 10.46; R = 0.37; target = 10.09 - 2 * 0.37 = 9.35
    # size by risk = floor(1000 / 0.37) = 2702; cap = floor(25000 / 10.09) = floor(2477.7) = 2477
    plan = built(candidate(Side.SHORT, atr="0.75"), opening("10.50", "10.10"))

    assert plan.side is Side.SHORT
    assert (plan.entry, plan.stop, plan.target, plan.qty) == (
        Decimal("10.09"),
        Decimal("10.46"),
        Decimal("9.35"),
        2477,
    )


def test_build_plan_short_takes_the_opening_range_stop_when_tighter() -> None:
    # entry = 19.00 - 0.01 = 18.99; OR stop = 20.01; ATR stop = 18.99 + 2.00 = 20.99 -> 20.01
    # R = 1.02; target = 18.99 - 2.04 = 16.95; risk size 980, cap floor(25000 / 18.99) = 1316
    plan = built(candidate(Side.SHORT, atr="4.00"), opening("20.00", "19.00"))

    assert (plan.entry, plan.stop, plan.target, plan.qty) == (
        Decimal("18.99"),
        Decimal("20.01"),
        Decimal("16.95"),
        980,
    )


def test_build_plan_follows_the_rule_parameters() -> None:
    rules = PlanRules(
        entry_offset=Decimal("0.05"),
        atr_stop_multiple=Decimal(1),
        reward_risk=Decimal(3),
        risk_per_trade_pct=Decimal("0.5"),
        max_position_pct=Decimal(100),
    )

    # entry = 10.55; OR stop 10.05; ATR stop 10.55 - 0.40 = 10.15 -> stop 10.15, R 0.40
    # target = 10.55 + 3 * 0.40 = 11.75; size = floor(500 / 0.40) = 1250 (cap 9478)
    plan = built(candidate(Side.LONG, atr="0.40"), opening("10.50", "10.10"), rules=rules)

    assert (plan.entry, plan.stop, plan.target, plan.qty) == (
        Decimal("10.55"),
        Decimal("10.15"),
        Decimal("11.75"),
        1250,
    )


def test_build_plan_rejects_a_zero_size_with_a_reason() -> None:
    # size by risk = floor(30 * 1% / 0.37) = floor(0.81) = 0
    rejection = plan_for(candidate(), opening(), equity=Decimal(30))

    assert rejection == PlanRejection(
        plan_id=PLAN_ID,
        symbol=AAA,
        reason=PlanRejectReason.ZERO_SIZE,
        detail=(
            "size rounds to 0 shares (equity 30, entry 10.51, stop 10.14); "
            "raise plan.risk_per_trade_pct or plan.max_position_pct, or skip the symbol"
        ),
    )


def test_build_plan_rejects_when_the_position_cap_rounds_to_zero() -> None:
    # cap = floor(40 * 25% / 10.51) = floor(0.95) = 0, though risk alone would allow 1 share
    rules = PlanRules(risk_per_trade_pct=Decimal(100))

    rejection = plan_for(candidate(), opening(), equity=Decimal(40), rules=rules)

    assert isinstance(rejection, PlanRejection)
    assert rejection.reason is PlanRejectReason.ZERO_SIZE


def test_build_plan_uses_the_range_stop_when_the_rounded_atr_stop_lands_on_the_entry() -> None:
    # ATR stop = 10.51 - 0.5 * 0.01 = 10.505 -> up to 10.51 = the entry: no risk, so it is
    # no stop at all, and the opening-range stop (OR low - 0.01) is the one that holds.
    plan = plan_for(candidate(atr="0.01"), opening())

    assert isinstance(plan, TradePlan)
    assert plan.stop == plan.or_low - Decimal("0.01")
    assert plan.stop < plan.entry


def test_build_plan_rejects_without_an_opening_range() -> None:
    rejection = plan_for(candidate(), None)

    assert rejection == PlanRejection(
        plan_id=PLAN_ID,
        symbol=AAA,
        reason=PlanRejectReason.NO_OPENING_RANGE,
        detail="no bars in the opening range",
    )


def test_build_plan_long_stop_stays_below_entry_with_a_sub_cent_opening_range() -> None:
    # entry = 10.005 + 0.01 = 10.015; ATR stop = 10.015 - 0.0045 = 10.0105 -> up to 10.02 > entry
    result = plan_for(candidate(Side.LONG, atr="0.009"), opening("10.005", "9.90"))

    if isinstance(result, TradePlan):
        assert result.stop < result.entry < result.target


def test_plan_id_is_deterministic_per_day_symbol_and_strategy() -> None:
    assert plan_id(DAY, AAA, "gap_and_go") == plan_id(DAY, AAA, "gap_and_go") == PLAN_ID
    assert plan_id(date(2024, 1, 3), AAA, "gap_and_go") != PLAN_ID
    assert plan_id(DAY, symbol("BBB"), "gap_and_go") != PLAN_ID
    assert plan_id(DAY, AAA, "other") != PLAN_ID


# --- state machine --------------------------------------------------------------------------------

AT = OR_END + timedelta(minutes=10)
PLAN = built(candidate(), opening())

MOVES: dict[PlanState, Callable[[TradePlan], TradePlan]] = {
    PlanState.TRIGGERED: lambda p: p.trigger(AT),
    PlanState.FILLED: lambda p: p.fill(Decimal("10.51"), AT),
    PlanState.CLOSED: lambda p: p.close(Decimal("11.25"), ExitReason.TARGET, AT),
    PlanState.EXPIRED: lambda p: p.expire(AT),
    PlanState.CANCELLED: lambda p: p.cancel("risk refused", AT),
}
ALLOWED = {
    (PlanState.PLANNED, PlanState.TRIGGERED),
    (PlanState.PLANNED, PlanState.EXPIRED),
    (PlanState.PLANNED, PlanState.CANCELLED),
    (PlanState.TRIGGERED, PlanState.FILLED),
    (PlanState.TRIGGERED, PlanState.CANCELLED),
    (PlanState.FILLED, PlanState.CLOSED),
}
FORBIDDEN = sorted((a, b) for a in PlanState for b in MOVES if (a, b) not in ALLOWED)


@pytest.mark.parametrize(("start", "target"), sorted(ALLOWED))
def test_plan_moves_along_every_allowed_transition(start: PlanState, target: PlanState) -> None:
    plan = replace(PLAN, state=start)

    moved = MOVES[target](plan)

    assert moved.state is target
    assert moved.updated_at == AT
    assert plan.state is start  # the original is untouched


@pytest.mark.parametrize(("start", "target"), FORBIDDEN)
def test_plan_refuses_every_forbidden_transition(start: PlanState, target: PlanState) -> None:
    plan = replace(PLAN, state=start)

    prefix = f"plan {PLAN_ID} cannot go from {start} to {target}; allowed from {start}: "
    with pytest.raises(InvalidTransitionError, match=f"^{re.escape(prefix)}"):
        MOVES[target](plan)


@pytest.mark.parametrize("final", [PlanState.CLOSED, PlanState.EXPIRED, PlanState.CANCELLED])
def test_plan_final_states_say_nothing_is_allowed(final: PlanState) -> None:
    plan = replace(PLAN, state=final)

    with pytest.raises(InvalidTransitionError, match=r"allowed from \w+: nothing \(final\)$"):
        plan.trigger(AT)


def test_plan_forbidden_transition_names_the_allowed_states() -> None:
    with pytest.raises(InvalidTransitionError, match="closed") as raised:
        replace(PLAN, state=PlanState.FILLED).expire(AT)

    assert "cannot go from filled to expired" in str(raised.value)


def test_plan_transitions_record_prices_reasons_and_notes() -> None:
    filled = PLAN.trigger(AT).fill(Decimal("10.52"), AT)
    closed = filled.close(Decimal("10.14"), ExitReason.STOP, AT + timedelta(minutes=1))

    assert filled.fill_price == Decimal("10.52")
    assert (closed.exit_price, closed.exit_reason) == (Decimal("10.14"), ExitReason.STOP)
    assert closed.updated_at == AT + timedelta(minutes=1)
    assert PLAN.expire(AT).note == "entry deadline passed"
    assert PLAN.trigger(AT).cancel("operator halt", AT).note == "operator halt"


@pytest.mark.parametrize(
    ("state", "is_open"),
    [
        (PlanState.PLANNED, True),
        (PlanState.TRIGGERED, True),
        (PlanState.FILLED, True),
        (PlanState.CLOSED, False),
        (PlanState.EXPIRED, False),
        (PlanState.CANCELLED, False),
    ],
)
def test_plan_is_open_until_a_final_state(state: PlanState, is_open: bool) -> None:
    assert replace(PLAN, state=state).is_open is is_open


# --- triggers -------------------------------------------------------------------------------------


def bar(start: datetime, high: str, low: str) -> Bar:
    return Bar(
        symbol=AAA,
        start=start,
        open=Decimal(low),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(low),
        volume=1_000,
    )


@pytest.mark.parametrize(
    ("start", "high", "expected"),
    [
        (OR_END, "10.51", True),  # first bar of the window, touches the trigger
        (OR_END, "10.50", False),  # one cent short
        (OR_END - timedelta(minutes=1), "10.60", False),  # inside the opening range
        (DEADLINE - timedelta(minutes=1), "10.60", True),  # last bar before the deadline
        (DEADLINE, "10.60", False),  # the deadline is exclusive
    ],
)
def test_long_plan_triggers_when_the_high_reaches_the_entry_inside_the_window(
    start: datetime, high: str, expected: bool
) -> None:
    assert PLAN.triggered_by(bar(start, high, "10.20")) is expected


@pytest.mark.parametrize(("low", "expected"), [("10.09", True), ("10.00", True), ("10.10", False)])
def test_short_plan_triggers_when_the_low_reaches_the_entry(low: str, expected: bool) -> None:
    plan = built(candidate(Side.SHORT), opening())  # entry 10.09

    assert plan.triggered_by(bar(OR_END, "10.40", low)) is expected


def test_short_plan_ignores_a_bar_that_only_breaks_the_high() -> None:
    plan = built(candidate(Side.SHORT), opening())

    assert plan.triggered_by(bar(OR_END, "10.60", "10.20")) is False


def test_plan_does_not_trigger_again_once_triggered() -> None:
    assert PLAN.trigger(AT).triggered_by(bar(OR_END, "10.60", "10.20")) is False


def test_entry_window_contains_bars_starting_in_it() -> None:
    assert WINDOW.contains(bar(OR_END, "10.60", "10.20"))
    assert not WINDOW.contains(bar(DEADLINE, "10.60", "10.20"))


def test_build_plan_rejects_a_short_whose_target_would_not_be_a_positive_price() -> None:
    # short entry 2.99 (OR low 3.00 - 0.01); stops: range 6.01, ATR 2.99 + 0.5 * 4 = 4.99;
    # the tighter (lower) is 4.99, so R = 2.00 and the target 2.99 - 2 * 2.00 = -1.01.
    rejection = plan_for(candidate(side=Side.SHORT, atr="4"), opening(high="6.00", low="3.00"))

    assert isinstance(rejection, PlanRejection)
    assert rejection.reason is PlanRejectReason.INVALID_PRICES
    assert "target -1.010 is not a positive price" in rejection.detail
