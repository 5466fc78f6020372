"""Serving an agent: the HTTP probes and read models, the active-instance lease, the bus and the
config watcher around the agent's work (`serve`), and the readiness checks it answers with.

A second agent on the same streams waits here for the lease, answering `/readyz` with "standby";
the active one holds it throughout, and stops with an error if it ever cannot renew it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path

import structlog

from fin_agent import __version__
from fin_agent.app.bootstrap import readiness_ping
from fin_agent.app.config.effective import render_effective
from fin_agent.app.config.live import ConfigWatcher
from fin_agent.app.config.version import ConfigHistory
from fin_agent.app.container import Container, running
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.research import studies
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
from fin_agent.domain.errors import FinAgentError
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)


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
        commands=container.operator,
        research=lambda: studies(settings.data_path("optimize")),
        api_token=settings.api_token.get_secret_value() if settings.api_token else None,
    )


def container_now(container: Container) -> datetime:
    """The wall clock, unless the container's own clock is a live one (a test's controlled clock
    is): a simulated day's fixed clock is not the time of day."""
    return container.wall_clock.now() if container.sim_clock is not None else container.clock.now()
