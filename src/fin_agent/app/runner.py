"""Runs whole trading days: scan, the session's bars through the bus minute by minute, the report.

The bars travel as `market.bars_closed` events to the `agent` consumer group, so the same code
runs in process (`--bus memory`) and through Redis Streams (`--bus redis`) with the same trades.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import structlog
from structlog.contextvars import bound_contextvars

from fin_agent import __version__
from fin_agent.app.bootstrap import readiness_ping
from fin_agent.app.config.live import ConfigWatcher
from fin_agent.app.config.settings import render_effective
from fin_agent.app.config.version import ConfigHistory
from fin_agent.app.container import Container, running
from fin_agent.app.coordinator import GROUP as COORDINATOR_GROUP
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.progress import RunProgress, read_progress
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.server import (
    Check,
    HttpDeps,
    HttpServer,
    dead_letters_source,
    store_check,
)
from fin_agent.app.instance import ActiveInstance, LeaseLostError
from fin_agent.app.observability.metric_sources import register_sources
from fin_agent.app.schedule.runs import Schedule
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.errors import FinAgentError
from fin_agent.domain.events import BarsClosed, DayStarted, ErrorRaised, Severity
from fin_agent.domain.report import DailyReport
from fin_agent.domain.values import Bar, Session, Symbol, symbol
from fin_agent.ports.clock import SettableClock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.store import Store

PUBLISH_BATCH = 30  # minutes of bars per publish
log = structlog.get_logger(__name__)


async def run_session(
    container: Container,
    session: Session,
    start_equity: Decimal,
    *,
    universe: Sequence[Symbol] | None = None,
    pace_secs: float = 0.0,
) -> DailyReport:
    """Run one session end to end and return its report (`universe`: else scan.universe)."""
    day = _new_day(container, session, start_equity, universe)
    with bound_contextvars(trading_day=str(session.day)):
        await day.scan()
        return await _trade(container, day, session, pace_secs=pace_secs)


async def resume_session(container: Container, session: Session) -> DailyReport:
    """Go on with a session a killed run left unreported: its day rebuilt from the stored events
    (the fold), the bars after the last stored minute sent, then the close and the report."""
    events = await container.store.events(day=session.day)
    started = [e for e in events if isinstance(e, DayStarted)]
    if not started:
        raise RuntimeError(f"no stored start of {session.day} to resume")
    day = _new_day(container, session, started[-1].start_equity, None)
    with bound_contextvars(trading_day=str(session.day)):
        await day.resume(events)
        container.agent.open_gate()
        stored = [bar.start for e in events if isinstance(e, BarsClosed) for bar in e.bars]
        return await _trade(container, day, session, after=max(stored, default=None))


def _new_day(
    container: Container,
    session: Session,
    start_equity: Decimal,
    universe: Sequence[Symbol] | None,
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
        ),
        universe=universe if universe is not None else [symbol(s) for s in settings.scan.universe],
        news_lookback=timedelta(hours=settings.scan.news_lookback_hours),
        live=container.live,
        entry_guard=container.coordinator.entries_blocked,
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
) -> DailyReport:
    """The session's bars onto the bus (those starting after `after`), then close and report.

    Every drain waits as long as it takes: a store that is down holds the day, never skips it.
    """
    if day.watchlist:
        bars = await container.market.session_bars(session.day, day.watchlist)
        bars = [b for b in bars if after is None or b.start > after]
        events = [_minute(session, list(group)) for _, group in itertools.groupby(bars, key=_start)]
        step = 1 if pace_secs else PUBLISH_BATCH  # paced: one minute at a time, for watching
        for first in range(0, len(events), step):
            await container.bus.publish(events[first : first + step])
            if pace_secs:
                await asyncio.sleep(pace_secs)
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
            equity = _reported(out, await run_session(container, session, equity))
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


async def serve(
    container: Container,
    body: Callable[[asyncio.Event], Awaitable[None]],
    *,
    deps: HttpDeps,
    keep_serving: bool = False,
    config_path: Path | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run `body(stop)` with the bus, the HTTP server and the config watcher up around it.

    SIGINT and SIGTERM set `stop`; `body` returns when it has wound down. With `keep_serving`
    the probes and scrapes are served after it returns, until a signal.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings = container.settings
    lease = container.lease
    if lease is not None:
        deps = dataclasses.replace(deps, checks={**deps.checks, "instance": _standby_check(lease)})
    server = HttpServer(deps, settings.http.host, settings.http.port)
    history = ConfigHistory(settings.data_path("config"))
    history.record(settings)
    await server.start()  # probes answer while this agent stands by for the lease
    try:
        if lease is not None and not await lease.acquire(stop):
            return  # a signal while standing by: nothing was started
        await _serve_active(container, body, stop, history, keep_serving, config_path)
    finally:
        await server.stop()


async def _serve_active(
    container: Container,
    body: Callable[[asyncio.Event], Awaitable[None]],
    stop: asyncio.Event,
    history: ConfigHistory,
    keep_serving: bool,
    config_path: Path | None,
) -> None:
    """The body with the bus and the config watcher up, holding the lease (if any) throughout."""
    lease = container.lease
    lost: list[str] = []

    def on_lost(why: str) -> None:
        lost.append(why)
        stop.set()

    keeper: asyncio.Task[None] | None = None
    if lease is not None:
        keeper = asyncio.create_task(lease.keep(stop, on_lost), name="instance-lease")

        async def release() -> None:  # after the bus stopped, before its Redis client closes
            if not lost:
                await lease.release()  # a clean stop: a standby takes over at once

        container.closers.append(release)
    async with running(container):
        watch: asyncio.Task[None] | None = None
        if config_path is not None:
            watcher = ConfigWatcher(
                config_path,
                container.live,
                publish=container.bus.publish,
                clock=container.wall_clock,
                history=history,
            )
            watch = asyncio.create_task(watcher.run(stop), name="config-watcher")
        try:
            await body(stop)
            if keep_serving and not stop.is_set():  # done: stay up for probes until a signal
                log.info("agent_idle")
                await stop.wait()
        finally:
            stop.set()  # the body is done (or a signal came): let the watcher finish
            if watch is not None:
                await watch
            if keeper is not None:
                await keeper
    if lost:
        raise LeaseLostError(lost[0])


def _standby_check(lease: ActiveInstance) -> Check:
    async def check() -> str | None:
        if lease.token is not None:
            return None
        if lease.standing_by:
            return (
                "standby: another agent holds the active-instance lease on these streams; this "
                "one takes over within bus.takeover_secs of it stopping"
            )
        return "starting: taking the active-instance lease"

    return check


def readiness_checks(
    bus: EventBus,
    store: Store,
    coordinator: Coordinator,
    *,
    ping: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Check]:
    """The agent's readiness: the bus answers (`ping`, default the bus's own), the store answers,
    the coordinator's writes work."""

    async def bus_check() -> str | None:
        try:
            await (ping or bus.ping)()
        except FinAgentError as exc:
            return str(exc)
        return None

    async def coordinator_check() -> str | None:
        stats = coordinator.stats
        return None if stats.store_up else f"store writes failing: {stats.last_error}"

    return {"bus": bus_check, "store": store_check(store), "coordinator": coordinator_check}


