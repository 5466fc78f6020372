"""`RiskEngine`: the last word before any order, and the day's trading state.

ACTIVE allows new entries. REDUCING (the daily loss limit was hit) allows only managing and
closing what is open (and, with `risk.loss_limit_action: flatten`, closes it). HALTED is set by an
operator, a store outage, the maximum drawdown or the error breaker, and allows no new entries
until resumed. The daily loss counts realised P&L and, with `risk.loss_limit_basis: marked`, the
open book's losses marked at each minute's close (open gains never offset a realised loss).

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

from fin_agent.domain.error_breaker import ErrorBreaker
from fin_agent.domain.rules import LossAction, LossBasis, RiskLimits

HUNDRED = Decimal(100)
ZERO = Decimal(0)
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
    DAILY_LOSS_FLATTEN = "daily_loss_flatten"
    MAX_DRAWDOWN = "max_drawdown"
    ERROR_BREAKER = "error_breaker"
    MAX_VAR = "max_var"

    @property
    def operator_may_lift(self) -> bool:
        """Whether an operator's resume lifts a halt for this reason (a store outage lifts itself
        when the store is back)."""
        return self in (RiskReason.OPERATOR, RiskReason.MAX_DRAWDOWN, RiskReason.ERROR_BREAKER)

    @property
    def is_loss_limit(self) -> bool:
        """Whether this reason records the daily loss limit (either action)."""
        return self in (RiskReason.DAILY_LOSS_LIMIT, RiskReason.DAILY_LOSS_FLATTEN)

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
        self._flatten_due = False
        self._drawdown_hit = False
        self._breaker = ErrorBreaker(
            count=limits.error_breaker_count,
            window=timedelta(minutes=limits.error_breaker_window_mins),
        )

    def update_limits(self, limits: RiskLimits) -> None:
        """New limits from a config change; they apply from the next check on."""
        self._limits = limits
        self._breaker.reconfigure(
            count=limits.error_breaker_count,
            window=timedelta(minutes=limits.error_breaker_window_mins),
        )

    @property
    def limits(self) -> RiskLimits:
        """The limits in force."""
        return self._limits

    @property
    def start_equity(self) -> Decimal:
        """The day's starting equity, which every percentage limit is of."""
        return self._start_equity

    @property
    def flatten_due(self) -> bool:
        """Whether the loss limit was hit with the `flatten` action: whatever is open is closed."""
        return self._flatten_due

    @property
    def var_limit(self) -> Decimal | None:
        """The most one-day VaR the open book may carry, in money (None: no limit)."""
        pct = self._limits.max_var_pct
        return None if pct is None else self._start_equity * pct / HUNDRED

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
        book_var: Decimal | None = None,
    ) -> RiskDecision:
        """Approve or refuse an entry of `notional` value at `at` (the order, once placed, is
        counted toward the rate by `record_order`); `book_var` is the open book's one-day VaR
        with this entry added, at `risk.var_confidence_pct`."""
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
        var_cap = self.var_limit
        if var_cap is not None and book_var is not None and book_var > var_cap:
            return _refuse(
                RiskReason.MAX_VAR,
                f"the open book's one-day {limits.var_confidence_pct} % VaR would be "
                f"{book_var:.2f}, cap {var_cap:.2f} (risk.max_var_pct {limits.max_var_pct})",
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
        """The change the day's realised P&L calls for (nothing open): see `on_loss`."""
        return self.on_loss(realised_pnl, ZERO)

    def counted_loss(self, realised_pnl: Decimal, open_pnl: Decimal) -> Decimal:
        """The day's P&L the loss limit compares: realised, plus the open book's P&L when it is
        a loss and `risk.loss_limit_basis` is `marked` (open gains are not yet money)."""
        if self._limits.loss_limit_basis is LossBasis.REALISED:
            return realised_pnl
        return realised_pnl + min(open_pnl, ZERO)

    def on_loss(self, realised_pnl: Decimal, open_pnl: Decimal) -> StateChange | None:
        """The change the day's P&L calls for: the first time the counted loss reaches the limit,
        ACTIVE goes to REDUCING (a HALTED day stays HALTED, the limit noted for its resume);
        with `risk.loss_limit_action: flatten` the change also closes everything open."""
        counted = self.counted_loss(realised_pnl, open_pnl)
        if self._loss_limit_hit or counted > -self.loss_limit:
            return None
        halted = self._state is TradingState.HALTED
        current = TradingState.HALTED if halted else TradingState.REDUCING
        flatten = self._limits.loss_limit_action is LossAction.FLATTEN
        what = f"realised {realised_pnl:.2f}"
        if counted != realised_pnl:
            what += f" and open {open_pnl:.2f} (risk.loss_limit_basis marked)"
        return self._change(
            current,
            RiskReason.DAILY_LOSS_FLATTEN if flatten else RiskReason.DAILY_LOSS_LIMIT,
            f"{what} reached the daily loss limit of -{self.loss_limit:.2f} "
            f"(risk.daily_loss_limit_pct {self._limits.daily_loss_limit_pct})"
            + ("; closing every open position (risk.loss_limit_action flatten)" if flatten else ""),
        )

    def on_drawdown(self, peak_equity: Decimal, equity: Decimal) -> StateChange | None:
        """HALTED the first time today `equity` is `risk.max_drawdown_pct` or more below
        `peak_equity` (the highest equity of the stored days); None when off or not reached."""
        pct = self._limits.max_drawdown_pct
        if pct is None or self._drawdown_hit or peak_equity <= 0:
            return None
        drawdown_pct = HUNDRED * (peak_equity - equity) / peak_equity
        if drawdown_pct < pct:
            return None
        return self._halt_change(
            RiskReason.MAX_DRAWDOWN,
            f"equity {equity:.2f} is {drawdown_pct:.2f} % below its peak of {peak_equity:.2f}, "
            f"risk.max_drawdown_pct is {pct}: halted until an operator resumes",
        )

    def record_error(self, at: datetime, count: int = 1) -> None:
        """`count` order rejections or store failures were seen at `at` (for the breaker)."""
        self._breaker.record(at, count)

    def on_errors(self, at: datetime) -> StateChange | None:
        """HALTED when the errors of the breaker's window ending at `at` reach its count."""
        if not self._breaker.tripped(at):
            return None
        return self._halt_change(
            RiskReason.ERROR_BREAKER,
            f"{self._breaker.describe(at)}: halted until an operator resumes",
        )

    def _halt_change(self, reason: RiskReason, detail: str) -> StateChange | None:
        """A halt the agent makes itself; a day already HALTED keeps its first reason."""
        if self._state is TradingState.HALTED:
            return None
        return self._change(TradingState.HALTED, reason, detail)

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
        for another reason stays (a store coming back does not lift an operator's halt). An
        operator also lifts the maximum drawdown's and the error breaker's halts."""
        if self._state is not TradingState.HALTED:
            return None
        lifts = self._halted_by in (reason, None) or (
            reason is RiskReason.OPERATOR
            and self._halted_by is not None
            and self._halted_by.operator_may_lift
        )
        if not lifts:
            return None
        state = TradingState.REDUCING if self._loss_limit_hit else TradingState.ACTIVE
        return self._change(state, reason, detail)

    def apply(self, current: TradingState, reason: RiskReason) -> None:
        """Move to `current` for `reason`: the one transition, live or replayed from events."""
        if current is TradingState.HALTED and self._state is not TradingState.HALTED:
            self._halted_by = reason
        elif current is not TradingState.HALTED:
            if self._halted_by is RiskReason.ERROR_BREAKER:
                self._breaker.reset()  # resumed: the errors before count no more
            self._halted_by = None
        self._state = current
        if reason.is_loss_limit:
            self._loss_limit_hit = True
        if reason is RiskReason.DAILY_LOSS_FLATTEN:
            self._flatten_due = True
        if reason is RiskReason.MAX_DRAWDOWN:
            self._drawdown_hit = True

    def _change(self, state: TradingState, reason: RiskReason, detail: str) -> StateChange:
        return StateChange(previous=self._state, current=state, reason=reason, detail=detail)


def _refuse(reason: RiskReason, detail: str) -> RiskDecision:
    return RiskDecision(approved=False, reason=reason, detail=detail)
