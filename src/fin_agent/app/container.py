"""`Container`: what the composition root (`app.bootstrap`) hands the app, typed by ports only.

The app reads its parts from here and never builds an adapter; a capability only some adapters
have (a durable bus's dead letters and counts, a clock a simulated day moves) is a port that is
None when the run has no such adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from fin_agent.app.config.live import LiveConfig
from fin_agent.app.config.settings import Settings
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.day.agent import Agent
from fin_agent.app.day.commands import OperatorDesk
from fin_agent.app.instance import ActiveInstance
from fin_agent.app.observability.metrics import Metrics
from fin_agent.app.observability.notifications import NotificationRouter
from fin_agent.ports.bus_admin import BusStats, DeadLetters
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.clock import Clock, SettableClock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.event_codec import EventEncoder
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News, RecordedNews
from fin_agent.ports.orders import Orders
from fin_agent.ports.store import Store, StoreInfo

DEFAULT_SCAN_TIME = time(9, 0)
_ONE_SECOND = timedelta(seconds=1)
Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """Everything a run needs, built once from settings by `app.bootstrap`.

    `sim_clock` is `clock` when a simulated or replayed day moves it itself, None on a live
    run; `wall_clock` is always the machine's clock. `bus_stats` and `dead_letters` are None on
    an in-memory bus.
    """

    settings: Settings
    timezone: ZoneInfo
    clock: Clock
    sim_clock: SettableClock | None
    wall_clock: Clock
    calendar: Calendar
    market: MarketData
    news: News
    orders: Orders
    bus: EventBus
    bus_stats: BusStats | None
    dead_letters: DeadLetters | None
    codec: EventEncoder
    store: Store
    store_info: StoreInfo
    coordinator: Coordinator
    agent: Agent
    metrics: Metrics
    notifications: NotificationRouter
    live: LiveConfig
    lease: ActiveInstance | None = None
    """The active-instance lease of an agent on Redis (None: one process owns its bus)."""
    operator: OperatorDesk | None = None
    """Operator commands in, to the day in progress (None: a run that takes none)."""
    recorded_news: RecordedNews | None = None
    """A day's news known in advance (the simulator), published at its times; None elsewhere."""
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
