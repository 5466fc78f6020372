"""Runs whole trading days: scan, the session's bars through the bus minute by minute, the report.

The bars travel as `market.bars_closed` events to the `agent` consumer group, so the same code
runs in process (`--bus memory`) and through Redis Streams (`--bus redis`) with the same trades.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import structlog
from structlog.contextvars import bound_contextvars

from fin_agent.app.container import Container
from fin_agent.app.coordinator import GROUP as COORDINATOR_GROUP
from fin_agent.app.day.agent import GROUP as AGENT_GROUP
from fin_agent.app.day.agent import NEWS_GROUP as AGENT_NEWS_GROUP
from fin_agent.app.day.history import equity_peak_before, sizing_equity
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.progress import RunProgress, read_progress
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.news.publisher import NewsPublisher
from fin_agent.app.news.recorded import RecordedDayNews
from fin_agent.app.serve import http_deps, serve
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import (
    BarsClosed,
    DayStarted,
    ErrorRaised,
    OperatorCommand,
    Severity,
)
from fin_agent.domain.gap_scanner import ScanResult
from fin_agent.domain.report import DailyReport
from fin_agent.domain.values import Bar, Session, Symbol, symbol
from fin_agent.ports.clock import SettableClock

PUBLISH_BATCH = 30  # minutes of bars per publish
MINUTE = timedelta(minutes=1)
_DAY_GROUPS = (AGENT_GROUP, AGENT_NEWS_GROUP)  # what the day handles (not the store's)
log = structlog.get_logger(__name__)


async def run_session(
    container: Container,
    session: Session,
    start_equity: Decimal,
    *,
    universe: Sequence[Symbol] | None = None,
    pace_secs: float = 0.0,
    commands: Sequence[tuple[datetime, OperatorCommand]] = (),
) -> DailyReport:
    """Run one session end to end and return its report (`universe`: else scan.universe;
    `commands`: operator commands decided at the given instants, as an audit replays them;
    `start_equity`: the records' equity, unless the broker keeps an account)."""
    peak = await equity_peak_before(container.store, session.day)
    equity = await sizing_equity(container.orders, start_equity)
    day = _new_day(container, session, equity, universe, peak)
    day.schedule_commands(commands)
    with bound_contextvars(trading_day=str(session.day)):
        news = await _day_news(container, session, None)
        await day.scan()
        if news is not None:  # the pre-market's headlines, in one publish after the day's start
            await news.until(day.times.scan_at)
        return await _trade(container, day, session, pace_secs=pace_secs, news=news)


async def scan_session(container: Container, session: Session) -> ScanResult:
    """The pre-market scan of one session alone, as `run_session` makes it (`fin-agent scan`):
    the same day, universe and collection, published and stored; no bars are traded."""
    day = _new_day(container, session, container.settings.strategy_equity(), None)
    with bound_contextvars(trading_day=str(session.day)):
        result = await day.scan()
    await container.bus.drain()
    return result


async def resume_session(container: Container, session: Session) -> DailyReport:
    """Go on with a session a killed run left unreported: its day rebuilt from the stored events
    (the fold), the bars after the last stored minute sent, then the close and the report."""
    events = await container.store.events(day=session.day)
    started = [e for e in events if isinstance(e, DayStarted)]
    if not started:
        raise RuntimeError(f"no stored start of {session.day} to resume")
    peak = await equity_peak_before(container.store, session.day)
    day = _new_day(container, session, started[-1].start_equity, None, peak)
    with bound_contextvars(trading_day=str(session.day)):
        await day.resume(events)
        container.agent.open_gate()
        stored = [bar.start for e in events if isinstance(e, BarsClosed) for bar in e.bars]
        after = max(stored, default=None)
        news = await _day_news(container, session, after or day.times.scan_at)
        return await _trade(container, day, session, after=after, news=news)


def _new_day(
    container: Container,
    session: Session,
    start_equity: Decimal,
    universe: Sequence[Symbol] | None,
    equity_peak: Decimal | None = None,
) -> TradingDay:
    settings = container.settings
    clock = _moved(container)
    container.live.adopt()  # a new day is a decision point too
    strategy = container.live.strategy
    times = DayTimes.of(session, strategy, container.timezone, container.scan_time(session.day))
    clock.set(max(clock.now(), times.scan_at))
    day = TradingDay(
        session=session,
        times=times,
        strategy=strategy,
        start_equity=start_equity,
        ports=DayPorts(
            clock=clock,
            market=container.market,
            news=container.news,
            orders=container.orders,
            bus=container.bus,
            records=container.store.scan_records(),
        ),
        universe=universe if universe is not None else [symbol(s) for s in settings.scan.universe],
        news_lookback=timedelta(hours=settings.scan.news_lookback_hours),
        live=container.live,
        entry_guard=container.coordinator.entries_blocked,
        equity_peak=equity_peak,
        store_failures=lambda: container.coordinator.stats.outages,
        previous_close=_previous_close(container, session),
    )
    container.agent.day = day
    return day


async def _trade(
    container: Container,
    day: TradingDay,
    session: Session,
    *,
    pace_secs: float = 0.0,
    after: datetime | None = None,
    news: RecordedDayNews | None = None,
) -> DailyReport:
    """The session's bars onto the bus (those starting after `after`), then close and report.

    Every drain waits as long as it takes: a store that is down holds the day, never skips it.
    """
    if news is not None:  # the headlines already published (the pre-market's) come first
        await container.bus.drain(groups=_DAY_GROUPS)
    if day.watchlist:
        bars = await container.market.session_bars(session.day, day.watchlist)
        bars = [b for b in bars if after is None or b.start > after]
        events = [_minute(session, list(group)) for _, group in itertools.groupby(bars, key=_start)]
        step = 1 if pace_secs else PUBLISH_BATCH  # paced: one minute at a time, for watching
        batch: list[BarsClosed] = []
        for event in events:
            closes = event.bars[0].start + MINUTE
            due = news is not None and news.next_at is not None and news.next_at < closes
            if batch and (len(batch) >= step or due):
                await container.bus.publish(batch)
                batch = []
                if pace_secs:
                    await asyncio.sleep(pace_secs)
            if news is not None and due:
                # Headlines reach the day between the minutes they fell in: the bars and the news
                # travel on their own streams, so the day handles every bar before the headline,
                # and the headline before the next bar, whatever the bus (a run equals its replay).
                await container.bus.drain(groups=_DAY_GROUPS)
                await news.until(closes)
                await container.bus.drain(groups=_DAY_GROUPS)
            batch.append(event)
        if batch:
            await container.bus.publish(batch)
    if news is not None:
        await news.until(day.times.closes_at)
    await container.bus.drain()
    clock = _moved(container)
    clock.set(max(clock.now(), day.times.closes_at))
    report = await day.finish()
    await container.bus.drain()
    return report


async def run_sessions(
    container: Container,
    sessions: Sequence[Session],
    start_equity: Decimal,
    *,
    pace_secs: float = 0.0,
) -> list[DailyReport]:
    """Run sessions in order, each starting with the equity the previous one ended with."""
    reports: list[DailyReport] = []
    equity = start_equity
    for session in sessions:
        report = await run_session(container, session, equity, pace_secs=pace_secs)
        reports.append(report)
        equity = report.performance.end_equity
    return reports


async def run_agent(
    container: Container,
    *,
    days: int | None,
    out: TextIO,
    keep_serving: bool = False,
    config_path: Path | None = None,
    pace_secs: float = 0.0,
) -> int:
    """The running agent on a simulated market: sessions back to back until `days` are done or
    SIGINT/SIGTERM. A signal lets the session in progress finish (flattened, reported) first."""
    settings = container.settings
    first = settings.simulator.start_date
    done = 0

    async def sessions(stop: asyncio.Event) -> None:
        nonlocal done
        log.info("agent_started", bus=type(container.bus).__name__, start=str(first))
        progress = await _progress(container, first, out)
        done = len(progress.reported)
        equity = settings.strategy_equity() if progress.end_equity is None else progress.end_equity
        day = first if progress.last_day is None else progress.last_day + timedelta(days=1)
        if progress.in_progress is not None and (days is None or done < days):
            session = container.calendar.session(progress.in_progress)
            if session is not None:
                equity = _reported(out, await resume_session(container, session))
                done += 1
        container.agent.open_gate()
        while not stop.is_set() and (days is None or done < days):
            session = container.calendar.session(day)
            day += timedelta(days=1)
            if session is None:
                continue
            equity = _reported(
                out, await run_session(container, session, equity, pace_secs=pace_secs)
            )
            done += 1
            trimmed = await container.bus.trim(settings.bus.retain_hours * 3600)
            if any(trimmed.values()):
                log.info("bus_trimmed", **trimmed)

    container.agent.close_gate()  # bars waiting on the bus wait for the day they belong to
    await serve(
        container,
        sessions,
        deps=http_deps(container),
        keep_serving=keep_serving,
        config_path=config_path,
    )
    log.info("agent_stopped", sessions=done)
    return 0


async def _progress(container: Container, first: date, out: TextIO) -> RunProgress:
    """Where a restarted run goes on: what its predecessor published stored first, then read."""
    await container.bus.drain(groups=[COORDINATOR_GROUP])
    progress = await read_progress(container.store, first)
    if progress.last_day is None:
        return progress
    out.write(
        f"resuming after {progress.last_day}: {len(progress.reported)} sessions reported"
        + (f", {progress.in_progress} in progress" if progress.in_progress else "")
        + "\n"
    )
    log.warning(
        "run_resumed",
        reported=len(progress.reported),
        in_progress=str(progress.in_progress) if progress.in_progress else None,
    )
    if progress.in_progress is not None and container.bus.started_empty:
        await _bus_lost(container, progress.in_progress)
    return progress


async def _bus_lost(container: Container, day: date) -> None:
    message = (
        f"the bus's Redis came back empty while the trading day of {day} was in progress: bars "
        "the agent had not yet handled are lost, so the day goes on from the last stored minute "
        "and its decisions may differ from an uninterrupted run; run Redis with appendonly yes "
        "(and its data on a volume) so that a restart finds them"
    )
    log.error("bus_data_lost", trading_day=str(day), detail=message)
    await container.bus.publish(
        [
            ErrorRaised(
                id=ErrorRaised.id_for(f"bus.data_lost:{day}"),
                occurred_at=container.clock.now().astimezone(UTC),
                trading_day=day,
                source="bus",
                code="bus.data_lost",
                message=message,
                severity=Severity.ERROR,
            )
        ]
    )


def _reported(out: TextIO, report: DailyReport) -> Decimal:
    """Write the day's line; the equity the next day starts with."""
    perf = report.performance
    out.write(
        f"{report.day} trades {len(perf.trades)} net P&L {perf.net_pnl:.2f} "
        f"equity {perf.end_equity:.2f}\n"
    )
    out.flush()
    return perf.end_equity


def _moved(container: Container) -> SettableClock:
    """The clock a simulated or replayed day moves itself (a live run reads the wall clock)."""
    if container.sim_clock is None:
        raise TypeError(
            "run_session drives a simulated or replayed day: build it with a FixedClock"
        )
    return container.sim_clock


def _start(bar: Bar) -> object:
    return bar.start


def _minute(session: Session, bars: list[Bar]) -> BarsClosed:
    start = bars[0].start
    return BarsClosed(
        id=BarsClosed.id_for(f"{session.day}:{start.isoformat()}"),
        occurred_at=bars[0].end,
        trading_day=session.day,
        bars=tuple(bars),
    )


def _previous_close(container: Container, session: Session) -> datetime | None:
    """The previous session's close (the catalyst window's default start); None when unknown."""
    try:
        previous = container.calendar.previous_session(session.day)
    except ConfigError:  # the calendar starts at this session
        return None
    return None if previous is None else previous.close


async def _day_news(
    container: Container, session: Session, until: datetime | None
) -> RecordedDayNews | None:
    """The session's recorded news (the simulator's), the part published before `until` sent now;
    None when the run has no recorded news."""
    if container.recorded_news is None:
        return None
    publisher = NewsPublisher(bus=container.bus, clock=container.clock, day=session.day)
    await publisher.load_seen(container.store)
    stream_start = datetime.combine(
        session.day, container.settings.news.start, container.timezone
    ).astimezone(UTC)
    news = RecordedDayNews(
        publisher, await container.recorded_news.news_of(session.day), stream_start
    )
    if until is not None:
        await news.until(until)
    return news
