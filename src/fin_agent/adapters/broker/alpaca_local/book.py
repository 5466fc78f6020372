"""`LocalBook`: the local Alpaca server's account, orders and positions, filled on bars.

Within one bar of a symbol, as the paper broker does: market orders (a position being closed)
fill at the open, then the exits of brackets entered in earlier bars, then stop entries (and in
their fill bar only the stop leg). The prices come from `domain/fill_rules.py`, so a day traded
through this server makes the paper broker's trades. Every change is a `trade_updates` event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from fin_agent.adapters.broker.alpaca_local.records import (
    LocalOrder,
    LocalPosition,
    money,
    rfc3339,
)
from fin_agent.adapters.broker.alpaca_local.requests import (
    LocalApiError,
    OrderSpec,
    not_found,
    unprocessable,
)
from fin_agent.domain.fill_rules import entry_price, exit_price, with_slippage
from fin_agent.domain.orders import FillKind
from fin_agent.domain.values import Bar, Side

Update = dict[str, Any]


class LocalBook:
    """One paper account: cash, positions, orders, and the trade updates they made."""

    def __init__(
        self,
        *,
        cash: Decimal = Decimal(100_000),
        buying_power_multiplier: Decimal = Decimal(4),
        slippage_bps: Decimal = Decimal(0),
        fill_lots: int = 1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cash = cash
        self.multiplier = buying_power_multiplier
        self.slippage_bps = slippage_bps
        self.fill_lots = fill_lots
        """Each execution is reported in this many lots (partial fills at the same price)."""
        self._clock = clock
        self.orders: dict[str, LocalOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, LocalPosition] = {}
        self.last: dict[str, Decimal] = {}
        self.not_tradable: set[str] = set()
        self.not_shortable: set[str] = set()
        self.submissions: dict[str, int] = {}
        """Order submissions received, by client order id (refused duplicates included)."""
        self.halted: set[str] = set()
        """Symbols whose orders are accepted, then rejected (a `rejected` trade update)."""
        self._bar_starts: dict[str, datetime] = {}
        self.max_qty_per_bar: dict[str, int] = {}
        self.updates: list[Update] = []
        self.listeners: list[Callable[[Update], None]] = []
        self.now: datetime | None = None
        """The market's time: the end of the last bar (the wall clock before any bar)."""

    # -- the account ---------------------------------------------------------------------------

    def equity(self) -> Decimal:
        """Cash plus the market value of every position at its last price."""
        return self.cash + sum(
            (p.qty * self.last.get(s, p.avg_entry) for s, p in self.positions.items()),
            Decimal(0),
        )

    def buying_power(self) -> Decimal:
        """What is left to open positions with: equity times the multiplier, less what is held
        and what open entry orders would take."""
        held = sum(
            (abs(p.qty) * self.last.get(s, p.avg_entry) for s, p in self.positions.items()),
            Decimal(0),
        )
        pending = sum((self._notional(o) for o in self._open_entries()), Decimal(0))
        return max(self.equity() * self.multiplier - held - pending, Decimal(0))

    def held_for_orders(self, symbol: str) -> int:
        """Shares of `symbol` that open closing orders (exit legs, market closes) hold."""
        return sum(
            o.remaining
            for o in self.orders.values()
            if o.symbol == symbol and o.is_open and self._closes(o)
        )

    # -- orders --------------------------------------------------------------------------------

    def submit(self, spec: OrderSpec) -> LocalOrder:
        """Accept an order (and its legs) or raise the API's refusal."""
        if spec.client_order_id:
            self.submissions[spec.client_order_id] = (
                self.submissions.get(spec.client_order_id, 0) + 1
            )
        if spec.client_order_id in self.by_client_id:
            raise LocalApiError(422, 40010001, "client_order_id must be unique")
        if spec.symbol in self.not_tradable:
            raise unprocessable(f'asset "{spec.symbol}" is not tradable')
        position = self.positions.get(spec.symbol)
        closing = position is not None and (position.qty > 0) != (spec.side == "buy")
        if spec.side == "sell" and not closing and spec.symbol in self.not_shortable:
            raise LocalApiError(403, 40310000, f'asset "{spec.symbol}" cannot be sold short')
        now = self.now or self._clock()
        order = LocalOrder(
            id=str(uuid4()),
            client_order_id=spec.client_order_id or str(uuid4()),
            symbol=spec.symbol,
            side=spec.side,
            type=spec.type,
            qty=spec.qty,
            time_in_force=spec.time_in_force,
            order_class=spec.order_class,
            created_at=now,
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
        )
        if not closing and self._notional(order) > self.buying_power():
            raise LocalApiError(403, 40310000, "insufficient buying power")
        self._add(order)
        for leg_type, limit, stop in spec.legs:
            leg = LocalOrder(
                id=str(uuid4()),
                client_order_id=str(uuid4()),
                symbol=spec.symbol,
                side=_leg_side(spec),
                type=leg_type,
                qty=spec.qty,
                time_in_force=spec.time_in_force,
                order_class=spec.order_class,
                created_at=now,
                limit_price=limit,
                stop_price=stop,
                status="new" if spec.order_class == "oco" else "held",
                parent_id=order.id,
            )
            self._add(leg)
            order.leg_ids.append(leg.id)
        self._emit("new", order, now)
        if spec.symbol in self.halted:
            for leg_id in order.leg_ids:
                self._cancel(self.orders[leg_id], now)
            order.status, order.updated_at = "rejected", now
            self._emit("rejected", order, now)
        return order

    def get(self, order_id: str) -> LocalOrder:
        """An order by id, or the API's 404."""
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("order not found")
        return order

    def get_by_client_id(self, client_order_id: str) -> LocalOrder:
        """An order by client order id, or the API's 404."""
        order_id = self.by_client_id.get(client_order_id)
        if order_id is None:
            raise not_found("order not found")
        return self.orders[order_id]

    def cancel(self, order_id: str) -> None:
        """Cancel an open order (and its open legs), or raise the API's refusal."""
        order = self.get(order_id)
        if not order.is_open and not any(self.orders[i].is_open for i in order.leg_ids):
            raise unprocessable(f'order is already in "{order.status}" state')
        now = self.now or self._clock()
        for leg_id in order.leg_ids:
            self._cancel(self.orders[leg_id], now)
        self._cancel(order, now)

    def replace(self, order_id: str, changes: dict[str, Any]) -> LocalOrder:
        """Replace an open order with a copy carrying `changes` (qty, prices, client id)."""
        old = self.get(order_id)
        if not old.is_open or old.filled_qty:
            raise unprocessable(f'order is not replaceable in "{old.status}" state')
        client_id = changes.get("client_order_id") or str(uuid4())
        if client_id in self.by_client_id:
            raise LocalApiError(422, 40010001, "client_order_id must be unique")
        now = self.now or self._clock()
        new = LocalOrder(
            id=str(uuid4()),
            client_order_id=client_id,
            symbol=old.symbol,
            side=old.side,
            type=old.type,
            qty=int(changes.get("qty") or old.qty),
            time_in_force=changes.get("time_in_force") or old.time_in_force,
            order_class=old.order_class,
            created_at=now,
            limit_price=_price(changes.get("limit_price")) or old.limit_price,
            stop_price=_price(changes.get("stop_price")) or old.stop_price,
            status=old.status,
            replaces=old.id,
            parent_id=old.parent_id,
            leg_ids=old.leg_ids,
        )
        old.status, old.replaced_by, old.replaced_at, old.updated_at = "replaced", new.id, now, now
        self._add(new)
        if old.parent_id is not None:
            legs = self.orders[old.parent_id].leg_ids
            legs[legs.index(old.id)] = new.id
        for leg_id in new.leg_ids:
            self.orders[leg_id].parent_id = new.id
        self._emit("replaced", old, now)
        self._emit("new", new, now)
        return new

    def close_position(self, symbol: str, qty: int | None = None) -> LocalOrder:
        """Place a market order that closes the position (or `qty` of it)."""
        position = self.positions.get(symbol)
        if position is None or position.qty == 0:
            raise not_found("position does not exist")
        wanted = qty or abs(position.qty)
        available = abs(position.qty) - self.held_for_orders(symbol)
        if wanted > available:
            raise LocalApiError(
                403,
                40310000,
                f"insufficient qty available for order (requested: {wanted}, "
                f"available: {available})",
                {
                    "available": str(available),
                    "existing_qty": str(abs(position.qty)),
                    "held_for_orders": str(abs(position.qty) - available),
                    "symbol": symbol,
                },
            )
        spec = OrderSpec(
            symbol=symbol,
            qty=wanted,
            side="sell" if position.qty > 0 else "buy",
            type="market",
            time_in_force="day",
            order_class="simple",
            client_order_id=str(uuid4()),
        )
        return self.submit(spec)

    # -- the market ----------------------------------------------------------------------------

    def on_bars(self, bars: Sequence[Bar]) -> int:
        """Fill what these bars reach; returns the sequence number of the last update."""
        for bar in bars:
            symbol = str(bar.symbol)
            seen = self._bar_starts.get(symbol)
            if seen is not None and bar.start <= seen:
                continue  # a bar sent again (a restarted agent's relay): it filled already
            self._bar_starts[symbol] = bar.start
            self.last[symbol] = bar.close
            self._fill_markets(bar)
            self._fill_exits(bar)
            self._fill_entries(bar)
            if self.now is None or bar.end > self.now:
                self.now = bar.end
        return len(self.updates)

    def session_end(self, at: datetime) -> int:
        """Fill market orders still open (no bar came since) at their symbol's last price."""
        for order in list(self.orders.values()):
            if order.is_open and order.type == "market":
                price = self.last.get(order.symbol)
                if price is not None:
                    self._execute(order, order.remaining, price, at, slip=True)
        return len(self.updates)

    # -- inside --------------------------------------------------------------------------------

    def _fill_markets(self, bar: Bar) -> None:
        for order in self._open(bar, lambda o: o.type == "market"):
            self._execute(order, self._cap(order), bar.open, bar.start, slip=True)

    def _fill_exits(self, bar: Bar) -> None:
        for parent in list(self.orders.values()):
            legs = [self.orders[i] for i in parent.leg_ids]
            if parent.symbol != str(bar.symbol) or not legs or not all(x.is_open for x in legs):
                continue
            if parent.order_class == "oco":
                side = Side.SHORT if parent.buying else Side.LONG
                pair = [parent, *legs]
                ready = parent.is_open and parent.created_at < bar.start
            else:
                side = Side.LONG if parent.buying else Side.SHORT
                pair = legs
                ready = parent.status == "filled" and (parent.filled_in or bar.start) < bar.start
            if ready:
                self._exit(pair, side, bar, fill_bar=False)

    def _fill_entries(self, bar: Bar) -> None:
        for order in self._open(bar, lambda o: o.parent_id is None and o.type != "market"):
            if order.order_class == "oco" or order.status == "held":
                continue
            side = Side.LONG if order.buying else Side.SHORT
            if order.triggered:
                price, at = bar.open, bar.start
            elif order.type in ("stop", "stop_limit") and order.stop_price is not None:
                hit = entry_price(side, order.stop_price, bar)
                if hit is None:
                    continue
                price, at = hit, bar.end
            elif order.limit_price is not None and _limit_reached(order, bar):
                price = (
                    min(order.limit_price, bar.open)
                    if order.buying
                    else max(order.limit_price, bar.open)
                )
                at = bar.end
            else:
                continue
            order.triggered = True
            self._execute(order, self._cap(order), price, at, slip=True)
            if order.status == "filled" and order.leg_ids:
                order.filled_in = bar.start
                legs = [self.orders[i] for i in order.leg_ids]
                for leg in legs:
                    leg.status = "new"
                    self._emit("new", leg, at)
                self._exit(legs, side, bar, fill_bar=True)

    def _exit(self, pair: list[LocalOrder], side: Side, bar: Bar, *, fill_bar: bool) -> None:
        stop = next((o for o in pair if o.type in ("stop", "stop_limit")), None)
        target = next((o for o in pair if o.type == "limit"), None)
        if stop is None or stop.stop_price is None:
            return
        target_price = target.limit_price if target is not None else None
        far = Decimal("1e12") if side is Side.LONG else Decimal("-1e12")
        hit = exit_price(side, stop.stop_price, target_price or far, bar, fill_bar=fill_bar)
        if hit is None:
            return
        price, kind = hit
        winner = stop if kind is FillKind.STOP else target
        if winner is None:
            return
        self._execute(winner, winner.remaining, price, bar.end, slip=True)
        for other in pair:
            if other is not winner:
                self._cancel(other, bar.end)

    def _execute(
        self, order: LocalOrder, qty: int, price: Decimal, at: datetime, *, slip: bool
    ) -> None:
        if qty <= 0:
            return
        if slip:
            price = with_slippage(price, buying=order.buying, slippage_bps=self.slippage_bps)
        lots = min(self.fill_lots, qty)
        for lot in range(lots):
            self._execute_lot(order, qty // lots + (1 if lot < qty % lots else 0), price, at)

    def _execute_lot(self, order: LocalOrder, qty: int, price: Decimal, at: datetime) -> None:
        order.filled_qty += qty
        order.filled_value += price * qty
        order.updated_at = at
        position = self.positions.setdefault(order.symbol, LocalPosition(symbol=order.symbol))
        position.apply(buying=order.buying, qty=qty, price=price)
        self.cash += -price * qty if order.buying else price * qty
        if position.qty == 0:
            del self.positions[order.symbol]
        complete = order.remaining == 0
        order.status = "filled" if complete else "partially_filled"
        if complete:
            order.filled_at = at
        self._emit(
            "fill" if complete else "partial_fill",
            order,
            at,
            price=price,
            qty=qty,
            position_qty=position.qty,
        )

    def _cancel(self, order: LocalOrder, at: datetime) -> None:
        if order.is_open:
            order.status, order.canceled_at, order.updated_at = "canceled", at, at
            self._emit("canceled", order, at)

    def _emit(
        self,
        event: str,
        order: LocalOrder,
        at: datetime,
        *,
        price: Decimal | None = None,
        qty: int | None = None,
        position_qty: int | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "event": event,
            "order": self.wire(order),
            "timestamp": rfc3339(at),
        }
        if price is not None and qty is not None:
            data |= {
                "execution_id": str(uuid4()),
                "price": money(price),
                "qty": str(qty),
                "position_qty": str(position_qty or 0),
            }
        update = {"stream": "trade_updates", "data": data}
        self.updates.append(update)
        for listener in self.listeners:
            listener(update)

    def wire(self, order: LocalOrder) -> dict[str, Any]:
        """An order with its legs nested, as the API writes it."""
        legs = [self.orders[i].wire() for i in order.leg_ids] if order.leg_ids else None
        return order.wire(legs)

    def _add(self, order: LocalOrder) -> None:
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order.id

    def _open(self, bar: Bar, keep: Callable[[LocalOrder], bool]) -> list[LocalOrder]:
        return [
            o for o in self.orders.values() if o.symbol == str(bar.symbol) and o.is_open and keep(o)
        ]

    def _open_entries(self) -> list[LocalOrder]:
        return [
            o
            for o in self.orders.values()
            if o.is_open and o.parent_id is None and not self._closes(o)
        ]

    def _closes(self, order: LocalOrder) -> bool:
        if order.parent_id is not None:
            return True
        position = self.positions.get(order.symbol)
        return position is not None and (position.qty > 0) != order.buying

    def _notional(self, order: LocalOrder) -> Decimal:
        price = order.stop_price or order.limit_price or self.last.get(order.symbol, Decimal(0))
        return price * order.remaining

    def _cap(self, order: LocalOrder) -> int:
        cap = self.max_qty_per_bar.get(order.symbol)
        return order.remaining if cap is None else min(cap, order.remaining)


def _leg_side(spec: OrderSpec) -> str:
    """An OCO's legs both close the position (the order's own side); other legs are opposite."""
    if spec.order_class == "oco":
        return spec.side
    return "sell" if spec.side == "buy" else "buy"


def _limit_reached(order: LocalOrder, bar: Bar) -> bool:
    limit = order.limit_price
    if limit is None:
        return False
    return bar.low <= limit if order.buying else bar.high >= limit


def _price(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


__all__ = ["LocalBook", "Update", "money"]
