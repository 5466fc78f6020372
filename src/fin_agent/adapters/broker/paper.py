"""`PaperBroker`: fills bracket orders against bars with the exact rules of DESIGN.md section 2.4.

Within one bar of a symbol the broker first fills a pending close at the bar's open, then checks the
stops and targets of positions opened in earlier bars, then fills entries (checking only the stop in
the fill bar). Slippage (bps, against the trader) and commission (per share) come from config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fin_agent.domain.fill_rules import entry_price, exit_price, with_slippage
from fin_agent.domain.orders import BracketOrder, Fill, FillKind, OrderRejection, RejectionCode
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.domain.values import Bar, Side, Symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class _Holding:
    order: BracketOrder
    filled_in: datetime


class PaperBroker:
    """A simulated broker for backtests, the demo and paper trading."""

    def __init__(self, costs: ExecutionCosts) -> None:
        self._costs = costs
        self._seen: set[str] = set()
        self._entries: dict[str, BracketOrder] = {}
        self._holdings: dict[str, _Holding] = {}
        self._closing: dict[str, FillKind] = {}
        self._last: dict[Symbol, Bar] = {}
        self._fills: list[Fill] = []
        self._refusing: dict[Symbol, tuple[RejectionCode, str]] = {}
        self._rejections: list[OrderRejection] = []

    def refuse(self, symbol: Symbol, code: RejectionCode, message: str) -> None:
        """Refuse every later order of `symbol` (the paper broker never refuses unless told: a
        test, or a drill of the rejection path)."""
        self._refusing[symbol] = (code, message)

    async def submit(self, order: BracketOrder) -> None:
        """Accept a bracket order once; a resubmitted client order id is ignored."""
        if order.client_order_id in self._seen:
            return
        self._seen.add(order.client_order_id)
        refusal = self._refusing.get(order.symbol)
        if refusal is not None:
            code, message = refusal
            self._rejections.append(
                OrderRejection(client_order_id=order.client_order_id, code=code, message=message)
            )
            return
        self._entries[order.client_order_id] = order

    async def restore(
        self,
        working: Sequence[BracketOrder],
        held: Sequence[tuple[BracketOrder, datetime]],
        last_bars: Sequence[Bar] = (),
    ) -> None:
        """Hold again what a restarted agent had: entry orders still working, positions (each
        with the start of the bar its entry filled in), and each symbol's last bar."""
        for bar in last_bars:
            last = self._last.get(bar.symbol)
            if last is None or bar.start > last.start:
                self._last[bar.symbol] = bar
        for order in working:
            self._seen.add(order.client_order_id)
            self._entries[order.client_order_id] = order
        for order, filled_in in held:
            self._seen.add(order.client_order_id)
            self._holdings[order.client_order_id] = _Holding(order=order, filled_in=filled_in)

    async def cancel(self, client_order_id: str) -> None:
        """Drop an unfilled entry."""
        self._entries.pop(client_order_id, None)

    async def close(self, client_order_id: str, kind: FillKind, at: datetime) -> None:
        """Close a held position at the open of its symbol's next bar."""
        self._entries.pop(client_order_id, None)
        if client_order_id in self._holdings:
            self._closing[client_order_id] = kind

    async def on_market(self, bars: Sequence[Bar]) -> None:
        """Fill whatever these bars reach."""
        for bar in bars:
            self._last[bar.symbol] = bar
            self._fill_closes(bar)
            self._fill_exits(bar)
            self._fill_entries(bar)

    async def end_of_session(self, at: datetime) -> None:
        """Fill closes still pending (their symbol printed no bar since) at its last close."""
        for cid, kind in list(self._closing.items()):
            holding = self._holdings[cid]
            last = self._last.get(holding.order.symbol)
            price = last.close if last is not None else holding.order.trigger
            self._exit(holding, price, kind, at)

    async def take_fills(self) -> Sequence[Fill]:
        """Hand over the fills since the last call."""
        fills, self._fills = self._fills, []
        return fills

    async def take_rejections(self) -> Sequence[OrderRejection]:
        """Hand over the orders refused since the last call."""
        rejections, self._rejections = self._rejections, []
        return rejections

    async def account_equity(self) -> Decimal | None:
        """None: the paper broker keeps no account; the project's records are its equity."""
        return None

    def _fill_closes(self, bar: Bar) -> None:
        for cid, kind in list(self._closing.items()):
            holding = self._holdings[cid]
            if holding.order.symbol == bar.symbol:
                self._exit(holding, bar.open, kind, bar.start)

    def _fill_exits(self, bar: Bar) -> None:
        for holding in list(self._holdings.values()):
            order = holding.order
            if order.symbol != bar.symbol or holding.filled_in >= bar.start:
                continue
            hit = exit_price(order.side, order.stop, order.target, bar, fill_bar=False)
            if hit is not None:
                self._exit(holding, hit[0], hit[1], bar.end)

    def _fill_entries(self, bar: Bar) -> None:
        for cid, order in list(self._entries.items()):
            if order.symbol != bar.symbol:
                continue
            price = entry_price(order.side, order.trigger, bar)
            if price is None:
                continue
            del self._entries[cid]
            holding = _Holding(order=order, filled_in=bar.start)
            self._holdings[cid] = holding
            self._record(order, FillKind.ENTRY, price, bar.end, buying=order.side is Side.LONG)
            hit = exit_price(order.side, order.stop, order.target, bar, fill_bar=True)
            if hit is not None:
                self._exit(holding, hit[0], hit[1], bar.end)

    def _exit(self, holding: _Holding, price: Decimal, kind: FillKind, at: datetime) -> None:
        order = holding.order
        del self._holdings[order.client_order_id]
        self._closing.pop(order.client_order_id, None)
        self._record(order, kind, price, at, buying=order.side is Side.SHORT)

    def _record(
        self, order: BracketOrder, kind: FillKind, price: Decimal, at: datetime, *, buying: bool
    ) -> None:
        self._fills.append(
            Fill(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                kind=kind,
                qty=order.qty,
                price=with_slippage(price, buying=buying, slippage_bps=self._costs.slippage_bps),
                commission=self._costs.commission_per_share * order.qty,
                at=at,
            )
        )
