"""`RiskEngine`: the last word before any order, and the day's trading state.

ACTIVE allows new entries. REDUCING (the daily loss limit was hit) allows only managing and
closing what is open. HALTED is set by an operator and allows no new entries until resumed.

The engine decides without changing itself (`check`, `on_realised`, `halt`, `resume` return a
decision or a `StateChange`); only `apply` (a state change, as recorded in `risk.state_changed`)
and `record_order` (an order placed) move it. A day rebuilt from its events therefore passes
through exactly the states the live day did, loss limit included.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from fin_agent.domain.rules import RiskLimits

HUNDRED = Decimal(100)
ORDER_RATE_WINDOW = timedelta(minutes=1)


class TradingState(StrEnum):
    """Whether the agent may open new positions."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class RiskReason(StrEnum):
    """Reason code of a risk refusal or state change."""

    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    MAX_ORDER_RATE = "max_order_rate"
    HALTED = "halted"
    REDUCING = "reducing"
    OPERATOR = "operator"
    NEW_DAY = "new_day"
    STORE_OUTAGE = "store_outage"

    @property
    def keeps_plan_armed(self) -> bool:
        """Whether a plan refused for this reason stays armed and is checked again on later bars.

        Capacity limits (open positions, gross exposure, order rate) free up as the day goes on,
        and a halt can be lifted; only the daily loss limit (REDUCING) ends a plan for the day.
        """
        return self is not RiskReason.REDUCING


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskDecision:
    """The engine's answer to one proposed entry."""

    approved: bool
    reason: RiskReason | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """The trading state moved, and why."""

    previous: TradingState
    current: TradingState
    reason: RiskReason
    detail: str


APPROVED = RiskDecision(approved=True)


class RiskEngine:
    """Applies the risk limits of one trading day to every proposed entry."""

    def __init__(self, limits: RiskLimits, start_equity: Decimal) -> None:
        self._limits = limits
        self._start_equity = start_equity
        self._state = TradingState.ACTIVE
        self._loss_limit_hit = False
        self._halted_by: RiskReason | None = None
        self._orders: deque[datetime] = deque()

    def update_limits(self, limits: RiskLimits) -> None:
        """New limits from a config change; they apply from the next check on."""
        self._limits = limits

    @property
    def state(self) -> TradingState:
        """The current trading state."""
        return self._state

    @property
    def loss_limit(self) -> Decimal:
        """The realised loss, in money, at which new entries stop."""
        return self._start_equity * self._limits.daily_loss_limit_pct / HUNDRED

    @property
    def loss_limit_hit(self) -> bool:
        """Whether the daily loss limit has been reached today (also while HALTED)."""
        return self._loss_limit_hit

    def check(
        self,
        *,
        notional: Decimal,
        open_positions: int,
        gross_exposure: Decimal,
        at: datetime,
    ) -> RiskDecision:
        """Approve or refuse an entry of `notional` value at `at` (the order, once placed, is
        counted toward the rate by `record_order`)."""
        limits = self._limits
        if self._state is TradingState.HALTED:
            return _refuse(RiskReason.HALTED, "trading is halted by an operator")
        if self._state is TradingState.REDUCING:
            return _refuse(RiskReason.REDUCING, "daily loss limit hit: no new entries today")
        if open_positions >= limits.max_open_positions:
            return _refuse(
                RiskReason.MAX_OPEN_POSITIONS,
                f"{open_positions} positions open, risk.max_open_positions is "
                f"{limits.max_open_positions}",
            )
        cap = self._start_equity * limits.max_gross_exposure_pct / HUNDRED
        if gross_exposure + notional > cap:
            return _refuse(
                RiskReason.MAX_GROSS_EXPOSURE,
                f"gross exposure would be {gross_exposure + notional:.2f}, cap {cap:.2f} "
                f"(risk.max_gross_exposure_pct {limits.max_gross_exposure_pct})",
            )
        recent = sum(1 for placed in self._orders if at - placed < ORDER_RATE_WINDOW)
        if recent >= limits.max_orders_per_minute:
            return _refuse(
                RiskReason.MAX_ORDER_RATE,
                f"{recent} orders in the last minute, "
                f"risk.max_orders_per_minute is {limits.max_orders_per_minute}",
            )
        return APPROVED

    def record_order(self, at: datetime) -> None:
        """An order went out at `at`: it counts toward the order rate for a minute."""
        while self._orders and at - self._orders[0] >= ORDER_RATE_WINDOW:
            self._orders.popleft()
        self._orders.append(at)

    def on_realised(self, realised_pnl: Decimal) -> StateChange | None:
        """The change the day's realised P&L calls for: the first time it reaches the loss limit,
        ACTIVE goes to REDUCING (a HALTED day stays HALTED, the limit noted for its resume)."""
        if self._loss_limit_hit or realised_pnl > -self.loss_limit:
            return None
        halted = self._state is TradingState.HALTED
        current = TradingState.HALTED if halted else TradingState.REDUCING
        return self._change(
            current,
            RiskReason.DAILY_LOSS_LIMIT,
            f"realised {realised_pnl:.2f} reached the daily loss limit of "
            f"-{self.loss_limit:.2f} (risk.daily_loss_limit_pct "
            f"{self._limits.daily_loss_limit_pct})",
        )

    @property
    def halted_by(self) -> RiskReason | None:
        """Why the day is HALTED (an operator, a store outage), or None when it is not."""
        return self._halted_by

    def halt(self, detail: str, reason: RiskReason = RiskReason.OPERATOR) -> StateChange | None:
        """Stop all new entries (an operator's command, or the agent itself for `reason`)."""
        if self._state is TradingState.HALTED:
            return None
        return self._change(TradingState.HALTED, reason, detail)

    def resume(self, detail: str, reason: RiskReason = RiskReason.OPERATOR) -> StateChange | None:
        """Leave a HALTED set for `reason` (to REDUCING if the loss limit was hit today); a halt
        for another reason stays (a store coming back does not lift an operator's halt)."""
        if self._state is not TradingState.HALTED or self._halted_by not in (reason, None):
            return None
        state = TradingState.REDUCING if self._loss_limit_hit else TradingState.ACTIVE
        return self._change(state, reason, detail)

    def apply(self, current: TradingState, reason: RiskReason) -> None:
        """Move to `current` for `reason`: the one transition, live or replayed from events."""
        if current is TradingState.HALTED and self._state is not TradingState.HALTED:
            self._halted_by = reason
        elif current is not TradingState.HALTED:
            self._halted_by = None
        self._state = current
        if reason is RiskReason.DAILY_LOSS_LIMIT:
            self._loss_limit_hit = True

    def _change(self, state: TradingState, reason: RiskReason, detail: str) -> StateChange:
        return StateChange(previous=self._state, current=state, reason=reason, detail=detail)


def _refuse(reason: RiskReason, detail: str) -> RiskDecision:
    return RiskDecision(approved=False, reason=reason, detail=detail)
