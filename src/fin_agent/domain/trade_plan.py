"""`TradePlan`: entry, stop, target and size for one candidate, and its life as a state machine.

planned ──trigger──▶ triggered ──fill──▶ filled ──close──▶ closed
   │                     │
   ├──expire──▶ expired  └──cancel──▶ cancelled
   └──cancel──▶ cancelled
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from fin_agent.domain.errors import InvalidTransitionError
from fin_agent.domain.fill_rules import trigger_reached
from fin_agent.domain.gap_scanner import Candidate
from fin_agent.domain.indicators import OpeningRange
from fin_agent.domain.orders import ExitReason
from fin_agent.domain.rules import PlanRules
from fin_agent.domain.values import CENT, Bar, Side, Symbol

HUNDRED = Decimal(100)


class PlanState(StrEnum):
    """Where a plan is in its life."""

    PLANNED = "planned"
    TRIGGERED = "triggered"
    FILLED = "filled"
    CLOSED = "closed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ALLOWED: dict[PlanState, frozenset[PlanState]] = {
    PlanState.PLANNED: frozenset({PlanState.TRIGGERED, PlanState.EXPIRED, PlanState.CANCELLED}),
    PlanState.TRIGGERED: frozenset({PlanState.FILLED, PlanState.CANCELLED}),
    PlanState.FILLED: frozenset({PlanState.CLOSED}),
    PlanState.CLOSED: frozenset(),
    PlanState.EXPIRED: frozenset(),
    PlanState.CANCELLED: frozenset(),
}


class PlanRejectReason(StrEnum):
    """Why a candidate did not become a plan."""

    NO_OPENING_RANGE = "no_opening_range"
    ZERO_SIZE = "zero_size"
    INVALID_PRICES = "invalid_prices"
    RISK = "risk"
    ORDER_REJECTED = "order_rejected"
    NEWS = "news"  # a headline with a cancel keyword (`scan.cancel_on_keywords`)


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryWindow:
    """When a plan may trigger: from the opening range's end until the entry deadline (UTC)."""

    opens_at: datetime
    closes_at: datetime

    def contains(self, bar: Bar) -> bool:
        """True when the bar starts inside the window."""
        return self.opens_at <= bar.start < self.closes_at


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRejection:
    """A candidate that could not be planned, and why."""

    plan_id: str
    symbol: Symbol
    reason: PlanRejectReason
    detail: str


def plan_id(day: date, symbol: Symbol, strategy: str) -> str:
    """Deterministic plan id: the same day, symbol and strategy always give the same id.

    The broker receives it as the client order id, so a redelivered event never opens twice.
    """
    return f"{strategy}-{day.isoformat()}-{symbol}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TradePlan:
    """One planned trade and its state; every transition returns a new plan."""

    id: str
    trading_day: date
    strategy: str
    symbol: Symbol
    side: Side
    rank: int
    entry: Decimal
    stop: Decimal
    target: Decimal
    qty: int
    atr: Decimal
    or_high: Decimal
    or_low: Decimal
    window: EntryWindow
    state: PlanState = PlanState.PLANNED
    updated_at: datetime | None = None
    fill_price: Decimal | None = None
    exit_price: Decimal | None = None
    exit_reason: ExitReason | None = None
    note: str = ""

    @property
    def risk_per_share(self) -> Decimal:
        """Distance from entry to stop: one R per share."""
        return abs(self.entry - self.stop)

    @property
    def is_open(self) -> bool:
        """True while the plan can still trigger or holds a position."""
        return self.state in (PlanState.PLANNED, PlanState.TRIGGERED, PlanState.FILLED)

    def triggered_by(self, bar: Bar) -> bool:
        """True when a planned entry's trigger prints in `bar` inside the entry window."""
        if self.state is not PlanState.PLANNED or not self.window.contains(bar):
            return False
        return trigger_reached(self.side, self.entry, bar)

    def trigger(self, at: datetime) -> TradePlan:
        """The trigger printed and risk approved: the entry order goes out."""
        return self._move(PlanState.TRIGGERED, at)

    def fill(self, price: Decimal, at: datetime) -> TradePlan:
        """The entry order filled at `price`."""
        return replace(self._move(PlanState.FILLED, at), fill_price=price)

    def close(self, price: Decimal, reason: ExitReason, at: datetime) -> TradePlan:
        """The position was closed at `price` for `reason`."""
        return replace(self._move(PlanState.CLOSED, at), exit_price=price, exit_reason=reason)

    def expire(self, at: datetime) -> TradePlan:
        """The entry deadline passed without a trigger."""
        return replace(self._move(PlanState.EXPIRED, at), note="entry deadline passed")

    def cancel(self, reason: str, at: datetime) -> TradePlan:
        """The plan was called off (risk refusal, operator, end of day) before it filled."""
        return replace(self._move(PlanState.CANCELLED, at), note=reason)

    def _move(self, target: PlanState, at: datetime) -> TradePlan:
        if target not in ALLOWED[self.state]:
            allowed = ", ".join(sorted(ALLOWED[self.state]))
            raise InvalidTransitionError(
                f"plan {self.id} cannot go from {self.state} to {target}; "
                f"allowed from {self.state}: {allowed or 'nothing (final)'}"
            )
        return replace(self, state=target, updated_at=at)


