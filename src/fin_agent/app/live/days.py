"""`LiveDays`: the scheduled jobs of the live agent, each a step of the trading day in progress.

- `scan` (its slot opens early by the collection's planned duration): collect the universe
  within the rate budgets (`LiveScan`), run the gap scan, start the `TradingDay` and point the
  trade feed at the candidates.
- `plan` (open + the opening range): once the range's last minute is on the bus, build the
  plans if no later bar has yet.
- `flatten` (close - N minutes): expire what was not entered and close every position.
- `report` (after the close): close the day, publish the report, stop watching symbols.
- `housekeeping`: trim the bus's handled entries and forget old feed bars.

A day lives in the process that scanned it: the other jobs of that day are `ready` only there
(the scheduler leaves them to that instance, and reports them missed if it is gone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TextIO

import structlog
from structlog.contextvars import bound_contextvars

from fin_agent.app.container import Container
from fin_agent.app.coordinator import GROUP as COORDINATOR_GROUP
from fin_agent.app.day.agent import GROUP as AGENT_GROUP
from fin_agent.app.day.history import equity_peak_before, sizing_equity
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.live.scan import LiveScan
from fin_agent.app.schedule.runs import ScheduledRun
from fin_agent.app.schedule.scheduler import Scheduler
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.errors import ConfigError, TransientError
from fin_agent.domain.events import DayStarted, ErrorRaised, ReportDaily, ScanCompleted, Severity
from fin_agent.domain.values import Session, Symbol, symbol
from fin_agent.ports.market_data import LiveMarketData

log = structlog.get_logger(__name__)

ScanFactory = Callable[[Container], LiveScan]
Watch = Callable[[Sequence[Symbol]], None]


class LiveDays:
    """The jobs that run the live trading days; `register` puts them on a `Scheduler`."""

    def __init__(
        self,
        container: Container,
        *,
        market: LiveMarketData,
        scanner: ScanFactory,
        watch: Watch,
        settle_secs: float,
        out: TextIO | None = None,
    ) -> None:
        self._container = container
        self._market = market
        self._scanner = scanner
        self._watch = watch
        self._settle_secs = settle_secs
        self.out = out
        self._equity: Decimal | None = None
        self.reports = 0

    # -- wiring ---------------------------------------------------------------------------------

    def register(self, scheduler: Scheduler) -> None:
        """Register every job under its name in `schedule.jobs`."""
        scheduler.register("scan", self.scan, lead=self.scan_lead)
        scheduler.register("plan", self.plan, ready=self.holds_day)
        scheduler.register("flatten", self.flatten, ready=self.holds_day)
        scheduler.register("report", self.report, ready=self.holds_day)
        scheduler.register("housekeeping", self.housekeeping)

    def scan_lead(self, run: ScheduledRun) -> timedelta:
        """How early the scan's slot opens: the collection's planned duration and margin."""
        plan = self._scanner(self._container).plan(run.at_utc, len(self._universe()))
        return run.at_utc - plan.start_at

    def holds_day(self, run: ScheduledRun) -> str | None:
        """None when this process holds the run's session (it scanned or resumed it), else why
        it cannot run it."""
        day = self._container.agent.day
        if day is not None and day.day == run.session:
            return None
        return (
            f"this instance holds no trading day of {run.session} (it neither scanned it nor "
            "resumed it from the store)"
        )

    # -- the jobs -------------------------------------------------------------------------------

    async def scan(self, run: ScheduledRun) -> str:
        """Collect, scan, start the day and watch its candidates."""
        container = self._container
        session = container.calendar.session(run.session)
        if session is None:  # the schedule only has sessions; the calendar changed under it
            return f"{run.session} is not a session"
        container.live.adopt()  # a new day is a decision point
        strategy = container.live.strategy
        scan_at = run.at_utc
        times = DayTimes.of(session, strategy, container.timezone, run.at.time())
        with bound_contextvars(trading_day=str(session.day)):
            outcome = await self._scanner(container).run(
                session.day, scan_at, self._universe(), previous_close=self._previous_close(session)
            )
            day = self._new_day(
                session,
                times,
                await sizing_equity(container.orders, await self._start_equity()),
                await equity_peak_before(self._container.store, session.day),
            )
            container.agent.day = day
            result = await day.scan((outcome.snapshot, outcome.result))
            self._watch(day.watchlist)
            if outcome.failures:
                await self._warn(
                    session.day,
                    run.slot_id,
                    "scan.collection_incomplete",
                    f"the scan of {session.day} has no data for {len(outcome.failures)} of "
                    f"{len(outcome.snapshot.symbols)} symbols (first: "
                    f"{_first(outcome.failures)}); check the data vendors' status",
                )
        names = ", ".join(c.symbol for c in result.candidates) or "none"
        return f"{len(result.candidates)} candidates ({names}) of {len(outcome.snapshot.symbols)}"

    async def plan(self, run: ScheduledRun) -> str:
        """Wait for the range's last minute to reach the day, then build the plans."""
        day = self._day(run)
        if day.planned:
            return f"{len(day.plans)} plans (built by the first bar after the range)"
        # The range's last minute closes at the run's time and takes the feed's grace to be
        # published; then the bus must hand it to the day.
        await asyncio.sleep(self._settle_secs)
        await self._drain()
        await day.plan_now(self._container.clock.now())
        return f"{len(day.plans)} plans"

    async def flatten(self, run: ScheduledRun) -> str:
        """Expire the plans not entered and close every open position."""
        closed = await self._day(run).flatten_now(self._container.clock.now())
        return f"{closed} positions closed"

    async def report(self, run: ScheduledRun) -> str:
        """Close the day and publish its report; the feed stops watching its symbols."""
        day = self._day(run)
        await self._drain()
        report = await day.finish()
        self._watch(())
        self._equity = report.performance.end_equity
        self.reports += 1
        perf = report.performance
        line = (
            f"{report.day} trades {len(perf.trades)} net P&L {perf.net_pnl:.2f} "
            f"equity {perf.end_equity:.2f}"
        )
        if self.out is not None:
            self.out.write(line + "\n")
            self.out.flush()
        return line

    async def housekeeping(self, run: ScheduledRun) -> str:
        """Trim handled bus entries past `bus.retain_hours`; forget feed bars of past days."""
        container = self._container
        trimmed = await container.bus.trim(container.settings.bus.retain_hours * 3600)
        self._market.buffer.prune(run.session)
        return f"trimmed {sum(trimmed.values())} bus entries"

    async def resume(self) -> str | None:
        """After a restart: rebuild today's trading day from the store if a scan started it and
        no report closed it (its plans, positions and working orders); what was resumed."""
        container = self._container
        now = container.clock.now()
        today = now.astimezone(container.timezone).date()
        session = container.calendar.session(today)
        if container.agent.day is not None or session is None:
            return None
        # what the last run published is stored first, however long the store takes
        await container.bus.drain(groups=[COORDINATOR_GROUP])
        events = await container.store.events(day=today)
        started = [e for e in events if isinstance(e, DayStarted)]
        scans = [e for e in events if isinstance(e, ScanCompleted)]
        if not started or not scans or any(isinstance(e, ReportDaily) for e in events):
            return None
        container.live.adopt()
        scan_at = scans[-1].occurred_at.astimezone(container.timezone)
        times = DayTimes.of(session, container.live.strategy, container.timezone, scan_at.time())
        day = self._new_day(
            session,
            times,
            started[-1].start_equity,
            await equity_peak_before(self._container.store, session.day),
        )
        await day.resume(events)
        container.agent.day = day
        self._equity = started[-1].start_equity
        self._watch(day.watchlist)
        last = max(e.occurred_at for e in events).astimezone(container.timezone)
        message = (
            f"resumed the trading day of {today} after a restart: {len(day.plans)} plans, "
            f"{len(day.ledger.open_positions)} open positions, "
            f"{len(day.state.working_orders())} working "
            f"entry orders; the market between {last:%H:%M} and "
            f"{now.astimezone(container.timezone):%H:%M} was not seen"
        )
        await self._warn(today, f"{today}:{now.isoformat()}", "day.resumed", message)
        return message

    # -- helpers --------------------------------------------------------------------------------

    def _new_day(
        self, session: Session, times: DayTimes, equity: Decimal, peak: Decimal | None = None
    ) -> TradingDay:
        container = self._container
        return TradingDay(
            session=session,
            times=times,
            strategy=container.live.strategy,
            start_equity=equity,
            ports=DayPorts(
                clock=container.clock,
                market=container.market,
                news=container.news,
                orders=container.orders,
                bus=container.bus,
                records=container.store.scan_records(),
            ),
            news_lookback=timedelta(hours=container.live.current.settings.scan.news_lookback_hours),
            live=container.live,
            entry_guard=container.coordinator.entries_blocked,
            equity_peak=peak,
            store_failures=lambda: container.coordinator.stats.outages,
            previous_close=self._previous_close(session),
        )

    def _previous_close(self, session: Session) -> datetime | None:
        try:
            previous = self._container.calendar.previous_session(session.day)
        except ConfigError:  # the calendar starts at this session
            return None
        return None if previous is None else previous.close

    def _universe(self) -> list[Symbol]:
        return [symbol(s) for s in self._container.live.current.settings.scan.universe]

    def _day(self, run: ScheduledRun) -> TradingDay:
        day = self._container.agent.day
        if day is None or day.day != run.session:  # `holds_day` keeps this from happening
            raise RuntimeError(f"no trading day of {run.session} in this process")
        return day

    async def _start_equity(self) -> Decimal:
        """The last reported day's end equity (also after a restart), else the account's."""
        if self._equity is None:
            curve = await ReadModels(self._container.store).equity_curve()
            last = curve[-1]["equity"] if curve else None
            self._equity = (
                Decimal(str(last))
                if last is not None
                else self._container.settings.strategy_equity()
            )
        return self._equity

    async def _drain(self, timeout_secs: float | None = None) -> None:
        """Wait for the day's bars to reach it; on a deadline, go on with what has arrived (a
        live day keeps its times: the store catching up is not waited for)."""
        timeout = timeout_secs if timeout_secs is not None else max(self._settle_secs, 5.0)
        try:
            await self._container.bus.drain(timeout_secs=timeout, groups=[AGENT_GROUP])
        except TransientError as exc:  # a deadline too: go on with what has arrived
            log.warning("bus_not_drained", error=str(exc))

    async def _warn(self, day: date, key: str, code: str, message: str) -> None:
        log.warning(code, message=message)
        await self._container.bus.publish(
            [
                ErrorRaised(
                    id=ErrorRaised.id_for(f"{code}:{key}"),
                    occurred_at=self._container.clock.now().astimezone(UTC),
                    trading_day=day,
                    source="agent",
                    code=code,
                    message=message,
                    severity=Severity.WARNING,
                )
            ]
        )


def _first(failures: Mapping[Symbol, str]) -> str:
    sym = min(failures)
    return f"{sym}: {failures[sym]}"
