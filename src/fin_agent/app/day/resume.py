"""Resuming a trading day after a restart: its state rebuilt from the day's stored events.

The day's scan, plans, orders, fills and closes are in the store (the coordinator wrote them);
applied in order to a fresh `TradingDay` they give back its plans, ledger and risk state, and the
broker gets back its working entry orders and open positions. Bars that printed while the agent
was down are not replayed: the positions were unmanaged for that while, and the agent says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fin_agent.app.day.trading_day import TradingDay
from fin_agent.domain.events import (
    DomainEvent,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ScanCompleted,
)
from fin_agent.domain.orders import BracketOrder
from fin_agent.domain.trade_plan import PlanState

BAR = timedelta(minutes=1)
# Within one instant, the order in which a day produces them (a stop can close in the fill bar).
_ORDER: dict[str, int] = {
    ScanCompleted.TYPE: 0,
    PlanCreated.TYPE: 1,
    PlanRejected.TYPE: 2,
    OrderPlaced.TYPE: 3,
    PlanExecuted.TYPE: 4,
    PositionClosed.TYPE: 5,
    PlanExpired.TYPE: 6,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed:
    """What the broker must hold again: entry orders still working, positions still open."""

    working: tuple[BracketOrder, ...]
    held: tuple[tuple[BracketOrder, datetime], ...]  # the order, and the start of its fill bar


def restore(day: TradingDay, events: Sequence[DomainEvent]) -> Resumed:
    """Apply the day's stored events to the fresh `day`; what the broker must hold again."""
    relevant = sorted(
        (e for e in events if e.TYPE in _ORDER), key=lambda e: (e.occurred_at, _ORDER[e.TYPE])
    )
    orders: dict[str, BracketOrder] = {}
    planned, rejected = False, 0
    versions: dict[str, tuple[str, str]] = {}
    for event in relevant:
        if isinstance(event, ScanCompleted):
            day.scan_result = event.result
            day.config_version = event.config_version or day.config_version
            day.strategy_version = event.strategy_version or day.strategy_version
        elif isinstance(event, PlanCreated):
            day.plans[event.plan.symbol] = event.plan
            versions[event.plan.id] = (event.config_version, event.strategy_version)
            planned = True
        elif isinstance(event, PlanRejected):
            rejected += 1
            plan = day.plans.get(event.symbol)
            if plan is not None and plan.id == event.plan_id and plan.state is PlanState.PLANNED:
                day.plans[event.symbol] = plan.cancel(event.detail, event.occurred_at)
        elif isinstance(event, OrderPlaced):
            plan = day.plans[event.order.symbol]
            day.plans[plan.symbol] = plan.trigger(event.occurred_at)
            day.orders_placed += 1
            orders[plan.id] = event.order
        elif isinstance(event, PlanExecuted):
            fill = event.fill
            plan = day.plans[fill.symbol]
            day.ledger.open(fill, stop=plan.stop, target=plan.target, planned_entry=plan.entry)
            day.plans[plan.symbol] = plan.fill(fill.price, fill.at)
        elif isinstance(event, PositionClosed):
            fill = event.fill
            plan = day.plans[fill.symbol]
            day.ledger.close(fill)
            day.plans[plan.symbol] = plan.close(fill.price, fill.kind.exit_reason, fill.at)
            day.risk.on_realised(day.ledger.realised)
        elif isinstance(event, PlanExpired):
            plan = day.plans[event.symbol]
            day.plans[plan.symbol] = plan.expire(event.occurred_at)
    day.restored(planned=planned, rejected=rejected, plan_versions=versions)
    working = tuple(
        orders[p.id]
        for p in day.plans.values()
        if p.state is PlanState.TRIGGERED and p.id in orders
    )
    held = tuple(
        (orders[p.plan_id], p.entry_at - BAR)
        for p in day.ledger.open_positions
        if p.plan_id in orders
    )
    return Resumed(working=working, held=held)
