"""Sizing properties: risk and position caps always hold, stops sit on the losing side, no 0 qty."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fin_agent.domain.errors import DomainError
from fin_agent.domain.gap_scanner import Candidate
from fin_agent.domain.indicators import OpeningRange
from fin_agent.domain.orders import BracketOrder
from fin_agent.domain.rules import PlanRules
from fin_agent.domain.trade_plan import (
    EntryWindow,
    PlanRejection,
    TradePlan,
    build_plan,
    position_size,
)
from fin_agent.domain.values import Side, symbol

HUNDRED = Decimal(100)
OR_END = datetime(2024, 1, 2, 14, 35, tzinfo=UTC)
WINDOW = EntryWindow(opens_at=OR_END, closes_at=OR_END + timedelta(minutes=55))

equities = st.decimals(min_value=Decimal(100), max_value=Decimal(10_000_000), places=2)
cents = st.decimals(min_value=Decimal("1.00"), max_value=Decimal(1_000), places=2)
risk_pcts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5), places=2)
position_pcts = st.decimals(min_value=Decimal(1), max_value=Decimal(100), places=2)


@st.composite
def plan_rules(draw: st.DrawFn) -> PlanRules:
    return PlanRules(
        entry_offset=draw(st.sampled_from([Decimal("0.01"), Decimal("0.02"), Decimal("0.05")])),
        atr_stop_multiple=draw(
            st.decimals(min_value=Decimal("0.1"), max_value=Decimal(3), places=2)
        ),
        reward_risk=draw(st.decimals(min_value=Decimal("0.5"), max_value=Decimal(5), places=1)),
        risk_per_trade_pct=draw(risk_pcts),
        max_position_pct=draw(position_pcts),
    )


@given(
    equity=equities,
    entry=cents,
    stop=cents,
    risk_pct=risk_pcts,
    position_pct=position_pcts,
)
def test_position_size_never_exceeds_the_risk_budget_or_the_position_cap(
    equity: Decimal, entry: Decimal, stop: Decimal, risk_pct: Decimal, position_pct: Decimal
) -> None:
    rules = PlanRules(risk_per_trade_pct=risk_pct, max_position_pct=position_pct)
    risk_budget = equity * risk_pct / HUNDRED
    position_cap = equity * position_pct / HUNDRED

    qty = position_size(equity, entry, stop, rules)

    assert qty >= 0
    assert qty * abs(entry - stop) <= risk_budget
    assert qty * entry <= position_cap
    if entry != stop:  # and it is the largest size that fits both
        more = qty + 1
        assert more * abs(entry - stop) > risk_budget or more * entry > position_cap


@given(equity=equities, price=cents, rules=plan_rules())
def test_position_size_is_zero_without_risk(
    equity: Decimal, price: Decimal, rules: PlanRules
) -> None:
    assert position_size(equity, price, price, rules) == 0


@given(
    side=st.sampled_from(Side),
    or_low=cents,
    or_width=st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=2),
    atr=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(50), places=4),
    equity=equities,
    rules=plan_rules(),
)
def test_build_plan_respects_the_limits_and_puts_the_stop_on_the_losing_side(
    side: Side, or_low: Decimal, or_width: Decimal, atr: Decimal, equity: Decimal, rules: PlanRules
) -> None:
    opening = OpeningRange(high=or_low + or_width, low=or_low, bar_count=5, ends_at=OR_END)
    candidate = Candidate(
        symbol=symbol("AAA"),
        rank=1,
        side=side,
        prev_close=or_low,
        pm_last=or_low,
        pm_volume=None,
        gap_pct=Decimal(5),
        atr=atr,
        adv=Decimal(1_000_000),
        history_bars=20,
        headline_count=0,
        top_headline=None,
    )

    result = build_plan(
        candidate,
        opening,
        day=date(2024, 1, 2),
        equity=equity,
        window=WINDOW,
        rules=rules,
        strategy="gap_and_go",
        at=OR_END,
    )

    if isinstance(result, PlanRejection):
        return
    assert isinstance(result, TradePlan)
    assert result.qty > 0
    assert side.sign * (result.entry - result.stop) > 0  # stop on the losing side
    assert side.sign * (result.target - result.entry) > 0  # target on the winning side
    assert result.qty * abs(result.entry - result.stop) <= equity * rules.risk_per_trade_pct / 100
    assert result.qty * result.entry <= equity * rules.max_position_pct / 100
    # and the broker accepts the plan as a bracket order
    BracketOrder(
        client_order_id=result.id,
        symbol=result.symbol,
        side=result.side,
        qty=result.qty,
        trigger=result.entry,
        stop=result.stop,
        target=result.target,
        placed_at=OR_END,
    )


@given(
    side=st.sampled_from(Side),
    or_low=cents,
    equity=st.decimals(min_value=Decimal(1), max_value=Decimal(50), places=2),
)
def test_build_plan_rejects_instead_of_planning_zero_shares(
    side: Side, or_low: Decimal, equity: Decimal
) -> None:
    opening = OpeningRange(high=or_low + 1, low=or_low, bar_count=5, ends_at=OR_END)
    candidate = Candidate(
        symbol=symbol("AAA"),
        rank=1,
        side=side,
        prev_close=or_low,
        pm_last=or_low,
        pm_volume=None,
        gap_pct=Decimal(5),
        atr=Decimal(10),
        adv=Decimal(1_000_000),
        history_bars=20,
        headline_count=0,
        top_headline=None,
    )
    rules = PlanRules()
    # R >= 1.02 (the opening range stop), so 1 % of at most 50 buys no share
    assume(equity * rules.risk_per_trade_pct / 100 < Decimal("1.02"))

    result = build_plan(
        candidate,
        opening,
        day=date(2024, 1, 2),
        equity=equity,
        window=WINDOW,
        rules=rules,
        strategy="gap_and_go",
        at=OR_END,
    )

    assert isinstance(result, PlanRejection)


@given(qty=st.integers(max_value=0), side=st.sampled_from(Side))
def test_bracket_order_refuses_a_quantity_below_one(qty: int, side: Side) -> None:
    sign = side.sign
    with pytest.raises(DomainError, match=f"^order p-1: quantity must be positive, got {qty}$"):
        BracketOrder(
            client_order_id="p-1",
            symbol=symbol("AAA"),
            side=side,
            qty=qty,
            trigger=Decimal(10),
            stop=Decimal(10) - sign,
            target=Decimal(10) + 2 * sign,
            placed_at=OR_END,
        )


@pytest.mark.parametrize("side", list(Side))
def test_bracket_order_refuses_a_stop_on_the_winning_side(side: Side) -> None:
    sign = side.sign
    with pytest.raises(DomainError, match=f"a {side} bracket needs the stop on the losing side"):
        BracketOrder(
            client_order_id="p-1",
            symbol=symbol("AAA"),
            side=side,
            qty=1,
            trigger=Decimal(10),
            stop=Decimal(10) + sign,
            target=Decimal(10) + 2 * sign,
            placed_at=OR_END,
        )
