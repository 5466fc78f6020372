"""The composition root: the only place that builds adapters from settings and wires them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter
from redis.asyncio import Redis

from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.files.replay import ReplayMarketData
from fin_agent.adapters.memory import (
    FixedCalendar,
    FixedClock,
    InMemoryEventBus,
    InMemoryNews,
    InMemoryStore,
)
from fin_agent.adapters.notify.token_bucket import RateLimit
from fin_agent.adapters.notify.webhooks import DiscordNotifier, JsonWebhookNotifier, WebhookConfig
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.embedded import EmbeddedRedis
from fin_agent.adapters.redis.probe import RedisProbe
from fin_agent.adapters.redis.streams import StreamsSettings, default_consumer
from fin_agent.adapters.simulator.market import SimulatedMarket
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.app.config.live import LiveConfig
from fin_agent.app.config.runtime import BusSettings
from fin_agent.app.config.settings import Settings
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.day.agent import Agent
from fin_agent.app.observability.metrics import Metrics
from fin_agent.app.observability.notifications import NotificationRouter
from fin_agent.domain.events import BarsClosed, Severity
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News
from fin_agent.ports.notifier import NotificationKind
from fin_agent.ports.store import Store, StoreInfo

DEFAULT_SCAN_TIME = time(9, 0)
REGULAR_CLOSE = time(16, 0)
_ONE_SECOND = timedelta(seconds=1)
BusKind = Literal["memory", "redis"]
StoreKind = Literal["memory", "duckdb", "timescale"]
log = structlog.get_logger(__name__)
Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """Everything a run needs, built once from settings."""

    settings: Settings
    timezone: ZoneInfo
    clock: Clock
    calendar: Calendar
    market: MarketData
    news: News
    orders: PaperBroker
    bus: EventBus
    store: Store
    store_info: StoreInfo
    coordinator: Coordinator
    agent: Agent
    metrics: Metrics
    notifications: NotificationRouter
    live: LiveConfig
    starters: list[Closer] = field(default_factory=list)
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
        for start in container.starters:
            await start()
        await container.bus.start()
        yield container
    finally:
        await container.bus.stop()
        for close in reversed(container.closers):
            await close()


MarketFromStore = Callable[[Store], tuple[MarketData, News]]
"""Builds the market and news ports once the store is open (the live market caches in it)."""


async def build(
    settings: Settings,
    *,
    market: MarketData | MarketFromStore,
    news: News | None = None,
    calendar: Calendar,
    clock: Clock | None = None,
    bus: BusKind | None = None,
    store: StoreKind | None = None,
    stream_prefix: str | None = None,
) -> Container:
    """Wire a run: paper broker, the bus and store of `settings` (or the kinds given), the agent
    and the coordinator. The store is migrated before anything is written.

    `clock`: the wall clock of a live run; by default a fixed clock the runner moves (a
    simulated or replayed day). `market`: the ports, or a function of the store giving both.
    """
    strategy = settings.strategy()
    clock = clock or FixedClock(datetime(1970, 1, 1, tzinfo=UTC))
    closers: list[Closer] = []
    metrics = Metrics()
    event_bus = _bus(settings, bus or settings.bus.kind, stream_prefix, clock, closers, metrics)
    event_store = await open_store(settings, store or settings.store.kind)
    closers.append(event_store.close)
    info = await event_store.migrate()
    log.info("store_ready", backend=info.backend, features=list(info.features), detail=info.detail)
    if callable(market):
        market, news = market(event_store)
    if news is None:
        raise TypeError("build() needs news ports: pass news=, or a market function giving both")
    agent = Agent()
    coordinator = Coordinator(event_store)
    event_bus.subscribe("agent", [BarsClosed.TYPE], agent.on_bars)
    coordinator.attach(event_bus)
    starters: list[Closer] = []
    router = notification_router(settings, starters, closers)
    router.attach(event_bus)
    return Container(
        settings=settings,
        timezone=ZoneInfo(settings.timezone),
        clock=clock,
        calendar=calendar,
        market=market,
        news=news,
        orders=PaperBroker(strategy.costs),
        bus=event_bus,
        store=event_store,
        store_info=info,
        coordinator=coordinator,
        agent=agent,
        metrics=metrics,
        notifications=router,
        live=LiveConfig(settings),
        starters=starters,
        closers=closers,
    )


def notification_router(
    settings: Settings, starters: list[Closer], closers: list[Closer]
) -> NotificationRouter:
    """Notifiers for the webhook secrets that are set, behind one router (none: a no-op)."""
    n = settings.notifications

    def config(max_requests: int, per_secs: float) -> WebhookConfig:
        return WebhookConfig(
            timeout_secs=n.timeout_secs,
            queue_size=n.queue_size,
            max_attempts=n.max_attempts,
            backoff_base_secs=n.backoff_base_secs,
            backoff_max_secs=n.backoff_max_secs,
            max_retry_after_secs=n.max_retry_after_secs,
            drain_timeout_secs=n.drain_timeout_secs,
            rate=RateLimit(max_requests=max_requests, per_secs=per_secs),
        )

    notifiers: list[DiscordNotifier | JsonWebhookNotifier] = []
    if settings.discord_webhook_url is not None:
        notifiers.append(
            DiscordNotifier(
                settings.discord_webhook_url.get_secret_value(),
                config=config(n.discord_max_per_window, n.discord_window_secs),
                username=n.discord_username,
            )
        )
    if settings.webhook_url is not None:
        notifiers.append(
            JsonWebhookNotifier(
                settings.webhook_url.get_secret_value(),
                config=config(n.webhook_max_per_window, n.webhook_window_secs),
            )
        )
    for notifier in notifiers:
        starters.append(notifier.start)
        closers.append(notifier.close)  # after the bus stopped: the daily report still goes out
    return NotificationRouter(
        notifiers,
        kinds=[NotificationKind(k) for k in n.kinds],
        min_error_severity=Severity(n.error_min_severity),
        notify_timeout_secs=n.notify_timeout_secs,
    )


async def open_store(settings: Settings, kind: StoreKind) -> Store:
    """The store of `kind`: in memory, the DuckDB file under data_dir, or PostgreSQL."""
    codec = EventCodec(default_registry())
    if kind == "memory":
        return InMemoryStore(codec)
    if kind == "duckdb":
        path = settings.data_path(settings.store.duckdb_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        return DuckDBStore(path, codec)
    return await TimescaleStore.connect(
        database_url(settings),
        codec,
        schema=settings.store.schema_name,
        compress_after_days=settings.store.compress_after_days,
        bars_retention_days=settings.store.bars_retention_days,
    )


def database_url(settings: Settings) -> str:
    """`store.url` with the `database_password` secret put in (it never sits in config.yaml)."""
    url = urlsplit(settings.store.url)
    secret = settings.database_password
    if secret is None or url.password is not None:
        return settings.store.url
    # Splice the password into the user info as written: no re-encoding, IPv6 brackets kept.
    userinfo, _, hostport = url.netloc.rpartition("@")
    password = quote(secret.get_secret_value(), safe="")
    return urlunsplit(url._replace(netloc=f"{userinfo}:{password}@{hostport}"))


def _bus(
    settings: Settings,
    kind: BusKind,
    prefix: str | None,
    clock: Clock,
    closers: list[Closer],
    metrics: Metrics,
) -> EventBus:
    if kind == "memory":
        return InMemoryEventBus(observer=metrics.observe)
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
    return RedisStreamsEventBus(
        client, EventCodec(default_registry()), streams, clock, observer=metrics.observe
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
        consumer=default_consumer(),
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


async def build_simulation(
    settings: Settings,
    *,
    seed: int | None = None,
    bus: BusKind | None = None,
    store: StoreKind | None = None,
    stream_prefix: str | None = None,
) -> Container:
    """A run on the seeded simulator (the embedded default: no network, no accounts)."""
    calendar = FixedCalendar()
    market = SimulatedMarket(
        seed=settings.simulator.seed if seed is None else seed,
        calendar=calendar,
        universe_size=settings.simulator.universe_size,
    )
    return await build(
        settings,
        market=market,
        news=market,
        calendar=calendar,
        bus=bus,
        store=store,
        stream_prefix=stream_prefix,
    )


async def build_replay(
    settings: Settings, market: ReplayMarketData, *, store: StoreKind = "memory"
) -> Container:
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
    return await build(
        settings, market=market, news=InMemoryNews(), calendar=calendar, bus="memory", store=store
    )
