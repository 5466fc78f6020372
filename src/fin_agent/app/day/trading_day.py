"""`TradingDay`: the handlers of one session, from the pre-market scan to the daily report.

The same object runs a live day (bars from the feed), the demo (the simulator) and a backtest
(recorded files): it only sees ports, one minute of bars at a time, and the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import structlog

from fin_agent.app.config.live import LiveConfig
from fin_agent.app.day.times import DayPorts, DayTimes
from fin_agent.app.day.traces import SymbolTraces
from fin_agent.domain.events import (
    DayStarted,
    DomainEvent,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    ScanCompleted,
    SignalGenerated,
    SnapshotTaken,
)
from fin_agent.domain.gap_scanner import (
    Candidate,
    GapScanner,
    ScanResult,
    SymbolSnapshot,
    UniverseSnapshot,
)
from fin_agent.domain.indicators import opening_range
from fin_agent.domain.orders import BracketOrder, Fill, FillKind
from fin_agent.domain.positions import Ledger
from fin_agent.domain.report import DailyReport, performance
from fin_agent.domain.risk_engine import RiskEngine, StateChange
from fin_agent.domain.rules import Strategy
from fin_agent.domain.trade_plan import (
    EntryWindow,
    PlanRejection,
    PlanRejectReason,
    PlanState,
    TradePlan,
    build_plan,
)
from fin_agent.domain.values import Bar, Session, Symbol

log = structlog.get_logger(__name__)

Collected = tuple[UniverseSnapshot, ScanResult]
"""A universe snapshot and the scan of it."""


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
    ) -> None:
        self.day: date = session.day
        self.times = times
        self._strategy = strategy
        self._ports = ports
        self._universe = tuple(universe)
        self._news_lookback = news_lookback
        self.ledger = Ledger(start_equity)
        self.risk = RiskEngine(strategy.risk, start_equity)
        self.scan_result: ScanResult | None = None
        self.plans: dict[Symbol, TradePlan] = {}
        self._range_bars: dict[Symbol, list[Bar]] = {}
        self._planned = False
        self._flattened = False
        self._rejected = 0
        self.orders_placed = 0
        self.traces = SymbolTraces()
        self._live = live
        self.config_version = live.version if live is not None else ""
        self.strategy_version = live.strategy_version if live is not None else ""
        self._plan_versions: dict[str, tuple[str, str]] = {}  # plan id -> (config, strategy)

    @property
    def watchlist(self) -> tuple[Symbol, ...]:
        """Symbols whose bars the day needs: the scan's candidates."""
        if self.scan_result is None:
            return ()
        return tuple(c.symbol for c in self.scan_result.candidates)

    @property
    def strategy(self) -> Strategy:
        """The strategy in force (the config version adopted last)."""
        return self._strategy

    @property
    def planned(self) -> bool:
        """Whether the day's plans have been built."""
        return self._planned

    @property
    def flattened(self) -> bool:
        """Whether the end-of-day flatten has happened."""
        return self._flattened

    def restored(
        self, *, planned: bool, rejected: int, plan_versions: dict[str, tuple[str, str]]
    ) -> None:
        """Take the bookkeeping `day.resume.restore` rebuilt from the stored events."""
        self._planned = self._planned or planned
        self._rejected += rejected
        self._plan_versions.update(plan_versions)

    async def scan(self, collected: Collected | None = None) -> ScanResult:
        """Run the gap scan at scan time and publish the snapshot, the result and the signals.

        `collected`: a snapshot and its result already taken (the live scan collects within
        the rate budgets before scan time); otherwise the ports are asked symbol by symbol.
        """
        self._adopt()
        with self.traces.day("scan", trading_day=str(self.day)):
            snapshot, result = collected or await self._collect()
            return await self._announce(snapshot, result)

    async def _collect(self) -> Collected:
        market, news = self._ports.market, self._ports.news
        rules = self._strategy.scan
        at = self.times.scan_at
        universe = self._universe or tuple(await market.symbols())
        lookback = max(rules.min_history_bars, rules.adv_period, 3 * rules.atr_period + 1)
        items = []
        for sym in universe:
            items.append(
                SymbolSnapshot(
                    symbol=sym,
                    daily_bars=tuple(await market.daily_bars(sym, self.day, lookback)),
                    premarket=await market.premarket(sym, self.day, at),
                    headlines=tuple(await news.headlines(sym, at - self._news_lookback, at)),
                )
            )
        snapshot = UniverseSnapshot(day=self.day, taken_at=at, symbols=tuple(items))
        return snapshot, GapScanner(rules).scan(snapshot)

    async def _announce(self, snapshot: UniverseSnapshot, result: ScanResult) -> ScanResult:
        at = self.times.scan_at
        self.scan_result = result
        key = f"{self._strategy.name}:{self.day}"
        events: list[DomainEvent] = [
            DayStarted(
                id=DayStarted.id_for(key),
                occurred_at=at,
                trading_day=self.day,
                start_equity=self.ledger.start_equity,
                strategy=self._strategy.name,
                session_open=self.times.opens_at,
                session_close=self.times.closes_at,
            ),
            SnapshotTaken(
                id=SnapshotTaken.id_for(key),
                occurred_at=at,
                trading_day=self.day,
                snapshot=snapshot,
            ),
            ScanCompleted(
                id=ScanCompleted.id_for(key),
                occurred_at=at,
                trading_day=self.day,
                result=result,
                config_version=self.config_version,
                strategy_version=self.strategy_version,
            ),
        ]
        await self._ports.bus.publish(events)
        for candidate in result.candidates:
            with self.traces.signal(candidate.symbol):
                await self._ports.bus.publish([self._signal(candidate, at)])
        return result

    async def on_bars(self, bars: Sequence[Bar]) -> None:
        """Handle one minute's bars (all starting at the same instant) of the watchlist.

        Only regular-session bars count: a live feed also closes pre- and after-market minutes.
        """
        times = self.times
        bars = [b for b in bars if times.opens_at <= b.start < times.closes_at]
        if not bars:
            return
        self._adopt()  # a minute boundary is a decision point: a pending config applies here
        minute = bars[0].start
        events: list[DomainEvent] = []
        if not self._planned:
            for bar in bars:
                if bar.start < self.times.range_ends_at:
                    self._range_bars.setdefault(bar.symbol, []).append(bar)
            if minute >= self.times.range_ends_at:
                events += self._build_plans(minute)
        if minute >= self.times.flatten_at and not self._flattened:
            events += await self._flatten(minute)
        if minute >= self.times.entries_until:
            events += self._expire(minute)
        events += await self._enter(bars, minute)
        await self._ports.orders.on_market(bars)
        events += await self._settle()
        await self.traces.publish(self._ports.bus, events)

    async def plan_now(self, at: datetime) -> int:
        """Build the plans now if no bar after the opening range has (the scheduled `plan` job:
        a quiet tape must not leave the day unplanned); returns how many plans were made."""
        if self._planned:
            return 0
        self._adopt()
        before = len(self.plans)
        await self.traces.publish(self._ports.bus, self._build_plans(at))
        return len(self.plans) - before

    async def flatten_now(self, at: datetime) -> int:
        """Expire the plans not entered and close every open position now (the scheduled
        `flatten` job); returns how many positions were closed."""
        events = self._expire(at)
        closing = 0 if self._flattened else len(self.ledger.open_positions)
        if not self._flattened:
            events += await self._flatten(at)
        events += await self._settle()
        await self.traces.publish(self._ports.bus, events)
        return closing

    async def finish(self) -> DailyReport:
        """Close the day: expire, flatten what is left at the last price, and publish the report."""
        at = self.times.closes_at
        events: list[DomainEvent] = []
        if not self._planned:
            events += self._build_plans(at)
        events += self._expire(at)
        if not self._flattened:
            events += await self._flatten(at)
        await self._ports.orders.end_of_session(at)
        events += await self._settle()
        report = DailyReport(
            day=self.day,
            strategy=self._strategy.name,
            candidates=len(self.scan_result.candidates) if self.scan_result else 0,
            plans=len(self.plans),
            plans_rejected=self._rejected,
            performance=performance(self.ledger.start_equity, self.ledger.closed_trades),
        )
        key = f"{self._strategy.name}:{self.day}"
        events.append(
            ReportDaily(
                id=ReportDaily.id_for(key), occurred_at=at, trading_day=self.day, report=report
            )
        )
        await self.traces.publish(self._ports.bus, events)
        return report

    def _adopt(self) -> None:
        """Put a pending config version in force (called only at decision points)."""
        if self._live is None or (adopted := self._live.adopt()) is None:
            return
        self._strategy = adopted.strategy
        self.risk.update_limits(adopted.strategy.risk)
        self.config_version = adopted.version
        self.strategy_version = adopted.strategy_version
        log.info("config_adopted", version=adopted.version)

    def _versions(self, plan_id: str) -> dict[str, str]:
        """The versions a plan was made under, stamped on its order and its close."""
        config, strategy = self._plan_versions.get(plan_id, ("", ""))
        return {"config_version": config, "strategy_version": strategy}

    def _signal(self, candidate: Candidate, at: datetime) -> SignalGenerated:
        return SignalGenerated(
            id=SignalGenerated.id_for(f"{self._strategy.name}:{self.day}:{candidate.symbol}"),
            occurred_at=at,
            trading_day=self.day,
            candidate=candidate,
        )

    def _build_plans(self, at: datetime) -> list[DomainEvent]:
        self._planned = True
        events: list[DomainEvent] = []
        window = EntryWindow(opens_at=self.times.range_ends_at, closes_at=self.times.entries_until)
        for candidate in self.scan_result.candidates if self.scan_result else ():
            opening = opening_range(
                self._range_bars.get(candidate.symbol, []),
                self.times.opens_at,
                self._strategy.plan.opening_range_minutes,
            )
            with self.traces.span("plan", candidate.symbol):
                outcome = build_plan(
                    candidate,
                    opening,
                    day=self.day,
                    equity=self.ledger.start_equity,
                    window=window,
                    rules=self._strategy.plan,
                    strategy=self._strategy.name,
                    at=at,
                )
            if isinstance(outcome, PlanRejection):
                events.append(
                    self._rejection(
                        outcome.plan_id, outcome.symbol, outcome.reason, outcome.detail, at
                    )
                )
                continue
            self.plans[outcome.symbol] = outcome
            self._plan_versions[outcome.id] = (self.config_version, self.strategy_version)
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
        return events

    async def _enter(self, bars: Sequence[Bar], at: datetime) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        fired = sorted(
            (
                plan
                for bar in bars
                if (plan := self.plans.get(bar.symbol)) and plan.triggered_by(bar)
            ),
            key=lambda p: p.rank,
        )
        for plan in fired:
            pending = [p for p in self.plans.values() if p.state is PlanState.TRIGGERED]
            with self.traces.span("risk", plan.symbol) as span:
                decision = self.risk.check(
                    notional=plan.entry * plan.qty,
                    open_positions=len(self.ledger.open_positions) + len(pending),
                    gross_exposure=self.ledger.gross_exposure
                    + sum((p.entry * p.qty for p in pending), Decimal(0)),
                    at=at,
                )
                span.set_attribute("risk.approved", decision.approved)
            if not decision.approved:
                self.plans[plan.symbol] = plan.cancel(f"risk: {decision.detail}", at)
                reason = f"{PlanRejectReason.RISK}:{decision.reason}"
                events.append(self._rejection(plan.id, plan.symbol, reason, decision.detail, at))
                continue
            self.plans[plan.symbol] = plan.trigger(at)
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
            with self.traces.span("order", plan.symbol):
                await self._ports.orders.submit(order)
            self.orders_placed += 1
            log.info(
                "order_placed", symbol=plan.symbol, plan_id=plan.id, qty=plan.qty,
                trigger=str(plan.entry), stop=str(plan.stop), target=str(plan.target),
            )  # fmt: skip
            events.append(
                OrderPlaced(
                    id=OrderPlaced.id_for(plan.id),
                    occurred_at=at,
                    trading_day=self.day,
                    order=order,
                    **self._versions(plan.id),
                )
            )
        return events

    async def _flatten(self, at: datetime) -> list[DomainEvent]:
        self._flattened = True
        for position in self.ledger.open_positions:
            await self._ports.orders.close(position.plan_id, FillKind.FLATTEN, at)
        return []

    def _expire(self, at: datetime) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for symbol, plan in list(self.plans.items()):
            if plan.state is PlanState.PLANNED:
                self.plans[symbol] = plan.expire(at)
                events.append(
                    PlanExpired(
                        id=PlanExpired.id_for(plan.id),
                        occurred_at=at,
                        trading_day=self.day,
                        plan_id=plan.id,
                        symbol=symbol,
                    )
                )
        return events

    async def _settle(self) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for fill in await self._ports.orders.take_fills():
            events += self._apply_fill(fill)
        return events

    def _apply_fill(self, fill: Fill) -> list[DomainEvent]:
        step = "fill" if fill.kind is FillKind.ENTRY else "close"
        with self.traces.span(step, fill.symbol):
            return self._record_fill(fill)

    def _record_fill(self, fill: Fill) -> list[DomainEvent]:
        plan = self.plans[fill.symbol]
        if fill.kind is FillKind.ENTRY:
            self.ledger.open(fill, stop=plan.stop, target=plan.target, planned_entry=plan.entry)
            self.plans[fill.symbol] = plan.fill(fill.price, fill.at)
            return [
                PlanExecuted(
                    id=PlanExecuted.id_for(plan.id),
                    occurred_at=fill.at,
                    trading_day=self.day,
                    plan_id=plan.id,
                    fill=fill,
                )
            ]
        trade = self.ledger.close(fill)
        log.info(
            "position_closed", symbol=trade.symbol, plan_id=trade.plan_id,
            reason=str(trade.exit_reason), net_pnl=str(trade.net_pnl), r=str(trade.r_multiple),
        )  # fmt: skip
        self.plans[fill.symbol] = plan.close(fill.price, fill.kind.exit_reason, fill.at)
        events: list[DomainEvent] = [
            PositionClosed(
                id=PositionClosed.id_for(plan.id),
                occurred_at=fill.at,
                trading_day=self.day,
                trade=trade,
                fill=fill,
                **self._versions(plan.id),
            )
        ]
        change = self.risk.on_realised(self.ledger.realised)
        if change is not None:
            events.append(self._state_changed(change, fill.at))
        return events

    def _state_changed(self, change: StateChange, at: datetime) -> RiskStateChanged:
        return RiskStateChanged(
            id=RiskStateChanged.id_for(f"{self.day}:{change.current}:{at.isoformat()}"),
            occurred_at=at,
            trading_day=self.day,
            previous=change.previous,
            current=change.current,
            reason=change.reason,
            detail=change.detail,
        )

    def _rejection(
        self, pid: str, symbol: Symbol, reason: str, detail: str, at: datetime
    ) -> PlanRejected:
        self._rejected += 1
        return PlanRejected(
            id=PlanRejected.id_for(pid),
            occurred_at=at,
            trading_day=self.day,
            plan_id=pid,
            symbol=symbol,
            reason=str(reason),
            detail=detail,
        )
