"""`DayRisk`: the trading day's risk decisions beyond a single entry, as part of `DayState`.

The open book marked at each minute's close (the daily loss limit on realised plus open P&L, the
maximum drawdown from the equity peak of the stored days, the error breaker), the agent's own halt
for a store outage, a broker's order rejection, the loss limit's flatten, and the book's VaR.
Every change is a `risk.state_changed` (or `plan.rejected`) event applied through the day's fold,
so a resumed day stands in the same state.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from fin_agent.domain.book import BookReturns, exposures, marks_of, open_pnl
from fin_agent.domain.day_events import Refusal, state_changed
from fin_agent.domain.events import DomainEvent, PlanRejected
from fin_agent.domain.orders import OrderRejection
from fin_agent.domain.positions import Ledger
from fin_agent.domain.risk_engine import RiskEngine, RiskReason
from fin_agent.domain.trade_plan import PlanRejectReason, PlanState, TradePlan
from fin_agent.domain.values import Bar, Symbol
from fin_agent.domain.var import ValueAtRisk


class DayRisk:
    """The risk half of `DayState` (a mixin: the state holds the fields, and `apply`)."""

    day: date
    ledger: Ledger
    risk: RiskEngine
    plans: dict[Symbol, TradePlan]
    last_bars: dict[Symbol, Bar]
    equity_peak: Decimal
    returns: BookReturns

    def apply(self, event: DomainEvent) -> None:
        """Move the state by one event (`DayState.apply`)."""
        raise NotImplementedError

    def marks(self) -> dict[Symbol, Decimal]:
        """Each symbol's last close: what the open book is marked at."""
        return marks_of(self.last_bars)

    def open_pnl(self) -> Decimal:
        """The open book's P&L at the marks, entry commissions paid."""
        return open_pnl(self.ledger, self.marks())

    def book_var(self, extra: TradePlan | None = None) -> ValueAtRisk:
        """The one-day historical VaR of the open book (with its working entries, and `extra`)
        from the symbols' daily returns in the day's scan snapshot."""
        book = exposures(self.ledger, self.plans.values(), self.marks(), extra)
        return self.returns.var(book)

    def _var_with(self, plan: TradePlan) -> Decimal:
        return self.book_var(plan).at(self.risk.limits.var_confidence_pct)

    def _rejection(
        self, plan_id: str, symbol: Symbol, reason: str, at: datetime, again: str = ""
    ) -> Refusal:
        return Refusal(
            id=PlanRejected.id_for(f"{plan_id}:{again}" if again else plan_id),
            day=self.day,
            plan_id=plan_id,
            symbol=symbol,
            reason=str(reason),
            at=at,
        )

    def _record(self, events: list[DomainEvent]) -> list[DomainEvent]:
        for event in events:
            self.apply(event)
        return events

    def guard(self, blocked: str | None, at: datetime) -> list[DomainEvent]:
        """The agent's own halt: while `blocked` says why (its store down too long) no entry
        opens; when it clears, entries resume. An operator's halt is left as it is."""
        if blocked is not None:
            change = self.risk.halt(blocked, RiskReason.STORE_OUTAGE)
        else:
            change = self.risk.resume("the store is back", RiskReason.STORE_OUTAGE)
            if self.risk.halted_by is not RiskReason.STORE_OUTAGE:
                change = None
        if change is None:
            return []
        return self._record([state_changed(self.day, change, at)])

    def mark(self, at: datetime) -> list[DomainEvent]:
        """The open book marked at the minute's close: the daily loss limit on realised plus open
        P&L, the maximum drawdown from the equity peak, and the error breaker."""
        events: list[DomainEvent] = []
        marks = self.marks()
        equity = self.ledger.equity(marks)
        for change in (
            self.risk.on_loss(self.ledger.realised, open_pnl(self.ledger, marks)),
            self.risk.on_drawdown(self.equity_peak, equity),
            self.risk.on_errors(at),
        ):
            if change is not None:
                events += self._record([state_changed(self.day, change, at)])
        return events

    def store_failures(self, count: int, at: datetime) -> list[DomainEvent]:
        """`count` new store failures seen at `at`: the error breaker counts them."""
        if count <= 0:
            return []
        self.risk.record_error(at, count)
        change = self.risk.on_errors(at)
        return [] if change is None else self._record([state_changed(self.day, change, at)])

    def order_rejected(self, rejection: OrderRejection, at: datetime) -> list[DomainEvent]:
        """The broker refused a plan's order: the plan is rejected with reason
        `order_rejected:<code>` and the broker's message, the error breaker counts it (and may
        halt the day). A second refusal of the same plan, or one of no plan of the day, is
        nothing (its order is no longer placed)."""
        plan = next((p for p in self.plans.values() if p.id == rejection.client_order_id), None)
        if plan is None or plan.state is not PlanState.TRIGGERED:
            return []
        reason = f"{PlanRejectReason.ORDER_REJECTED}:{rejection.code}"
        refusal = self._rejection(plan.id, plan.symbol, reason, at, "order").with_detail(
            rejection.message
        )
        events = self._record([refusal])
        change = self.risk.on_errors(at)
        if change is not None:
            events += self._record([state_changed(self.day, change, at)])
        return events

    def to_flatten(self) -> tuple[str, ...]:
        """The plan ids of the open positions the loss limit's `flatten` action closes."""
        if not self.risk.flatten_due:
            return ()
        return tuple(p.plan_id for p in self.ledger.open_positions)
