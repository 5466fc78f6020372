"""The local server's orders and positions, and their JSON as Alpaca's REST v2 writes it.

The shapes follow alpaca-py's `Order`, `Position` and `TradeAccount` models (prices and
quantities as strings, times as RFC 3339); the tests parse every answer with those models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid5

OPEN_STATUSES = frozenset(
    {"new", "accepted", "held", "partially_filled", "pending_new", "pending_cancel"}
)
ASSET_NAMESPACE = uuid5(NAMESPACE_URL, "fin-agent/alpaca-local/assets")


def rfc3339(at: datetime | None) -> str | None:
    """`at` as Alpaca writes times (UTC, `Z`), or None."""
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def asset_id(symbol: str) -> str:
    """A stable asset id per symbol (Alpaca's are UUIDs)."""
    return str(uuid5(ASSET_NAMESPACE, symbol))


def money(value: Decimal) -> str:
    """A price or an amount as the API's decimal string."""
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


@dataclass(slots=True, kw_only=True)
class LocalOrder:
    """One order the server holds (mutable: the server's own book, never a message)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    qty: int
    time_in_force: str
    order_class: str
    created_at: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    status: str = "new"
    filled_qty: int = 0
    filled_value: Decimal = Decimal(0)
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    parent_id: str | None = None
    leg_ids: list[str] = field(default_factory=list)
    filled_in: datetime | None = None
    """Start of the bar the order completed in (a bracket's exits may fill from the next bar)."""
    triggered: bool = False
    """A stop whose trigger printed: what is left fills at the next bar's open."""

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill or be cancelled."""
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> int:
        """Shares not yet filled."""
        return self.qty - self.filled_qty

    @property
    def buying(self) -> bool:
        """Whether the order buys."""
        return self.side == "buy"

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price, or None before any fill."""
        if not self.filled_qty:
            return None
        return (self.filled_value / self.filled_qty).quantize(Decimal("0.0001"))

    def wire(self, legs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The order as `GET /v2/orders/{id}` answers it."""
        avg = self.avg_price
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at or self.created_at),
            "submitted_at": rfc3339(self.created_at),
            "filled_at": rfc3339(self.filled_at),
            "expired_at": None,
            "canceled_at": rfc3339(self.canceled_at),
            "failed_at": None,
            "replaced_at": rfc3339(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": str(self.qty),
            "filled_qty": str(self.filled_qty),
            "filled_avg_price": None if avg is None else money(avg),
            "order_class": self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": None if self.limit_price is None else money(self.limit_price),
            "stop_price": None if self.stop_price is None else money(self.stop_price),
            "status": self.status,
            "extended_hours": False,
            "legs": legs,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "position_intent": None,
        }


@dataclass(slots=True, kw_only=True)
class LocalPosition:
    """Shares held in one symbol: positive long, negative short, at an average entry price."""

    symbol: str
    qty: int = 0
    avg_entry: Decimal = Decimal(0)

    def apply(self, *, buying: bool, qty: int, price: Decimal) -> None:
        """Move the position by one execution."""
        signed = qty if buying else -qty
        new_qty = self.qty + signed
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = abs(self.qty) + qty
            self.avg_entry = (self.avg_entry * abs(self.qty) + price * qty) / total
        elif new_qty != 0 and (new_qty > 0) != (self.qty > 0):
            self.avg_entry = price  # flipped through zero
        self.qty = new_qty

    def wire(self, last: Decimal, held_for_orders: int) -> dict[str, Any]:
        """The position as `GET /v2/positions` answers it."""
        qty = abs(self.qty)
        cost = self.avg_entry * qty
        value = last * self.qty
        unrealized = (last - self.avg_entry) * self.qty
        return {
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": money(self.avg_entry.quantize(Decimal("0.0001"))),
            "qty": str(self.qty),
            "qty_available": str(max(qty - held_for_orders, 0) * (1 if self.qty > 0 else -1)),
            "side": "long" if self.qty > 0 else "short",
            "market_value": money(value),
            "cost_basis": money(cost.quantize(Decimal("0.0001"))),
            "unrealized_pl": money(unrealized.quantize(Decimal("0.0001"))),
            "unrealized_plpc": "0",
            "unrealized_intraday_pl": money(unrealized.quantize(Decimal("0.0001"))),
            "unrealized_intraday_plpc": "0",
            "current_price": money(last),
            "lastday_price": money(last),
            "change_today": "0",
        }
