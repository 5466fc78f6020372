"""`PlanOrders`: what Alpaca's orders mean for each plan, from order snapshots (stream or REST).

Both paths hand the same thing: an order as Alpaca reports it, with its cumulative `filled_qty`
and `filled_avg_price`. So seeing a snapshot twice, or a REST resync after the stream, never
makes a second fill. Partial executions accumulate: the domain gets one entry fill when the
entry order is done (filled, or cancelled after a partial fill) and one exit fill per position,
at the average price. One plan per symbol per day, so a market order closing a symbol's position
(`DELETE /v2/positions/{symbol}`) is that plan's exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import structlog
from alpaca.trading.models import Order

from fin_agent.domain.orders import (
    BracketOrder,
    Fill,
    FillKind,
    OrderRejection,
    RejectionCode,
)
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.domain.values import Side

log = structlog.get_logger(__name__)
PRICE_STEP = Decimal("0.0001")
DONE = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"})


@dataclass(slots=True, kw_only=True)
class PlanTrack:
    """One plan's orders at the broker (mutable, owned by `PlanOrders`)."""

    order: BracketOrder
    entry_id: str | None = None
    exits: dict[str, FillKind] = field(default_factory=dict)
    entry_qty: int = 0
    entry_done: bool = False
    exit_done: bool = False
    close_kind: FillKind = FillKind.FLATTEN
    rejection: str = ""

    @property
    def held_qty(self) -> int:
        """Signed shares this plan holds by what the broker reported."""
        if self.exit_done:
            return 0
        return self.entry_qty * self.order.side.sign


class PlanOrders:
    """Every plan the broker was given, keyed by plan id and by symbol."""

    def __init__(self, costs: ExecutionCosts) -> None:
        self._costs = costs
        self.plans: dict[str, PlanTrack] = {}
        self._by_symbol: dict[str, str] = {}
        self._by_order: dict[str, str] = {}
        self._fills: list[Fill] = []
        self._rejections: list[OrderRejection] = []

    def add(self, order: BracketOrder, *, held: bool = False) -> PlanTrack:
        """Track a plan's bracket (`held`: its entry filled before a restart)."""
        track = self.plans.get(order.client_order_id)
        if track is None:
            track = PlanTrack(order=order)
            self.plans[order.client_order_id] = track
            self._by_symbol[str(order.symbol)] = order.client_order_id
        if held:
            track.entry_done, track.entry_qty = True, order.qty
        return track

    def take_fills(self) -> list[Fill]:
        """The fills since the last call, in the order they were seen."""
        fills, self._fills = self._fills, []
        return fills

    def reject(self, plan_id: str, code: RejectionCode, message: str) -> None:
        """The broker refused the plan's entry (at submit, or by a `rejected` update): once."""
        track = self.plans[plan_id]
        if track.rejection:
            return
        track.rejection = message
        self._rejections.append(OrderRejection(client_order_id=plan_id, code=code, message=message))
        log.warning("alpaca_order_rejected", plan_id=plan_id, code=str(code), detail=message)

    def take_rejections(self) -> list[OrderRejection]:
        """The refusals since the last call."""
        rejections, self._rejections = self._rejections, []
        return rejections

    def exit_order(self, plan_id: str, order_id: str, kind: FillKind) -> None:
        """An order that closes the plan's position (a market close placed by the broker)."""
        self.plans[plan_id].exits[order_id] = kind
        self._by_order[order_id] = plan_id

    def open_leg_ids(self, plan_id: str) -> list[str]:
        """Ids of the plan's exit legs (stop and target) the broker reported."""
        track = self.plans[plan_id]
        return [i for i, k in track.exits.items() if k in (FillKind.STOP, FillKind.TARGET)]

    def observe(self, order: Order) -> None:
        """Take in one order snapshot (and its nested legs)."""
        plan_id = self._plan_of(order)
        if plan_id is None:
            return
        track = self.plans[plan_id]
        order_id = str(order.id)
        status = str(order.status.value if hasattr(order.status, "value") else order.status)
        if order.client_order_id == plan_id:
            track.entry_id = order_id
            self._by_order[order_id] = plan_id
            self._entry(track, order, status)
            for leg in order.legs or []:
                leg_kind = FillKind.TARGET if _type(leg) == "limit" else FillKind.STOP
                track.exits.setdefault(str(leg.id), leg_kind)
                self._by_order[str(leg.id)] = plan_id
                self.observe(leg)
            return
        kind = track.exits.get(order_id)
        if kind is None:
            kind = track.close_kind
            self.exit_order(plan_id, order_id, kind)
        if status == "filled" and not track.exit_done and track.entry_done:
            track.exit_done = True
            self._record(track, kind, order, _filled(order), order.filled_at or order.updated_at)

    def _entry(self, track: PlanTrack, order: Order, status: str) -> None:
        filled = _filled(order)
        if status == "rejected":
            self.reject(
                track.order.client_order_id,
                RejectionCode.REFUSED,
                "Alpaca rejected the order after accepting it (a rejected trade update gives "
                "no reason); see the order in the Alpaca dashboard",
            )
        if track.entry_done or not (status == "filled" or (status in DONE and filled > 0)):
            if 0 < filled < track.order.qty and not track.entry_done:
                log.info("alpaca_partial_fill", plan_id=order.client_order_id, filled=filled)
            return
        track.entry_done, track.entry_qty = True, filled
        at = order.filled_at or order.canceled_at or order.updated_at
        self._record(track, FillKind.ENTRY, order, filled, at)

    def _record(
        self, track: PlanTrack, kind: FillKind, order: Order, qty: int, at: datetime
    ) -> None:
        price = Decimal(str(order.filled_avg_price or 0)).quantize(PRICE_STEP)
        self._fills.append(
            Fill(
                client_order_id=track.order.client_order_id,
                symbol=track.order.symbol,
                side=track.order.side,
                kind=kind,
                qty=qty if kind is FillKind.ENTRY else track.entry_qty,
                price=price,
                commission=self._costs.commission_per_share * qty,
                at=at,
            )
        )

    def _plan_of(self, order: Order) -> str | None:
        if order.client_order_id in self.plans:
            return order.client_order_id
        plan_id = self._by_order.get(str(order.id))
        if plan_id is None and order.replaces is not None:
            plan_id = self._by_order.get(str(order.replaces))
            if plan_id is not None:  # a replaced leg: the new order keeps the old one's role
                kind = self.plans[plan_id].exits.get(str(order.replaces), FillKind.STOP)
                self.exit_order(plan_id, str(order.id), kind)
        if plan_id is None:
            plan_id = self._by_symbol.get(order.symbol or "")
            track = self.plans.get(plan_id or "")
            if track is None or not _closes(track, order):
                return None
        return plan_id


def _filled(order: Order) -> int:
    return int(Decimal(str(order.filled_qty or 0)))


def _type(order: Order) -> str:
    kind = order.type or order.order_type
    return str(kind.value if kind is not None and hasattr(kind, "value") else kind)


def _closes(track: PlanTrack, order: Order) -> bool:
    side = str(order.side.value if order.side is not None else "")
    opening = "buy" if track.order.side is Side.LONG else "sell"
    return side != opening and _type(order) == "market"
