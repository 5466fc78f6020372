"""Runs whole trading days: scan, the session's bars through the bus minute by minute, the report.

The bars travel as `market.bars_closed` events to the `agent` consumer group, so the same code
runs in process (`--bus memory`) and through Redis Streams (`--bus redis`) with the same trades.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
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
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.server import (
    Check,
    HttpDeps,
    HttpServer,
    dead_letters_source,
    store_check,
)
from fin_agent.app.observability.metric_sources import register_sources
from fin_agent.app.schedule.runs import Schedule
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.errors import FinAgentError
from fin_agent.domain.events import BarsClosed
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
    )
    container.agent.day = day
    with bound_contextvars(trading_day=str(session.day)):
        return await _run_day(container, day, session, times, pace_secs)


async def _run_day(
    container: Container, day: TradingDay, session: Session, times: DayTimes, pace_secs: float
) -> DailyReport:
    await day.scan()
    if day.watchlist:
        bars = await container.market.session_bars(session.day, day.watchlist)
        events = [_minute(session, list(group)) for _, group in itertools.groupby(bars, key=_start)]
        step = 1 if pace_secs else PUBLISH_BATCH  # paced: one minute at a time, for watching
        for first in range(0, len(events), step):
            await container.bus.publish(events[first : first + step])
            if pace_secs:
                await asyncio.sleep(pace_secs)
    await container.bus.drain()
    clock = _moved(container)
    clock.set(max(clock.now(), times.closes_at))
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
        equity = settings.strategy_equity()
        log.info("agent_started", bus=type(container.bus).__name__, start=str(first))
        day = first
        while not stop.is_set() and (days is None or done < days):
            session = container.calendar.session(day)
            day += timedelta(days=1)
            if session is None:
                continue
            report = await run_session(container, session, equity)
            equity = report.performance.end_equity
            done += 1
            trimmed = await container.bus.trim(settings.bus.retain_hours * 3600)
            if any(trimmed.values()):
                log.info("bus_trimmed", **trimmed)
            perf = report.performance
            out.write(
                f"{report.day} trades {len(perf.trades)} net P&L {perf.net_pnl:.2f} "
                f"equity {perf.end_equity:.2f}\n"
            )
            out.flush()

    await serve(
        container,
        sessions,
        deps=http_deps(container),
        keep_serving=keep_serving,
        config_path=config_path,
    )
    log.info("agent_stopped", sessions=done)
    return 0


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
    server = HttpServer(deps, settings.http.host, settings.http.port)
    history = ConfigHistory(settings.data_path("config"))
    history.record(settings)
    async with running(container):
        await server.start()
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
            await server.stop()


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
