"""`DayState`: one trading day as the fold of its events, and the decisions made on it.

Every change to a day's state (its scan, plans, working orders, positions, risk state, the bars
it has seen) happens in `apply`, one event at a time. The decisions (`begin`, `plan`, `enter`,
`expire`, `on_fill`, `report`) return the events they made, each already applied. A restarted
agent applies the day's stored events to a fresh state and stands where the live day stood: no
other code moves the state, so a resumed day cannot drift from the day that ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from fin_agent.domain.book import BookReturns
from fin_agent.domain.day_events import causal_order, scan_events, state_changed
from fin_agent.domain.day_news import catalyst_events, news_events
from fin_agent.domain.day_risk import DayRisk
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.entry_confirmations import CONFIRMATION_PREFIX, plan_refusal
from fin_agent.domain.events import (
    BarsClosed,
    DomainEvent,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    ScanCompleted,
    SnapshotTaken,
)
from fin_agent.domain.gap_scanner import ScanResult, UniverseSnapshot
from fin_agent.domain.indicators import opening_range
from fin_agent.domain.news import NewsItem
from fin_agent.domain.operator import OPERATOR_CANCELLED, CommandDecision, DayView, decide
from fin_agent.domain.orders import BracketOrder, Fill, FillKind
from fin_agent.domain.positions import Ledger
from fin_agent.domain.report import DailyReport, performance
from fin_agent.domain.risk_engine import RiskEngine, RiskReason
from fin_agent.domain.rules import Strategy
from fin_agent.domain.trade_plan import PlanRejection, PlanRejectReason, PlanState, TradePlan
from fin_agent.domain.trade_plan import build_plan as make_plan
from fin_agent.domain.values import Bar, Symbol

BAR = timedelta(minutes=1)
RISK_PREFIX = f"{PlanRejectReason.RISK}:"


class DayState(DayRisk):
    """The state of one trading day, moved only by `apply`."""

    def __init__(
        self,
        *,
        day: date,
        strategy: Strategy,
        times: DayTimes,
        start_equity: Decimal,
        equity_peak: Decimal | None = None,
    ) -> None:
        self.day = day
        self.times = times
        self._strategy = strategy
        self.config_version = ""
        self.strategy_version = ""
        self.ledger = Ledger(start_equity)
        self.risk = RiskEngine(strategy.risk, start_equity)
        self.equity_peak = max(equity_peak or start_equity, start_equity)
        self.returns = BookReturns()
        self.scan_result: ScanResult | None = None
        self.plans: dict[Symbol, TradePlan] = {}
        self.orders: dict[str, BracketOrder] = {}
        self.plan_versions: dict[str, tuple[str, str]] = {}  # plan id -> (config, strategy)
        self.range_bars: dict[Symbol, dict[datetime, Bar]] = {}
        self.last_bars: dict[Symbol, Bar] = {}
        self.session_bars: dict[Symbol, dict[datetime, Bar]] = {}  # for entry confirmations
        self._unconfirmed: set[tuple[str, str]] = set()  # (plan id, reason) announced
        self.planned = False
        self.reported = False
        self._rejected: set[str] = set()
        self.news_cancelled: set[Symbol] = set()  # candidates news cancelled before planning
        self._applied: set[str] = set()
        self.commands: set[str] = set()  # operator command ids decided (applied or refused)

    # -- what the day is -----------------------------------------------------------------------

    @property
    def strategy(self) -> Strategy:
        """The strategy in force (the config version adopted last)."""
        return self._strategy

    @property
    def key(self) -> str:
        """The natural key of the day's own events: strategy and day."""
        return f"{self._strategy.name}:{self.day}"

    @property
    def watchlist(self) -> tuple[Symbol, ...]:
        """Symbols whose bars the day needs: the scan's candidates."""
        if self.scan_result is None:
            return ()
        return tuple(c.symbol for c in self.scan_result.candidates)

    @property
    def rejected(self) -> int:
        """Plans refused today (at planning or by risk), each counted once."""
        return len(self._rejected)

    @property
    def orders_placed(self) -> int:
        """Entry orders sent today."""
        return len(self.orders)

    def working_orders(self) -> tuple[BracketOrder, ...]:
        """Entry orders sent whose plan has not filled yet: what a broker must still work."""
        return tuple(
            self.orders[p.id]
            for p in self.plans.values()
            if p.state is PlanState.TRIGGERED and p.id in self.orders
        )

    def held(self) -> tuple[tuple[BracketOrder, datetime], ...]:
        """Open positions as their orders, each with the start of the bar its entry filled in."""
        return tuple(
            (self.orders[p.plan_id], p.entry_at - BAR)
            for p in self.ledger.open_positions
            if p.plan_id in self.orders
        )

    def adopt(self, strategy: Strategy, version: str, strategy_version: str) -> None:
        """A new config version is in force from the next decision on."""
        self._strategy = strategy
        self.risk.update_limits(strategy.risk)
        self.config_version = version
        self.strategy_version = strategy_version

    def versions(self, plan_id: str) -> dict[str, str]:
        """The config and strategy versions a plan was made under, for its order and close."""
        config, strategy = self.plan_versions.get(plan_id, ("", ""))
        return {"config_version": config, "strategy_version": strategy}

    # -- the fold ------------------------------------------------------------------------------

    def apply(self, event: DomainEvent) -> None:
        """Move the state by one event of this day; an event applied before is ignored."""
        if event.id in self._applied:
            return
        self._applied.add(event.id)
        match event:
            case BarsClosed():
                self.observe(event.bars)
            case SnapshotTaken():
                if event.snapshot is not None:  # attached: the scan's, or its record read back
                    self.returns.take(event.snapshot)
            case ScanCompleted():
                self.scan_result = event.result
                self.config_version = event.config_version or self.config_version
                self.strategy_version = event.strategy_version or self.strategy_version
            case PlanCreated():
                self.plans[event.plan.symbol] = event.plan
                self.plan_versions[event.plan.id] = (event.config_version, event.strategy_version)
                self.planned = True
            case PlanRejected():
                self._on_rejected(event)
            case OrderPlaced():
                plan = self.plans[event.order.symbol]
                self.plans[plan.symbol] = plan.trigger(event.occurred_at)
                self.orders[plan.id] = event.order
                self.risk.record_order(event.occurred_at)
            case PlanExecuted():
                plan = self.plans[event.fill.symbol]
                self.ledger.open(
                    event.fill, stop=plan.stop, target=plan.target, planned_entry=plan.entry
                )
                self.plans[plan.symbol] = plan.fill(event.fill.price, event.fill.at)
            case PositionClosed():
                fill = event.fill
                plan = self.plans[fill.symbol]
                self.ledger.close(fill)
                self.plans[plan.symbol] = plan.close(fill.price, fill.kind.exit_reason, fill.at)
            case PlanExpired():
                plan = self.plans[event.symbol]
                self.plans[plan.symbol] = plan.expire(event.occurred_at)
            case RiskStateChanged():
                self.risk.apply(event.current, event.reason)
            case ReportDaily():
                self.reported = True
            case OperatorCommandApplied() | OperatorCommandRefused():
                self.commands.add(event.command_id)
            case _:
                pass

    def replay(self, events: Iterable[DomainEvent]) -> None:
        """Apply a day's stored events in the order the day made them."""
        for event in sorted(events, key=causal_order):
            if event.trading_day == self.day:
                self.apply(event)

    def observe(self, bars: Sequence[Bar]) -> list[Bar]:
        """Take in a minute's bars: the range's bars are kept, and each symbol's latest bar;
        returns the regular-session bars (the ones the day trades on)."""
        session = [b for b in bars if self.times.in_session(b)]
        window = self.times.range_window
        for bar in session:
            if window.contains(bar):
                self.range_bars.setdefault(bar.symbol, {})[bar.start] = bar
            self.session_bars.setdefault(bar.symbol, {})[bar.start] = bar
            last = self.last_bars.get(bar.symbol)
            if last is None or bar.start >= last.start:
                self.last_bars[bar.symbol] = bar
        return session

    def _on_rejected(self, event: PlanRejected) -> None:
        if event.reason.startswith(CONFIRMATION_PREFIX):
            self._unconfirmed.add((event.plan_id, event.reason))
            return  # not confirmed yet: the plan stays armed for its next trigger
        self._rejected.add(event.plan_id)
        plan = self.plans.get(event.symbol)
        if plan is None and event.reason == PlanRejectReason.NEWS:
            self.news_cancelled.add(event.symbol)  # cancelled before its plan was built
            return
        if plan is None or plan.id != event.plan_id:
            self.planned = True  # refused while planning: it never became a plan
            return
        if event.reason.startswith(PlanRejectReason.ORDER_REJECTED):  # `order_rejected:<code>`
            self.risk.record_error(event.occurred_at)  # the error breaker counts it
            if plan.state is PlanState.TRIGGERED:  # the broker holds nothing of it
                self.plans[plan.symbol] = plan.cancel(event.detail, event.occurred_at)
            return
        reason = event.reason.removeprefix(RISK_PREFIX)
        armed = reason in RiskReason.__members__.values() and RiskReason(reason).keeps_plan_armed
        operator = reason == OPERATOR_CANCELLED and plan.state is PlanState.TRIGGERED
        if (plan.state is PlanState.PLANNED and not armed) or operator:
            self.plans[plan.symbol] = plan.cancel(event.detail, event.occurred_at)

    # -- the decisions -------------------------------------------------------------------------

    def begin(
        self, snapshot: UniverseSnapshot, result: ScanResult, at: datetime
    ) -> list[DomainEvent]:
        """The day starts with the scan of `snapshot`: the day, its inputs, its result and a
        signal per candidate (and a halt when its equity is past the maximum drawdown); with
        `catalyst_required`, the headline each candidate passed with. The inputs are folded in
        and left out of the events returned (`SnapshotTaken.on_bus`): the caller keeps them as
        scan record `key` before publishing."""
        catalysts: list[DomainEvent] = []
        if self._strategy.scan.catalyst_required:
            catalysts = catalyst_events(
                day=self.day, strategy=self._strategy.name, snapshot=snapshot, result=result, at=at
            )
        made = self._record(
            scan_events(
                self.key,
                self.day,
                start_equity=self.ledger.start_equity,
                strategy=self._strategy.name,
                times=self.times,
                snapshot=snapshot,
                result=result,
                versions={
                    "config_version": self.config_version,
                    "strategy_version": self.strategy_version,
                },
                at=at,
            )
            + catalysts
        ) + self.mark(at)  # a day that starts in a drawdown past the limit starts halted
        return [e.on_bus() if isinstance(e, SnapshotTaken) else e for e in made]

    def plan(self, at: datetime) -> list[DomainEvent]:
        """Build a plan for every candidate from its opening range (once a day)."""
        if self.planned:
            return []
        self.planned = True
        events: list[DomainEvent] = []
        for candidate in self.scan_result.candidates if self.scan_result else ():
            if candidate.symbol in self.news_cancelled:
                continue
            bars = self.range_bars.get(candidate.symbol, {}).values()
            outcome = make_plan(
                candidate,
                opening_range(tuple(bars), self.times.range_window),
                day=self.day,
                equity=self.ledger.start_equity,
                window=self.times.entry_window,
                rules=self._strategy.plan,
                strategy=self._strategy.name,
                at=at,
            )
            if isinstance(outcome, PlanRejection):
                events.append(
                    self._rejection(
                        outcome.plan_id, outcome.symbol, outcome.reason, at
                    ).with_detail(outcome.detail)
                )
                continue
            events.append(
                PlanCreated(
                    id=PlanCreated.id_for(outcome.id),
                    occurred_at=at,
                    trading_day=self.day,
                    plan=outcome,
                    config_version=self.config_version,
                    strategy_version=self.strategy_version,
                )
            )
        return self._record(events)

    def enter(self, bars: Sequence[Bar], at: datetime) -> list[DomainEvent]:
        """The entries `bars` trigger, in scan-rank order, each checked by risk first: an order
        placed, or a refusal (announced once per plan while it stays armed)."""
        fired = sorted(
            (p for b in bars if (p := self.plans.get(b.symbol)) is not None and p.triggered_by(b)),
            key=lambda p: p.rank,
        )
        events: list[DomainEvent] = []
        for plan in fired:
            if (unconfirmed := self._confirm(plan, at)) is not None:
                events += unconfirmed
                continue
            pending = [p for p in self.plans.values() if p.state is PlanState.TRIGGERED]
            decision = self.risk.check(
                notional=plan.entry * plan.qty,
                open_positions=len(self.ledger.open_positions) + len(pending),
                gross_exposure=self.ledger.gross_exposure
                + sum((p.entry * p.qty for p in pending), Decimal(0)),
                at=at,
                book_var=self._var_with(plan) if self.risk.var_limit is not None else None,
            )
            if not decision.approved:
                reason = decision.reason or RiskReason.HALTED
                if reason.keeps_plan_armed and plan.id in self._rejected:
                    continue  # still armed, its refusal already announced
                # A final refusal of a plan refused before while armed has an id of its own.
                again = str(reason) if plan.id in self._rejected else ""
                refusal = self._rejection(plan.id, plan.symbol, f"{RISK_PREFIX}{reason}", at, again)
                events += self._record([refusal.with_detail(decision.detail)])
                continue
            order = BracketOrder(
                client_order_id=plan.id,
                symbol=plan.symbol,
                side=plan.side,
                qty=plan.qty,
                trigger=plan.entry,
                stop=plan.stop,
                target=plan.target,
                placed_at=at,
            )
            placed = OrderPlaced(
                id=OrderPlaced.id_for(plan.id),
                occurred_at=at,
                trading_day=self.day,
                order=order,
                **self.versions(plan.id),
            )
            events += self._record([placed])
        return events

    def on_news(self, item: NewsItem, at: datetime) -> list[DomainEvent]:
        """A headline after the scan: attached to its candidates' plans (each once); it cancels
        those not yet triggered when it holds one of `scan.cancel_on_keywords`."""
        events = news_events(
            day=self.day,
            strategy=self._strategy.name,
            result=self.scan_result,
            plans=self.plans,
            planned=self.planned,
            held={p.symbol for p in self.ledger.open_positions},
            item=item,
            keywords=self._strategy.scan.cancel_on_keywords,
            at=at,
        )
        return self._record([e for e in events if e.id not in self._applied])

    def _confirm(self, plan: TradePlan, at: datetime) -> list[DomainEvent] | None:
        """None when the entry confirmations (if any) agree with a trigger in the bar starting
        `at`; else their refusal, announced once per plan and rule."""
        bars = self.session_bars.get(plan.symbol, {}).values()
        rules = self._strategy.plan.confirmations
        if (refusal := plan_refusal(rules, plan, self.scan_result, bars, self.times, at)) is None:
            return None
        if (plan.id, refusal[0]) in self._unconfirmed:
            return []
        refused = self._rejection(plan.id, plan.symbol, refusal[0], at, again=refusal[0])
        return self._record([refused.with_detail(refusal[1])])

    def command(self, command: OperatorCommand, at: datetime) -> CommandDecision:
        """An operator's command decided at `at` (nothing for a command id decided before)."""
        if command.command_id in self.commands:
            return CommandDecision()
        view = DayView(
            day=self.day,
            risk=self.risk,
            plans=tuple(self.plans.values()),
            positions=self.ledger.open_positions,
        )
        decision = decide(view, command, at)
        self._record(decision.events)
        return decision

    def expire(self, at: datetime) -> list[DomainEvent]:
        """Plans not triggered by `at` (the entry deadline, or the day's end) expire."""
        return self._record(
            [
                PlanExpired(
                    id=PlanExpired.id_for(plan.id),
                    occurred_at=at,
                    trading_day=self.day,
                    plan_id=plan.id,
                    symbol=symbol,
                )
                for symbol, plan in self.plans.items()
                if plan.state is PlanState.PLANNED
            ]
        )

    def on_fill(self, fill: Fill) -> list[DomainEvent]:
        """A fill from the broker: a position opened, or closed (and the risk state it moves)."""
        plan = self.plans[fill.symbol]
        if fill.kind is FillKind.ENTRY:
            executed = PlanExecuted(
                id=PlanExecuted.id_for(plan.id),
                occurred_at=fill.at,
                trading_day=self.day,
                plan_id=plan.id,
                fill=fill,
            )
            return self._record([executed])
        closed = PositionClosed(
            id=PositionClosed.id_for(plan.id),
            occurred_at=fill.at,
            trading_day=self.day,
            trade=self.ledger.closing(fill),
            fill=fill,
            **self.versions(plan.id),
        )
        events = self._record([closed])
        change = self.risk.on_loss(self.ledger.realised, self.open_pnl())
        if change is not None:
            events += self._record([state_changed(self.day, change, fill.at)])
        return events

    def report(self, at: datetime) -> tuple[DailyReport, list[DomainEvent]]:
        """The day's report, and its event."""
        report = DailyReport(
            day=self.day,
            strategy=self._strategy.name,
            candidates=len(self.scan_result.candidates) if self.scan_result else 0,
            plans=len(self.plans),
            plans_rejected=self.rejected,
            performance=performance(self.ledger.start_equity, self.ledger.closed_trades),
        )
        event = ReportDaily(
            id=ReportDaily.id_for(self.key), occurred_at=at, trading_day=self.day, report=report
        )
        return report, self._record([event])