def position_size(equity: Decimal, entry: Decimal, stop: Decimal, rules: PlanRules) -> int:
    """Shares risking `risk_per_trade_pct` of equity, capped at `max_position_pct` of equity."""
    risk_per_share = abs(entry - stop)
    if risk_per_share <= 0 or entry <= 0:
        return 0
    by_risk = math.floor(equity * rules.risk_per_trade_pct / HUNDRED / risk_per_share)
    by_cap = math.floor(equity * rules.max_position_pct / HUNDRED / entry)
    return max(0, min(by_risk, by_cap))


def build_plan(
    candidate: Candidate,
    opening: OpeningRange | None,
    *,
    day: date,
    equity: Decimal,
    window: EntryWindow,
    rules: PlanRules,
    strategy: str,
    at: datetime,
) -> TradePlan | PlanRejection:
    """Turn a candidate and its opening range into a plan, or say why it cannot be planned.

    Long: entry `OR_high + offset`; stop the higher of `OR_low - offset` and
    `entry - atr_stop_multiple * ATR` (rounded up to the cent); target `entry + reward_risk * R`.
    Short mirrors every rule.
    """
    pid = plan_id(day, candidate.symbol, strategy)
    if opening is None:
        return PlanRejection(
            plan_id=pid,
            symbol=candidate.symbol,
            reason=PlanRejectReason.NO_OPENING_RANGE,
            detail="no bars in the opening range",
        )
    offset, atr_stop = rules.entry_offset, rules.atr_stop_multiple * candidate.atr
    if candidate.side is Side.LONG:
        entry = opening.high + offset
        by_atr = (entry - atr_stop).quantize(CENT, ROUND_CEILING)
        # Rounding can push a tiny ATR stop onto the entry: then only the range stop holds.
        stop = max(opening.low - offset, by_atr) if by_atr < entry else opening.low - offset
    else:
        entry = opening.low - offset
        by_atr = (entry + atr_stop).quantize(CENT, ROUND_FLOOR)
        stop = min(opening.high + offset, by_atr) if by_atr > entry else opening.high + offset
    target = entry + rules.reward_risk * (entry - stop)
    if min(entry, stop, target) <= 0:
        return PlanRejection(
            plan_id=pid,
            symbol=candidate.symbol,
            reason=PlanRejectReason.INVALID_PRICES,
            detail=(
                f"entry {entry}, stop {stop} or target {target} is not a positive price; "
                "the opening range is too wide for this price"
            ),
        )
    qty = position_size(equity, entry, stop, rules)
    if qty <= 0:
        return PlanRejection(
            plan_id=pid,
            symbol=candidate.symbol,
            reason=PlanRejectReason.ZERO_SIZE,
            detail=(
                f"size rounds to 0 shares (equity {equity}, entry {entry}, stop {stop}); "
                "raise plan.risk_per_trade_pct or plan.max_position_pct, or skip the symbol"
            ),
        )
    return TradePlan(
        id=pid,
        trading_day=day,
        strategy=strategy,
        symbol=candidate.symbol,
        side=candidate.side,
        rank=candidate.rank,
        entry=entry,
        stop=stop,
        target=target,
        qty=qty,
        atr=candidate.atr,
        or_high=opening.high,
        or_low=opening.low,
        window=window,
        updated_at=at,
    )
