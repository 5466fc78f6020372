"""`TradingDay`: the handlers of one session, from the pre-market scan to the daily report.

The same object runs a live day (bars from the feed), the demo (the simulator) and a backtest
(recorded files): it only sees ports, one minute of bars at a time, and the clock. The day's state
and every rule that moves it are the domain's `DayState`; this class asks it for decisions, sends
the orders they hold to the broker, hands the broker's fills back, and publishes the events. A
restarted agent rebuilds the day with `resume`, the same fold over the day's stored events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import structlog

from fin_agent.app.config.live import LiveConfig
from fin_agent.app.day.collect import UniverseCollector
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.scan_record import keep_record, with_records
from fin_agent.app.day.traces import SymbolTraces
from fin_agent.domain.day_events import signal_events
from fin_agent.domain.day_state import DayState
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.errors import OrderRejectedError
from fin_agent.domain.events import (
    DomainEvent,
    OperatorCommand,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanRejected,
    PositionClosed,
    ScanCompleted,
    SignalGenerated,
)
from fin_agent.domain.gap_scanner import GapScanner, ScanResult, UniverseSnapshot
from fin_agent.domain.news import NewsItem
from fin_agent.domain.orders import FillKind, OrderRejection, RejectionCode
from fin_agent.domain.positions import Ledger
from fin_agent.domain.report import DailyReport
from fin_agent.domain.risk_engine import RiskEngine
from fin_agent.domain.rules import Strategy
from fin_agent.domain.trade_plan import TradePlan
from fin_agent.domain.values import Bar, Session, Symbol

log = structlog.get_logger(__name__)

Scanned = tuple[UniverseSnapshot, ScanResult]
"""A universe snapshot and the scan of it."""
EntryGuard = Callable[[], str | None]
"""Why new entries must wait right now (the store down too long), or None."""
ErrorCount = Callable[[], int]
"""How many store failures the agent has seen so far (a count that only grows)."""
BAR = timedelta(minutes=1)


class TradingDay:
    """Scan, plan, risk-check, execute, manage, flatten and report one session."""

    def __init__(
        self,
        *,
        session: Session,
        times: DayTimes,
        strategy: Strategy,
        start_equity: Decimal,
        ports: DayPorts,
        universe: Sequence[Symbol] = (),
        news_lookback: timedelta = timedelta(hours=24),
        live: LiveConfig | None = None,
        entry_guard: EntryGuard | None = None,
        equity_peak: Decimal | None = None,
        store_failures: ErrorCount | None = None,
        previous_close: datetime | None = None,
    ) -> None:
        self.day: date = session.day
        self.times = times
        self.state = DayState(
            day=session.day,
            strategy=strategy,
            times=times,
            start_equity=start_equity,
            equity_peak=equity_peak,
        )
        self._store_failures = store_failures
        self._failures_seen = store_failures() if store_failures is not None else 0
        self._ports = ports
        self._universe = tuple(universe)
        self._news_lookback = news_lookback
        self._live = live
        self._entry_guard = entry_guard
        self._previous_close = previous_close
        self._flattened = False
        self._commands: list[OperatorCommand] = []  # operator commands for the next decision
        self._scheduled: list[tuple[datetime, OperatorCommand]] = []  # an audit's, by instant
        self.traces = SymbolTraces()
        if live is not None:
            self.state.config_version = live.version
            self.state.strategy_version = live.strategy_version

    # -- the state, for the runners, read models and tests --------------------------------------

    @property
    def strategy(self) -> Strategy:
        """The strategy in force (the config version adopted last)."""
        return self.state.strategy

    @property
    def config_version(self) -> str:
        """The config version the day's decisions are made under."""
        return self.state.config_version

    @property
    def strategy_version(self) -> str:
        """The hash of the deciding sections the day's decisions are made under."""
        return self.state.strategy_version

    @property
    def watchlist(self) -> tuple[Symbol, ...]:
        """Symbols whose bars the day needs: the scan's candidates."""
        return self.state.watchlist

    @property
    def scan_result(self) -> ScanResult | None:
        """The day's scan, once made."""
        return self.state.scan_result

    @property
    def plans(self) -> dict[Symbol, TradePlan]:
        """The day's plans by symbol."""
        return self.state.plans

    @property
    def ledger(self) -> Ledger:
        """The day's positions, trades and P&L."""
        return self.state.ledger

    @property
    def risk(self) -> RiskEngine:
        """The day's risk engine and trading state."""
        return self.state.risk

    @property
    def planned(self) -> bool:
        """Whether the day's plans have been built."""
        return self.state.planned

    @property
    def flattened(self) -> bool:
        """Whether the end-of-day flatten has happened."""
        return self._flattened

    @property
    def reported(self) -> bool:
        """Whether the day's report is out (the day is over)."""
        return self.state.reported

    @property
    def now(self) -> datetime:
        """The day's present: the clock, or the end of the latest bar seen when that is later (a
        simulated day's clock stands still between its scan and its close)."""
        ends = [bar.end for bar in self.state.last_bars.values()]
        return max([self._ports.clock.now(), *ends])

    @property
    def orders_placed(self) -> int:
        """Entry orders sent today."""
        return self.state.orders_placed

    # -- resume ---------------------------------------------------------------------------------

    async def resume(self, events: Sequence[DomainEvent]) -> None:
        """Rebuild the day from its stored events (the fold) and give the broker back what it
        held: the entry orders still working and the open positions."""
        self.state.replay(await with_records(self._ports.records, events))
        await self._ports.orders.restore(
            self.state.working_orders(), self.state.held(), tuple(self.state.last_bars.values())
        )
        for event in sorted(events, key=lambda e: e.occurred_at):  # cut off before decided
            if isinstance(event, OperatorCommand):
                self.take_command(event)
        scans = [e for e in events if isinstance(e, ScanCompleted)]
        if scans and self.state.scan_result is not None:  # signals cut off by a kill go out now
            stored = {e.id for e in events}
            signals = signal_events(
                self.state.key, self.day, self.state.scan_result, scans[-1].occurred_at
            )
            await self._ports.bus.publish([e for e in signals if e.id not in stored])
        log.info(
            "day_resumed",
            trading_day=str(self.day),
            events=len(events),
            plans=len(self.state.plans),
            open_positions=len(self.state.ledger.open_positions),
            working=len(self.state.working_orders()),
        )

    # -- the day's handlers ---------------------------------------------------------------------

    async def scan(self, scanned: Scanned | None = None) -> ScanResult:
        """Run the gap scan at scan time, keep its inputs as the day's scan record, then publish
        the event that refers to it, the result and the signals.

        `scanned`: a snapshot and its result already collected (the live scan collects within the
        rate budgets before scan time); otherwise the universe is collected now.
        """
        self._adopt()
        with self.traces.day("scan", trading_day=str(self.day)):
            snapshot, result = scanned or await self._collect()
            kept = await keep_record(self._ports.records, self.state.key, snapshot)
            if kept is not snapshot:  # scanned before: the day goes on from its recorded inputs
                snapshot, result = kept, GapScanner(self.state.strategy.scan).scan(kept)
            events = self.state.begin(snapshot, result, self.times.scan_at)
            head = [e for e in events if not isinstance(e, SignalGenerated)]
            await self._ports.bus.publish(head)
            for event in events:
                if isinstance(event, SignalGenerated):
                    with self.traces.signal(event.candidate.symbol):
                        await self._ports.bus.publish([event])
        return result

    async def _collect(self) -> Scanned:
        universe = self._universe or tuple(await self._ports.market.symbols())
        collector = UniverseCollector(
            market=self._ports.market,
            news=self._ports.news,
            rules=self.state.strategy.scan,
            news_lookback=self._news_lookback,
        )
        collected = await collector.collect(
            self.day, self.times.scan_at, universe, previous_close=self._previous_close
        )
        return collected.snapshot, collected.result

    async def on_bars(self, bars: Sequence[Bar]) -> None:
        """Handle one minute's bars (all starting at the same instant) of the watchlist."""
        bars = self.state.observe(bars)
        if not bars:
            return
        self._adopt()  # a minute boundary is a decision point: a pending config applies here
        minute = bars[0].start
        events: list[DomainEvent] = []
        if self._entry_guard is not None:
            events += self.state.guard(self._entry_guard(), minute)
        events += self._count_store_failures(minute)
        if minute >= self.times.range_ends_at:
            events += self._traced(self.state.plan(minute))
        events += await self._decide_commands(minute)  # before any entry of this minute
        if minute >= self.times.flatten_at and not self._flattened:
            await self._flatten(minute)
        if minute >= self.times.entries_until:
            events += self.state.expire(minute)
        await self._close(self.state.to_flatten(), minute)  # again: a resumed day's too
        events += await self._enter(bars, minute)
        await self._ports.orders.on_market(bars)
        events += await self._settle(minute)
        events += self.state.mark(minute)  # the book at the minute's close: it rules the next
        await self._close(self.state.to_flatten(), minute + BAR)
        await self.traces.publish(self._ports.bus, events)

    def _count_store_failures(self, at: datetime) -> list[DomainEvent]:
        """The store failures since the last minute, for the error breaker."""
        if self._store_failures is None:
            return []
        seen = self._store_failures()
        new, self._failures_seen = seen - self._failures_seen, seen
        return self.state.store_failures(new, at)

    async def on_news(self, item: NewsItem, at: datetime) -> None:
        """A headline that arrived at `at`: attached to the plans of its symbols, cancelling those
        not triggered yet when it holds a `scan.cancel_on_keywords` keyword."""
        events = self.state.on_news(item, at)
        for event in events:
            if isinstance(event, PlanRejected):
                log.info("plan_cancelled_by_news", symbol=event.symbol, detail=event.detail)
        await self._ports.bus.publish(events)

    async def plan_now(self, at: datetime) -> int:
        """Build the plans now if no bar after the opening range has (the scheduled `plan` job:
        a quiet tape must not leave the day unplanned); returns how many plans were made."""
        if self.state.planned:
            return 0
        self._adopt()
        before = len(self.state.plans)
        await self.traces.publish(self._ports.bus, self._traced(self.state.plan(at)))
        return len(self.state.plans) - before

    async def flatten_now(self, at: datetime) -> int:
        """Expire the plans not entered and close every open position now (the scheduled
        `flatten` job); returns how many positions were closed."""
        events = await self._decide_commands(at)
        events += self.state.expire(at)
        closing = 0 if self._flattened else len(self.state.ledger.open_positions)
        if not self._flattened:
            await self._flatten(at)
        events += await self._settle(at)
        await self.traces.publish(self._ports.bus, events)
        return closing

    async def finish(self) -> DailyReport:
        """Close the day: expire, flatten what is left at the last price, and publish the report."""
        at = self.times.closes_at
        events = await self._decide_commands(at)
        events += self._traced(self.state.plan(at))
        events += self.state.expire(at)
        if not self._flattened:
            await self._flatten(at)
        await self._ports.orders.end_of_session(at)
        events += await self._settle(at)
        report, reported = self.state.report(at)
        await self.traces.publish(self._ports.bus, [*events, *reported])
        return report

    def take_command(self, command: OperatorCommand) -> bool:
        """Queue an operator's command for the next decision point; False for a command id
        already decided or queued (the same command twice applies once)."""
        queued = {c.command_id for c in self._commands}
        if command.command_id in self.state.commands or command.command_id in queued:
            return False
        self._commands.append(command)
        return True

    def schedule_commands(self, commands: Sequence[tuple[datetime, OperatorCommand]]) -> None:
        """Queue each command at the decision point of its instant (an audit replaying the
        commands a recorded day decided, where it decided them)."""
        self._scheduled = sorted([*self._scheduled, *commands], key=lambda c: c[0])

    async def _decide_commands(self, at: datetime) -> list[DomainEvent]:
        """Decide the queued operator commands at `at` and give the broker their work."""
        while self._scheduled and self._scheduled[0][0] <= at:
            self.take_command(self._scheduled.pop(0)[1])
        commands, self._commands = self._commands, []
        events: list[DomainEvent] = []
        for command in commands:
            decision = self.state.command(command, at)
            for plan_id in decision.cancel:
                await self._ports.orders.cancel(plan_id)
            for plan_id in decision.close:
                await self._ports.orders.close(plan_id, FillKind.FLATTEN, at)
            events += decision.events
            log.info(
                "operator_command_decided", command_id=command.command_id, kind=str(command.kind),
                outcome=decision.events[-1].TYPE if decision.events else "duplicate",
            )  # fmt: skip
        return events

    def _adopt(self) -> None:
        """Put a pending config version in force (called only at decision points)."""
        if self._live is None or (adopted := self._live.adopt()) is None:
            return
        self.state.adopt(adopted.strategy, adopted.version, adopted.strategy_version)
        log.info("config_adopted", version=adopted.version)

    def _traced(self, events: list[DomainEvent]) -> list[DomainEvent]:
        """A `plan` span in each planned symbol's trace."""
        for event in events:
            if isinstance(event, PlanCreated | PlanRejected):
                symbol = event.plan.symbol if isinstance(event, PlanCreated) else event.symbol
                with self.traces.span("plan", symbol):
                    pass
        return events

    async def _enter(self, bars: Sequence[Bar], at: datetime) -> list[DomainEvent]:
        made = self.state.enter(bars, at)
        events = list(made)
        for event in made:
            if isinstance(event, PlanRejected):
                with self.traces.span("risk", event.symbol) as span:
                    span.set_attribute("risk.approved", False)
                continue
            if not isinstance(event, OrderPlaced):
                continue
            order = event.order
            with self.traces.span("risk", order.symbol) as span:
                span.set_attribute("risk.approved", True)
            with self.traces.span("order", order.symbol):
                try:
                    await self._ports.orders.submit(order)
                except OrderRejectedError as exc:  # a broker that refuses by raising
                    refused = OrderRejection(
                        client_order_id=order.client_order_id,
                        code=RejectionCode.REFUSED,
                        message=str(exc),
                    )
                    events += self._rejected([refused], at)
                    continue
            log.info(
                "order_placed", symbol=order.symbol, plan_id=order.client_order_id, qty=order.qty,
                trigger=str(order.trigger), stop=str(order.stop), target=str(order.target),
            )  # fmt: skip
        return events

    async def _flatten(self, at: datetime) -> None:
        self._flattened = True
        await self._close([p.plan_id for p in self.state.ledger.open_positions], at)

    async def _close(self, plan_ids: Sequence[str], at: datetime) -> None:
        """Close these positions at market: the day's flatten, and the loss limit's."""
        for plan_id in plan_ids:
            await self._ports.orders.close(plan_id, FillKind.FLATTEN, at)

    def _rejected(self, rejections: Sequence[OrderRejection], at: datetime) -> list[DomainEvent]:
        """The broker's refusals: each plan rejected with `order_rejected:<code>`."""
        events: list[DomainEvent] = []
        for rejection in rejections:
            log.warning(
                "order_rejected", plan_id=rejection.client_order_id, code=str(rejection.code),
                message=rejection.message,
            )  # fmt: skip
            events += self.state.order_rejected(rejection, at)
        return events

    async def _settle(self, at: datetime) -> list[DomainEvent]:
        """The broker's refusals, then its fills, as events."""
        events = self._rejected(await self._ports.orders.take_rejections(), at)
        for fill in await self._ports.orders.take_fills():
            step = "fill" if fill.kind is FillKind.ENTRY else "close"
            with self.traces.span(step, fill.symbol):
                made = self.state.on_fill(fill)
            events += made
            for event in made:
                if isinstance(event, PositionClosed):
                    trade = event.trade
                    log.info(
                        "position_closed", symbol=trade.symbol, plan_id=trade.plan_id,
                        reason=str(trade.exit_reason), net_pnl=str(trade.net_pnl),
                        r=str(trade.r_multiple),
                    )  # fmt: skip
                elif isinstance(event, PlanExecuted):
                    log.info("plan_executed", symbol=fill.symbol, price=str(fill.price))
        return events
