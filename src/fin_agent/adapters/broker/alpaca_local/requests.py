"""What the local Alpaca server accepts: `POST /v2/orders` bodies, and its error answers.

Errors are Alpaca's JSON (`{"code": 40010001, "message": "..."}`) with Alpaca's HTTP statuses:
422 for a malformed or duplicate order, 403 for buying power and shorting, 404 for unknown ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit"})
ORDER_CLASSES = frozenset({"simple", "bracket", "oco", "oto"})
TIME_IN_FORCE = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
MAX_CLIENT_ORDER_ID = 128


class LocalApiError(Exception):
    """An error answer: HTTP status, Alpaca's numeric code, its message and extra fields."""

    def __init__(
        self, status: int, code: int, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"code": self.code, "message": self.message, **self.extra}


def unprocessable(message: str) -> LocalApiError:
    """A 422 answer (`42210000`), Alpaca's refusal of an order it cannot take."""
    return LocalApiError(422, 42210000, message)


def not_found(message: str) -> LocalApiError:
    """A 404 answer (`40410000`)."""
    return LocalApiError(404, 40410000, message)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSpec:
    """A validated order request: the order, and its legs as (type, limit, stop) triples."""

    symbol: str
    qty: int
    side: str
    type: str
    time_in_force: str
    order_class: str
    client_order_id: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    legs: tuple[tuple[str, Decimal | None, Decimal | None], ...] = field(default=())


def parse_order(body: dict[str, Any]) -> OrderSpec:
    """Check an order body the way Alpaca does; raise a 422 naming the field otherwise."""
    symbol = str(body.get("symbol") or "").upper()
    if not symbol:
        raise unprocessable("symbol is required")
    side = str(body.get("side") or "")
    if side not in ("buy", "sell"):
        raise unprocessable(f"invalid side {side!r}: use buy or sell")
    kind = str(body.get("type") or body.get("order_type") or "")
    if kind not in ORDER_TYPES:
        raise unprocessable(f"invalid order type {kind!r}")
    tif = str(body.get("time_in_force") or "")
    if tif not in TIME_IN_FORCE:
        raise unprocessable(f"invalid time_in_force {tif!r}")
    order_class = str(body.get("order_class") or "simple")
    if order_class not in ORDER_CLASSES:
        raise unprocessable(f"invalid order_class {order_class!r}")
    qty_value = _decimal(body.get("qty"), "qty")
    if qty_value is None or qty_value <= 0 or qty_value != qty_value.to_integral():
        raise unprocessable("qty must be a positive whole number of shares")
    client_order_id = str(body.get("client_order_id") or "")
    if len(client_order_id) > MAX_CLIENT_ORDER_ID:
        raise unprocessable(f"client_order_id must be at most {MAX_CLIENT_ORDER_ID} characters")
    limit = _decimal(body.get("limit_price"), "limit_price")
    stop = _decimal(body.get("stop_price"), "stop_price")
    if kind in ("limit", "stop_limit") and limit is None:
        raise unprocessable(f"limit_price is required for {kind} orders")
    if kind in ("stop", "stop_limit") and stop is None:
        raise unprocessable(f"stop_price is required for {kind} orders")
    spec = OrderSpec(
        symbol=symbol,
        qty=int(qty_value),
        side=side,
        type=kind,
        time_in_force=tif,
        order_class=order_class,
        client_order_id=client_order_id,
        limit_price=limit,
        stop_price=stop,
        legs=_legs(body, order_class, side, kind, limit, stop),
    )
    return spec


def _legs(
    body: dict[str, Any],
    order_class: str,
    side: str,
    kind: str,
    limit: Decimal | None,
    stop: Decimal | None,
) -> tuple[tuple[str, Decimal | None, Decimal | None], ...]:
    take_profit = body.get("take_profit") or {}
    stop_loss = body.get("stop_loss") or {}
    tp = _decimal(take_profit.get("limit_price"), "take_profit.limit_price")
    sl = _decimal(stop_loss.get("stop_price"), "stop_loss.stop_price")
    sl_limit = _decimal(stop_loss.get("limit_price"), "stop_loss.limit_price")
    sl_type = "stop" if sl_limit is None else "stop_limit"
    if order_class == "simple":
        return ()
    if order_class == "bracket":
        if tp is None or sl is None:
            raise unprocessable("bracket orders require take_profit and stop_loss")
        base = stop if kind in ("stop", "stop_limit") else limit
        if base is not None:
            buying = side == "buy"
            if (tp <= base) if buying else (tp >= base):
                raise unprocessable(
                    "take_profit.limit_price must be "
                    f"{'>' if buying else '<'} base_price ({base}) by at least 0.01"
                )
            if (sl >= base) if buying else (sl <= base):
                raise unprocessable(
                    "stop_loss.stop_price must be "
                    f"{'<' if buying else '>'} base_price ({base}) by at least 0.01"
                )
        return (("limit", tp, None), (sl_type, sl_limit, sl))
    if order_class == "oco":
        if kind != "limit" or sl is None:
            raise unprocessable("oco orders must be limit orders with a stop_loss")
        return ((sl_type, sl_limit, sl),)
    if tp is not None and sl is not None:  # oto: exactly one of them
        raise unprocessable("oto orders take either take_profit or stop_loss, not both")
    if tp is not None:
        return (("limit", tp, None),)
    if sl is not None:
        return ((sl_type, sl_limit, sl),)
    raise unprocessable("oto orders require take_profit or stop_loss")


def _decimal(value: object, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise unprocessable(f"{name} is not a number: {value!r}") from None
