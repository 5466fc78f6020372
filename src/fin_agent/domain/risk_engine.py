"""`RiskEngine`: the last word before any order, and the day's trading state.

ACTIVE allows new entries. REDUCING (the daily loss limit was hit) allows only managing and
closing what is open. HALTED is set by an operator and allows no new entries until resumed.
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

    def check(
        self,
        *,
        notional: Decimal,
        open_positions: int,
        gross_exposure: Decimal,
        at: datetime,
    ) -> RiskDecision:
        """Approve or refuse an entry of `notional` value; an approval counts toward the rate."""
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
        while self._orders and at - self._orders[0] >= ORDER_RATE_WINDOW:
            self._orders.popleft()
        if len(self._orders) >= limits.max_orders_per_minute:
            return _refuse(
                RiskReason.MAX_ORDER_RATE,
                f"{len(self._orders)} orders in the last minute, "
                f"risk.max_orders_per_minute is {limits.max_orders_per_minute}",
            )
        self._orders.append(at)
        return APPROVED

    def on_realised(self, realised_pnl: Decimal) -> StateChange | None:
        """Update the state from the day's realised P&L; returns the change when one happened."""
        if self._loss_limit_hit or realised_pnl > -self.loss_limit:
            return None
        self._loss_limit_hit = True
        if self._state is TradingState.ACTIVE:
            return self._set(
                TradingState.REDUCING,
                RiskReason.DAILY_LOSS_LIMIT,
                f"realised {realised_pnl:.2f} reached the daily loss limit of "
                f"-{self.loss_limit:.2f} (risk.daily_loss_limit_pct "
                f"{self._limits.daily_loss_limit_pct})",
            )
        return None

    def halt(self, detail: str) -> StateChange | None:
        """Operator command: stop all new entries."""
        if self._state is TradingState.HALTED:
            return None
        return self._set(TradingState.HALTED, RiskReason.OPERATOR, detail)

    def resume(self, detail: str) -> StateChange | None:
        """Operator command: leave HALTED (to REDUCING if the loss limit was hit today)."""
        if self._state is not TradingState.HALTED:
            return None
        state = TradingState.REDUCING if self._loss_limit_hit else TradingState.ACTIVE
        return self._set(state, RiskReason.OPERATOR, detail)

    def _set(self, state: TradingState, reason: RiskReason, detail: str) -> StateChange:
        change = StateChange(previous=self._state, current=state, reason=reason, detail=detail)
        self._state = state
        return change


def _refuse(reason: RiskReason, detail: str) -> RiskDecision:
    return RiskDecision(approved=False, reason=reason, detail=detail)
