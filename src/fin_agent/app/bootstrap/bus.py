"""The event bus of `bus.kind` (in memory, or Redis Streams on `bus.redis_url` or the agent's
own redis-server), what operators and metrics read of it (dead letters, counts, a readiness
ping) and the scheduler's slots beside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

import structlog
from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.memory import InMemoryEventBus
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.dead_letters import RedisDeadLetters
from fin_agent.adapters.redis.embedded import EmbeddedRedis
from fin_agent.adapters.redis.probe import RedisProbe
from fin_agent.adapters.redis.slots import InMemorySlots, RedisSlots
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.app.config.runtime import BusSettings
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Closer, Container
from fin_agent.app.instance import ActiveInstance
from fin_agent.app.observability.metrics import Metrics
from fin_agent.domain.errors import FinAgentError
from fin_agent.ports.bus_admin import BusStats, DeadLetters
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.slots import Slots

BusKind = Literal["memory", "redis"]
log = structlog.get_logger(__name__)


def event_bus(
    settings: Settings,
    kind: BusKind,
    prefix: str | None,
    clock: Clock,
    closers: list[Closer],
    metrics: Metrics,
    *,
    keep_published: bool = True,
    codec: EventCodec,
) -> EventBus:
    """The bus of `kind`; its Redis client (and embedded server) close with `closers`
    (`keep_published`: a memory bus keeps every event it carried in `published`; `codec`: the
    run's, for a Redis bus)."""
    if kind == "memory":
        return InMemoryEventBus(observer=metrics.observe, keep_published=keep_published)
    config = settings.bus
    url = config.redis_url or embedded_redis_url(settings, closers)
    streams = streams_settings(config, prefix)
    client = Redis.from_url(
        url,
        password=settings.bus_redis_password(),
        socket_timeout=streams.socket_timeout_secs,
        socket_connect_timeout=5.0,
    )
    closers.append(client.aclose)
    return RedisStreamsEventBus(client, codec, streams, clock, observer=metrics.observe)


def bus_admin(bus: EventBus) -> tuple[BusStats | None, DeadLetters | None]:
    """A Redis bus's counts and dead-letter stream; an in-memory bus has neither."""
    if isinstance(bus, RedisStreamsEventBus):
        return bus, bus.dead_letters()
    return None, None


def lease(settings: Settings, bus: EventBus) -> ActiveInstance | None:
    """One active agent per set of streams on Redis: the lease lives beside the streams."""
    if not isinstance(bus, RedisStreamsEventBus):
        return None
    slots = RedisSlots(bus.redis, prefix=bus.settings.prefix)
    return ActiveInstance(
        slots, takeover_secs=settings.bus.takeover_secs, name=settings.bus.consumer
    )


def readiness_ping(container: Container) -> Callable[[], Awaitable[None]]:
    """The bus's readiness PING: on Redis, over a connection of its own with short timeouts (a
    flood of probes never takes the bus's connections), closed with the container."""
    bus = container.bus
    if not isinstance(bus, RedisStreamsEventBus):
        return bus.ping
    probe = RedisProbe.beside(bus.redis)
    container.closers.append(probe.close)
    return probe.ping


def streams_settings(config: BusSettings, prefix: str | None = None) -> StreamsSettings:
    """The bus's tuning from the `bus` section of the config."""
    return StreamsSettings(
        prefix=prefix or config.stream_prefix,
        consumer=config.consumer,
        take_over_on_start=True,  # serving agents start the bus only once they hold the lease
        block_ms=config.block_ms,
        read_count=config.read_count,
        claim_idle_ms=config.claim_idle_ms,
        max_deliveries=config.max_deliveries,
        max_in_flight=config.max_in_flight,
        max_lag=config.max_lag,
    )


def embedded_redis_url(settings: Settings, closers: list[Closer]) -> str:
    """Start the agent's own redis-server under data_dir/redis (AOF on) and stop it at the end."""
    server = EmbeddedRedis(settings.data_path("redis"))
    server.start()

    async def stop() -> None:
        await asyncio.to_thread(server.stop)

    closers.append(stop)
    return server.url


@asynccontextmanager
async def open_dead_letters(settings: Settings) -> AsyncIterator[DeadLetters]:
    """The dead letters of the configured bus (`fin-agent dlq`): its Redis URL, or the embedded
    server's folder (attached to when it runs, else started for the command and stopped)."""
    server: EmbeddedRedis | None = None
    url = settings.bus.redis_url
    if url is None:
        server = EmbeddedRedis(settings.data_path("redis"))
        url = server.attach_or_start()
    client = Redis.from_url(url, password=settings.bus_redis_password(), socket_connect_timeout=5.0)
    try:
        yield RedisDeadLetters(client, streams_settings(settings.bus))
    finally:
        await client.aclose()
        if server is not None:
            server.stop_if_started()


def slots(container: Container, clock: Clock) -> Slots:
    """Slots in Redis, so each runs once across restarts (and instances): the bus's Redis, or
    with a memory bus the agent's own redis-server under data_dir/redis (AOF on). Without a
    redis-server to start, in memory: once per process, said in a warning."""
    bus = container.bus
    if isinstance(bus, RedisStreamsEventBus):
        return RedisSlots(bus.redis, prefix=bus.settings.prefix)
    settings = container.settings
    try:
        url = embedded_redis_url(settings, container.closers)
    except FinAgentError as exc:
        log.warning(
            "slots_in_memory",
            error=str(exc),
            detail="each slot runs once per process, not across restarts: install redis-server "
            "or use bus.kind: redis",
        )
        return InMemorySlots(clock)
    client = Redis.from_url(url, socket_connect_timeout=5.0)
    container.closers.append(client.aclose)  # closed before the server stops
    return RedisSlots(client, prefix=settings.bus.stream_prefix)