def http_deps(
    container: Container,
    *,
    checks: Mapping[str, Check] | None = None,
    schedule: Schedule | None = None,
) -> HttpDeps:
    """The read models and readiness checks of a running agent (`checks`: more of them)."""
    register_sources(container.metrics, container)
    settings = container.settings
    schedule = schedule or Schedule(
        settings.schedule, container.calendar, exchange_timezone=settings.timezone
    )
    bus_letters = (
        dead_letters_source(container.dead_letters) if container.dead_letters is not None else None
    )

    def upcoming() -> list[dict[str, object]]:
        return [r.as_dict() for r in schedule.upcoming(container_now(container), 10)]

    return HttpDeps(
        read_models=ReadModels(container.store),
        checks={
            **readiness_checks(
                container.bus,
                container.store,
                container.coordinator,
                ping=readiness_ping(container),
            ),
            **(checks or {}),
        },
        info={
            "version": __version__,
            "store": container.store_info.backend,
            "store_detail": container.store_info.detail,  # the mode: hypertables or plain, why
        },
        metrics=container.metrics,
        effective_config=lambda: render_effective(container.live.current.settings),
        dead_letters=bus_letters,
        schedule=upcoming,
        config_version=lambda: container.live.version,
    )


def container_now(container: Container) -> datetime:
    """The wall clock, unless the container's own clock is a live one (a test's controlled clock
    is): a simulated day's fixed clock is not the time of day."""
    return container.wall_clock.now() if container.sim_clock is not None else container.clock.now()


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
