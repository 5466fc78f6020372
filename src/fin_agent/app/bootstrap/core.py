"""`build`: the parts every run shares, wired from settings: the bus, the store (migrated), the
paper broker, the agent, the coordinator and the notifications, in one `Container` of ports.

The modes build on it: `simulation` (the seeded simulator), `replay` (recorded files, and the
audit of a stored day) and `live` (Finnhub and Yahoo on the exchange calendar).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.system_clock import ShiftedClock, SystemClock
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.app.bootstrap.broker import build_orders
from fin_agent.app.bootstrap.bus import BusKind, bus_admin, event_bus, lease
from fin_agent.app.bootstrap.notifications import notification_router
from fin_agent.app.bootstrap.store import StoreKind, open_store
from fin_agent.app.config.live import LiveConfig
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Closer, Container
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.day.agent import GROUP as AGENT_GROUP
from fin_agent.app.day.agent import NEWS_GROUP as AGENT_NEWS_GROUP
from fin_agent.app.day.agent import Agent
from fin_agent.app.day.commands import OperatorDesk
from fin_agent.app.observability.metrics import Metrics
from fin_agent.domain.events import BarsClosed, NewsPublished
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.clock import Clock, SettableClock
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News, RecordedNews
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)

MarketFromStore = Callable[[Store], tuple[MarketData, News]]
"""Builds the market and news ports once the store is open (the live market caches in it)."""


async def build(
    settings: Settings,
    *,
    market: MarketData | MarketFromStore,
    news: News | None = None,
    recorded_news: RecordedNews | None = None,
    calendar: Calendar,
    clock: Clock | None = None,
    bus: BusKind | None = None,
    store: StoreKind | None = None,
    stream_prefix: str | None = None,
    delete_streams: bool = False,
    alpaca_budget: RateBudget | None = None,
    keep_published: bool = True,
) -> Container:
    """Wire a run: paper broker, the bus and store of `settings` (or the kinds given), the agent
    and the coordinator. The store is migrated before anything is written.

    `clock`: the wall clock of a live run; by default a fixed clock the runner moves (a
    simulated or replayed day). `market`: the ports, or a function of the store giving both.
    `delete_streams`: a Redis bus deletes its streams when the container closes (a throwaway
    demo's prefix). `alpaca_budget`: the Alpaca budget the broker shares with Alpaca's market data.
    `keep_published`: a memory bus keeps every event it carried (off for backtests: the store
    has them, and a long backtest would hold every day in memory).
    """
    strategy = settings.strategy()
    clock = clock or FixedClock(datetime(1970, 1, 1, tzinfo=UTC))
    sim_clock: SettableClock | None = clock if isinstance(clock, FixedClock) else None
    closers: list[Closer] = []
    metrics = Metrics()
    codec = EventCodec(default_registry())  # one per run: its plans are compiled once
    the_bus = event_bus(
        settings,
        bus or settings.bus.kind,
        stream_prefix,
        clock,
        closers,
        metrics,
        keep_published=keep_published,
        codec=codec,
    )
    event_store = await open_store(settings, store or settings.store.kind, codec=codec)
    closers.append(event_store.close)
    info = await event_store.migrate()
    log.info("store_ready", backend=info.backend, features=list(info.features), detail=info.detail)
    if callable(market):
        market, news = market(event_store)
    if news is None:
        raise TypeError("build() needs news ports: pass news=, or a market function giving both")
    agent = Agent()
    coordinator = Coordinator(
        event_store, clock=clock, outage_tolerance_secs=settings.store.outage_tolerance_secs
    )
    the_bus.subscribe(AGENT_GROUP, [BarsClosed.TYPE], agent.on_bars)
    desk = OperatorDesk(
        agent=agent,
        bus=the_bus,
        store=event_store,
        clock=clock,
        timezone=ZoneInfo(settings.timezone),
    )
    desk.attach(the_bus)
    the_bus.subscribe(AGENT_NEWS_GROUP, [NewsPublished.TYPE], agent.on_news)
    coordinator.attach(the_bus)
    starters: list[Closer] = []
    router = notification_router(settings, starters, closers)
    router.attach(the_bus)
    if delete_streams and isinstance(the_bus, RedisStreamsEventBus):
        closers.append(the_bus.delete_streams)  # after the consumers stop
    bus_stats, dead_letters = bus_admin(the_bus)
    orders = build_orders(
        settings,
        strategy.costs,
        bus=the_bus,
        clock=clock,
        starters=starters,
        closers=closers,
        budget=alpaca_budget,
    )
    return Container(
        settings=settings,
        timezone=ZoneInfo(settings.timezone),
        clock=clock,
        sim_clock=sim_clock,
        wall_clock=wall_clock(),
        calendar=calendar,
        market=market,
        news=news,
        recorded_news=recorded_news,
        orders=orders,
        bus=the_bus,
        bus_stats=bus_stats,
        dead_letters=dead_letters,
        codec=codec,
        store=event_store,
        store_info=info,
        coordinator=coordinator,
        agent=agent,
        metrics=metrics,
        notifications=router,
        live=LiveConfig(settings),
        lease=lease(settings, the_bus),
        operator=desk,
        starters=starters,
        closers=closers,
    )


def wall_clock(start_at: datetime | None = None) -> Clock:
    """The machine's clock (aware UTC), or, with `start_at`, one that starts there and runs at
    the wall clock's speed (`fin-agent run --start-at`)."""
    return SystemClock() if start_at is None else ShiftedClock(start_at)


def exchange_calendar(settings: Settings) -> Calendar:
    """The exchange calendar of `schedule.calendar`, between its configured bounds."""
    # imported here: exchange_calendars brings pandas (about 1.5 s), which only live runs need,
    # and a restarted simulated run must be consuming again within seconds
    from fin_agent.adapters.exchange_calendar import ExchangeCalendar

    schedule = settings.schedule
    return ExchangeCalendar(
        schedule.calendar, start=schedule.calendar_start, end=schedule.calendar_end
    )
