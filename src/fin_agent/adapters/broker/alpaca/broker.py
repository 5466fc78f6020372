"""`AlpacaBroker`: the `Orders` port on an Alpaca account (paper or live, or the local server).

- submit: a stop entry at the plan's trigger with its stop and target as a bracket, the plan id
  as `client_order_id`; Alpaca's duplicate-id answer (422) counts as success, so a retried or
  repeated submit never makes a second order. Refusals (403/422: buying power, halted or not
  tradable, not shortable) and `rejected` trade updates become `OrderRejection`s with a code
  (`take_rejections`); the day makes them the plan's `order_rejected:<code>`.
- fills: from `trade_updates`; after every (re)connect the orders are resynchronised over REST.
- close: cancel the bracket's open legs, then `DELETE /v2/positions/{symbol}`.
- reconcile at start and every `reconcile_interval_secs`: the broker is the truth for positions
  and equity; each difference is reported through `problems` (an `error.raised`).
`relay` (the local server only) hands the bars and the session's end to a simulated market, then
resynchronises, so a simulated day through the local server fills exactly like the paper broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import structlog
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, Position, TradeAccount, TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)

from fin_agent.adapters.broker.alpaca.rest import AlpacaRest, BrokerRefusal
from fin_agent.adapters.broker.alpaca.tracking import PlanOrders
from fin_agent.domain.orders import (
    BracketOrder,
    Fill,
    FillKind,
    OrderRejection,
    RejectionCode,
)
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.domain.values import Bar, Side

log = structlog.get_logger(__name__)
Problems = Callable[[str, str], Awaitable[None]]
"""Report a difference or a failure: (code, message), published as `error.raised`."""


class MarketRelay(Protocol):
    """A simulated market behind the broker (the local server), moved by the agent's bars."""

    async def bars(self, bars: Sequence[Bar]) -> int:
        """The market printed these bars; returns how many trade updates it has made so far."""
        ...

    async def session_end(self, at: datetime) -> int:
        """The session closed at `at`; returns how many trade updates it has made so far."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaBrokerConfig:
    """How the broker reconciles and resynchronises."""

    reconcile_interval_secs: float = 60.0
    resync_lookback_days: int = 3


class Stream(Protocol):
    """The `trade_updates` stream as the broker drives it."""

    def start(self) -> None:
        """Connect in the background."""
        ...

    async def stop(self) -> None:
        """Disconnect."""
        ...


class AlpacaBroker:
    """Bracket orders on Alpaca, keyed by plan id; fills from `trade_updates` and REST."""

    def __init__(
        self,
        rest: AlpacaRest,
        *,
        costs: ExecutionCosts,
        problems: Problems,
        now: Callable[[], datetime],
        config: AlpacaBrokerConfig | None = None,
        relay: MarketRelay | None = None,
    ) -> None:
        self._rest = rest
        self._client = rest.client
        self._problems = problems
        self._now = now
        self._config = config or AlpacaBrokerConfig()
        self._relay = relay
        self._relay_seq = -1
        self._plans = PlanOrders(costs)
        self._stream: Stream | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.equity: Decimal | None = None
        """The account's equity at the last reconciliation (the broker is its truth)."""
        self.resyncs = 0
        self.resynced = asyncio.Event()
        self.updates = 0
        self.updated = asyncio.Event()
        """Set on every `trade_updates` event (tests wait on it, then clear it)."""

    def attach(self, stream: Stream) -> None:
        """The `trade_updates` stream whose updates come to `on_update`."""
        self._stream = stream

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the stream, reconcile once, then every `reconcile_interval_secs`."""
        if self._stream is not None:
            self._stream.start()
        # equity now; positions once a restarted day has handed back what it held (`restore`)
        await self.reconcile(positions=False)
        if self._reconciler is None:
            self._reconciler = asyncio.create_task(self._reconcile_forever())

    async def stop(self) -> None:
        """Stop reconciling and close the stream."""
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        if self._stream is not None:
            await self._stream.stop()

    # -- the Orders port -----------------------------------------------------------------------

    async def submit(self, order: BracketOrder) -> None:
        """Place the bracket once; Alpaca's duplicate-id answer means it is already there."""
        self._plans.add(order)
        buying = order.side is Side.LONG
        request = StopOrderRequest(
            symbol=str(order.symbol),
            qty=order.qty,
            side=OrderSide.BUY if buying else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            stop_price=float(order.trigger),
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float(order.target)),
            stop_loss=StopLossRequest(stop_price=float(order.stop)),
            client_order_id=order.client_order_id,
        )
        try:
            placed = await self._rest.call(
                "POST /v2/orders", lambda: self._client.submit_order(request)
            )
        except BrokerRefusal as refusal:
            if not refusal.duplicate_client_order_id:
                self._reject(order, refusal)
                return
            log.info("alpaca_order_already_placed", plan_id=order.client_order_id)
            self._observe(await self._by_client_id(order.client_order_id))
            return
        self._observe(placed)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel an entry (and its legs) that has not filled."""
        track = self._plans.plans.get(client_order_id)
        if track is None or track.entry_done or track.entry_id is None:
            return
        entry_id = track.entry_id
        try:
            await self._rest.call(
                "DELETE /v2/orders", lambda: self._client.cancel_order_by_id(entry_id)
            )
        except BrokerRefusal as refusal:
            log.info("alpaca_cancel_refused", plan_id=client_order_id, reason=refusal.message)
        await self.resync()

    async def replace_exits(
        self, client_order_id: str, *, stop: Decimal | None = None, target: Decimal | None = None
    ) -> None:
        """Move a held position's stop or target (`PATCH /v2/orders/{leg}`)."""
        track = self._plans.plans[client_order_id]
        for leg_id, kind in list(track.exits.items()):
            price = stop if kind is FillKind.STOP else target if kind is FillKind.TARGET else None
            if price is None:
                continue
            request = (
                ReplaceOrderRequest(stop_price=float(price))
                if kind is FillKind.STOP
                else ReplaceOrderRequest(limit_price=float(price))
            )
            try:
                new = await self._rest.call(
                    "PATCH /v2/orders",
                    lambda leg=leg_id, r=request: self._client.replace_order_by_id(leg, r),  # type: ignore[misc]
                )
            except BrokerRefusal as refusal:
                log.info("alpaca_replace_refused", plan_id=client_order_id, reason=refusal.message)
                continue
            if isinstance(new, Order):
                del track.exits[leg_id]
                self._plans.exit_order(client_order_id, str(new.id), kind)

    async def close(self, client_order_id: str, kind: FillKind, at: datetime) -> None:
        """Cancel the bracket's open legs and close the position at market."""
        track = self._plans.plans.get(client_order_id)
        if track is None or track.exit_done:
            return
        if not track.entry_done:
            await self.cancel(client_order_id)
            return
        track.close_kind = kind
        for leg_id in self._plans.open_leg_ids(client_order_id):
            with contextlib.suppress(BrokerRefusal):  # already filled or cancelled
                await self._rest.call(
                    "DELETE /v2/orders",
                    lambda i=leg_id: self._client.cancel_order_by_id(i),  # type: ignore[misc]
                )
        symbol = str(track.order.symbol)
        try:
            closing = await self._rest.call(
                "DELETE /v2/positions", lambda: self._client.close_position(symbol)
            )
        except BrokerRefusal as refusal:
            if refusal.status != 404:  # 404: an exit filled first, the resync will show it
                await self._problems("broker_close_refused", f"closing {symbol}: {refusal.message}")
            await self.resync()
            return
        if isinstance(closing, Order):
            self._plans.exit_order(client_order_id, str(closing.id), kind)
            self._observe(closing)

    async def on_market(self, bars: Sequence[Bar]) -> None:
        """A real market needs nothing; a relayed one (the local server) is moved, then read."""
        if self._relay is not None:
            await self._read_if_moved(await self._relay.bars(bars))

    async def end_of_session(self, at: datetime) -> None:
        """A relayed market fills pending closes at the last price; then read the orders."""
        if self._relay is not None:
            await self._read_if_moved(await self._relay.session_end(at))

    async def restore(
        self,
        working: Sequence[BracketOrder],
        held: Sequence[tuple[BracketOrder, datetime]],
        last_bars: Sequence[Bar] = (),
    ) -> None:
        """Take back the agent's orders and positions, read what Alpaca did meanwhile, place
        any working order Alpaca never received, then reconcile."""
        for order in working:
            self._plans.add(order)
        for order, _ in held:
            self._plans.add(order, held=True)
        await self.resync()
        for order in working:
            track = self._plans.plans[order.client_order_id]
            if track.entry_id is None and not track.rejection:
                await self.submit(order)
        await self.reconcile()

    async def take_fills(self) -> Sequence[Fill]:
        """The fills seen since the last call."""
        return self._plans.take_fills()

    async def take_rejections(self) -> Sequence[OrderRejection]:
        """The orders refused since the last call (at submit, or by a `rejected` update)."""
        return self._plans.take_rejections()

    async def account_equity(self) -> Decimal | None:
        """The account's equity, read now (`GET /v2/account`): the broker is its truth."""
        await self.reconcile(positions=False)
        return self.equity

    # -- stream and REST -----------------------------------------------------------------------

    async def on_update(self, update: TradeUpdate) -> None:
        """One `trade_updates` event: its order snapshot moves the plan's state."""
        self.updates += 1
        self._observe(update.order)
        self.updated.set()

    async def on_connected(self) -> None:
        """The stream is (re)connected: read over REST whatever it missed."""
        await self.resync()

    async def resync(self) -> None:
        """Read recent orders (with their legs) over REST and take in every change."""
        if not self._plans.plans:
            self._mark_resynced()
            return
        since = min(t.order.placed_at for t in self._plans.plans.values())
        request = GetOrdersRequest(
            status=QueryOrderStatus.ALL,
            nested=True,
            limit=500,
            after=since - timedelta(days=self._config.resync_lookback_days),
        )
        async with self._lock:
            orders = await self._rest.call(
                "GET /v2/orders", lambda: self._client.get_orders(request)
            )
            if isinstance(orders, list):
                for order in sorted(orders, key=lambda o: o.created_at):
                    self._observe(order)
        self._mark_resynced()

    async def reconcile(self, *, positions: bool = True) -> None:
        """Take the account's equity and compare its positions with the plans'."""
        account = await self._rest.call("GET /v2/account", self._client.get_account)
        if isinstance(account, TradeAccount) and account.equity is not None:
            self.equity = Decimal(account.equity)
        if not positions:
            return
        answer = await self._rest.call("GET /v2/positions", self._client.get_all_positions)
        if not isinstance(answer, list):
            return
        held = {p.symbol: int(Decimal(p.qty)) for p in answer if isinstance(p, Position)}
        expected: dict[str, int] = {}
        for track in self._plans.plans.values():
            if track.held_qty:
                expected[str(track.order.symbol)] = track.held_qty
        for symbol in sorted(set(held) | set(expected)):
            if held.get(symbol, 0) != expected.get(symbol, 0):
                message = (
                    f"{symbol}: the broker holds {held.get(symbol, 0)} shares, the agent's "
                    f"plans {expected.get(symbol, 0)}; the broker is right, check the account"
                )
                log.warning("alpaca_position_mismatch", symbol=symbol, broker=held.get(symbol, 0),
                            agent=expected.get(symbol, 0))  # fmt: skip
                await self._problems("broker_position_mismatch", message)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.reconcile_interval_secs)
            try:
                await self.resync()
                await self.reconcile()
            except Exception as error:
                await self._problems("broker_reconcile_failed", str(error))

    async def _by_client_id(self, client_order_id: str) -> Order | None:
        try:
            found = await self._rest.call(
                "GET /v2/orders:by_client_order_id",
                lambda: self._client.get_order_by_client_id(client_order_id),
            )
        except BrokerRefusal:
            return None
        return found if isinstance(found, Order) else None

    def _observe(self, order: object) -> None:
        if isinstance(order, Order):
            self._plans.observe(order)

    def _reject(self, order: BracketOrder, refusal: BrokerRefusal) -> None:
        self._plans.reject(order.client_order_id, rejection_code(refusal), refusal.message)

    async def _read_if_moved(self, seq: int) -> None:
        """Resynchronise when the relayed market made trade updates since the last look."""
        if seq != self._relay_seq:
            self._relay_seq = seq
            await self.resync()

    def _mark_resynced(self) -> None:
        self.resyncs += 1
        self.resynced.set()


def rejection_code(refusal: BrokerRefusal) -> RejectionCode:
    """The code of an Alpaca refusal. Alpaca's numeric codes are shared by several causes
    (40310000: buying power and shorting alike), so its message decides."""
    text = refusal.message.lower()
    if "buying power" in text:
        return RejectionCode.INSUFFICIENT_BUYING_POWER
    if "short" in text:
        return RejectionCode.NOT_SHORTABLE
    if "tradable" in text or "halt" in text:
        return RejectionCode.HALTED
    return RejectionCode.REFUSED
