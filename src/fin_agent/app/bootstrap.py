"""The composition root: the only place that builds adapters from settings and wires them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from redis.asyncio import Redis

from fin_agent.adapters.embedded_redis import EmbeddedRedis
from fin_agent.adapters.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import (
    FixedCalendar,
    FixedClock,
    InMemoryEventBus,
    InMemoryNews,
    InMemoryStore,
)
from fin_agent.adapters.paper_broker import PaperBroker
from fin_agent.adapters.redis_bus import RedisStreamsEventBus
from fin_agent.adapters.redis_streams import StreamsSettings, default_consumer
from fin_agent.adapters.replay import ReplayMarketData
from fin_agent.adapters.simulator import SimulatedMarket
from fin_agent.app.agent import Agent
from fin_agent.app.config_runtime import BusSettings
from fin_agent.app.settings import Settings
from fin_agent.domain.events import BarsClosed, DomainEvent
from fin_agent.domain.rules import Strategy
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.event_bus import ALL_EVENTS, EventBus
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News

DEFAULT_SCAN_TIME = time(9, 0)
REGULAR_CLOSE = time(16, 0)
_ONE_SECOND = timedelta(seconds=1)
BusKind = Literal["memory", "redis"]
Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """Everything a run needs, built once from settings."""

    settings: Settings
    strategy: Strategy
    timezone: ZoneInfo
    clock: FixedClock
    calendar: Calendar
    market: MarketData
    news: News
    orders: PaperBroker
    bus: EventBus
    store: InMemoryStore
    agent: Agent
    closers: list[Closer] = field(default_factory=list)

    def scan_time(self, day: date) -> time:
        """Time of day of the scan job on `day`, from `schedule.jobs.scan.cron` in exchange time."""
        job = self.settings.schedule.jobs.get("scan")
        cron = job.cron if job is not None else None
        if not cron:
            return DEFAULT_SCAN_TIME
        start = datetime.combine(day, time(0, 0), self.timezone)
        nxt: datetime = croniter(cron, start - _ONE_SECOND).get_next(datetime)
        return nxt.timetz().replace(tzinfo=None) if nxt.date() == day else DEFAULT_SCAN_TIME


@asynccontextmanager
async def running(container: Container) -> AsyncIterator[Container]:
    """Start the bus's consumers for the block, then stop them and release every resource."""
    try:
        await container.bus.start()
        yield container
    finally:
        await container.bus.stop()
        for close in reversed(container.closers):
            await close()


def build(
    settings: Settings,
    *,
    market: MarketData,
    news: News,
    calendar: Calendar,
    bus: BusKind | None = None,
    stream_prefix: str | None = None,
) -> Container:
    """Wire a run: paper broker, the bus of `settings.bus` (or `bus`), the agent and the store."""
    strategy = settings.strategy()
    clock = FixedClock(datetime(1970, 1, 1, tzinfo=UTC))
    closers: list[Closer] = []
    event_bus = _bus(settings, bus or settings.bus.kind, stream_prefix, clock, closers)
    store = InMemoryStore()
    agent = Agent()

    async def persist(event: DomainEvent) -> None:
        await store.append([event])

    event_bus.subscribe("agent", [BarsClosed.TYPE], agent.on_bars)
    event_bus.subscribe("store", [ALL_EVENTS], persist)
    return Container(
        settings=settings,
        strategy=strategy,
        timezone=ZoneInfo(settings.timezone),
        clock=clock,
        calendar=calendar,
        market=market,
        news=news,
        orders=PaperBroker(strategy.costs),
        bus=event_bus,
        store=store,
        agent=agent,
        closers=closers,
    )


def _bus(
    settings: Settings,
    kind: BusKind,
    prefix: str | None,
    clock: FixedClock,
    closers: list[Closer],
) -> EventBus:
    if kind == "memory":
        return InMemoryEventBus()
    config = settings.bus
    url = config.redis_url or _embedded_redis_url(settings, closers)
    streams = streams_settings(config, prefix)
    client = Redis.from_url(
        url, socket_timeout=streams.socket_timeout_secs, socket_connect_timeout=5.0
    )
    closers.append(client.aclose)
    return RedisStreamsEventBus(client, EventCodec(default_registry()), streams, clock)


def streams_settings(config: BusSettings, prefix: str | None = None) -> StreamsSettings:
    """The bus's tuning from the `bus` section of the config."""
    return StreamsSettings(
        prefix=prefix or config.stream_prefix,
        consumer=default_consumer(),
        block_ms=config.block_ms,
        read_count=config.read_count,
        claim_idle_ms=config.claim_idle_ms,
        max_deliveries=config.max_deliveries,
        max_in_flight=config.max_in_flight,
        max_lag=config.max_lag,
    )


def _embedded_redis_url(settings: Settings, closers: list[Closer]) -> str:
    """Start the agent's own redis-server under data_dir/redis (AOF on) and stop it at the end."""
    server = EmbeddedRedis(settings.data_path("redis"))
    server.start()

    async def stop() -> None:
        await asyncio.to_thread(server.stop)

    closers.append(stop)
    return server.url


def build_simulation(
    settings: Settings,
    *,
    seed: int | None = None,
    bus: BusKind | None = None,
    stream_prefix: str | None = None,
) -> Container:
    """A run on the seeded simulator (the embedded default: no network, no accounts)."""
    calendar = FixedCalendar()
    market = SimulatedMarket(
        seed=settings.simulator.seed if seed is None else seed,
        calendar=calendar,
        universe_size=settings.simulator.universe_size,
    )
    return build(
        settings,
        market=market,
        news=market,
        calendar=calendar,
        bus=bus,
        stream_prefix=stream_prefix,
    )


def build_replay(settings: Settings, market: ReplayMarketData) -> Container:
    """A run on recorded bar files (a backtest); recorded files carry no news.

    Sessions are the weekdays of the data; a day whose data closes early is an early close.
    """
    zone = ZoneInfo(settings.timezone)
    early = [
        day
        for day in market.sessions()
        if (close := market.session_close(day)) is not None
        and close.astimezone(zone).time() < REGULAR_CLOSE
    ]
    calendar = FixedCalendar(early_closes=early)
    return build(settings, market=market, news=InMemoryNews(), calendar=calendar, bus="memory")
