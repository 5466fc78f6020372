"""Orders the agent sends and the fills it gets back.

An entry is a bracket: a stop order to open at the plan's trigger, with the plan's stop-loss and
target attached; the broker keys everything on the plan id as the client order id, so a resent
order never opens a second position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from fin_agent.domain.errors import DomainError
from fin_agent.domain.values import Side, Symbol, require_utc


class ExitReason(StrEnum):
    """Why a position was closed."""

    STOP = "stop"
    TARGET = "target"
    FLATTEN = "flatten"
    HALTED = "halted"


class FillKind(StrEnum):
    """Whether a fill opened a position or closed it (and why)."""

    ENTRY = "entry"
    STOP = "stop"
    TARGET = "target"
    FLATTEN = "flatten"
    HALTED = "halted"

    @property
    def exit_reason(self) -> ExitReason:
        """The exit reason of a closing fill."""
        if self is FillKind.ENTRY:
            raise DomainError("an entry fill has no exit reason")
        return ExitReason(self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class BracketOrder:
    """Open `qty` shares when price reaches `trigger`, then exit at `stop` or `target`."""

    client_order_id: str
    symbol: Symbol
    side: Side
    qty: int
    trigger: Decimal
    stop: Decimal
    target: Decimal
    placed_at: datetime

    def __post_init__(self) -> None:
        require_utc(self.placed_at, f"order time of {self.client_order_id}")
        if self.qty <= 0:
            raise DomainError(
                f"order {self.client_order_id}: quantity must be positive, got {self.qty}"
            )
        sign = self.side.sign
        if not sign * (self.trigger - self.stop) > 0 < sign * (self.target - self.trigger):
            raise DomainError(
                f"order {self.client_order_id}: a {self.side} bracket needs the stop on the losing "
                f"side and the target on the winning side of the trigger (trigger={self.trigger}, "
                f"stop={self.stop}, target={self.target})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """Shares that changed hands for an order, with the price after slippage and the commission."""

    client_order_id: str
    symbol: Symbol
    side: Side
    kind: FillKind
    qty: int
    price: Decimal
    commission: Decimal
    at: datetime

    def __post_init__(self) -> None:
        require_utc(self.at, f"fill time of {self.client_order_id}")


class RejectionCode(StrEnum):
    """Why a broker refused an order (the plan's rejection reason is `order_rejected:<code>`)."""

    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    HALTED = "halted"  # halted, or not tradable at all
    NOT_SHORTABLE = "not_shortable"
    REFUSED = "refused"  # any other refusal; the broker's message says which


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejection:
    """An order the broker refused: its client order id (the plan id), a code, its words."""

    client_order_id: str
    code: RejectionCode
    message: str
