"""The composition root: the only place that builds adapters from settings and wires them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from fin_agent.adapters.memory import (
    FixedCalendar,
    FixedClock,
    InMemoryEventBus,
    InMemoryNews,
    InMemoryStore,
)
from fin_agent.adapters.paper_broker import PaperBroker
from fin_agent.adapters.replay import ReplayMarketData
from fin_agent.adapters.simulator import SimulatedMarket
from fin_agent.app.settings import Settings
from fin_agent.domain.events import DomainEvent
from fin_agent.domain.rules import Strategy
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.event_bus import ALL_EVENTS
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News

DEFAULT_SCAN_TIME = time(9, 0)
REGULAR_CLOSE = time(16, 0)
_ONE_SECOND = timedelta(seconds=1)


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
    bus: InMemoryEventBus
    store: InMemoryStore

    def scan_time(self, day: date) -> time:
        """Time of day of the scan job on `day`, from `schedule.jobs.scan.cron` in exchange time."""
        job = self.settings.schedule.jobs.get("scan")
        cron = job.cron if job is not None else None
        if not cron:
            return DEFAULT_SCAN_TIME
        start = datetime.combine(day, time(0, 0), self.timezone)
        nxt: datetime = croniter(cron, start - _ONE_SECOND).get_next(datetime)
        return nxt.timetz().replace(tzinfo=None) if nxt.date() == day else DEFAULT_SCAN_TIME


def build(settings: Settings, *, market: MarketData, news: News, calendar: Calendar) -> Container:
    """Wire a run around a market source: paper broker, in-process bus, store subscribed to all."""
    bus = InMemoryEventBus()
    store = InMemoryStore()

    async def persist(event: DomainEvent) -> None:
        await store.append([event])

    bus.subscribe("store", [ALL_EVENTS], persist)
    strategy = settings.strategy()
    return Container(
        settings=settings,
        strategy=strategy,
        timezone=ZoneInfo(settings.timezone),
        clock=FixedClock(datetime(1970, 1, 1, tzinfo=UTC)),
        calendar=calendar,
        market=market,
        news=news,
        orders=PaperBroker(strategy.costs),
        bus=bus,
        store=store,
    )


def build_simulation(settings: Settings, *, seed: int | None = None) -> Container:
    """A run on the seeded simulator (the embedded default: no network, no accounts)."""
    calendar = FixedCalendar()
    market = SimulatedMarket(
        seed=settings.simulator.seed if seed is None else seed,
        calendar=calendar,
        universe_size=settings.simulator.universe_size,
    )
    return build(settings, market=market, news=market, calendar=calendar)


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
    return build(settings, market=market, news=InMemoryNews(), calendar=calendar)
