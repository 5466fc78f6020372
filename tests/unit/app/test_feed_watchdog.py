"""The feed watchdog: an outage during a session raises `feed.down` once, readiness fails while it
lasts, its end is announced; outside a session, or with nothing to watch, nothing is raised."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.finnhub.feed_config import FeedStats
from fin_agent.adapters.memory import FixedClock, InMemoryEventBus
from fin_agent.app.config.settings import Settings
from fin_agent.app.live.agent import LiveAgent
from fin_agent.app.live.runner import FeedWatchdog
from fin_agent.domain.events import ErrorRaised, Severity

pytestmark = pytest.mark.asyncio
NY = ZoneInfo("America/New_York")
UP = FeedStats(
    connected=True, reconnects=0, connect_failures=0, disconnects=0, stale_reconnects=0,
    downtime_secs=0.0, frames=0, trades=0, malformed=0, malformed_trades=0, ignored_trades=0,
    pings=0, server_errors=0, subscribed=3, watchlist=3, last_frame_at=None,
)  # fmt: skip


def ny(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, second, tzinfo=NY)


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(ny(10, 0))
        self.bus = InMemoryEventBus()
        self.feed = SimpleNamespace(stats=UP)
        settings = Settings.model_validate({"feed": {"down_alert_secs": 30}})
        container = SimpleNamespace(
            settings=settings,
            bus=self.bus,
            clock=self.clock,
            calendar=ExchangeCalendar("XNYS", start=date(2026, 1, 1), end=date(2026, 12, 31)),
            timezone=NY,
        )
        self.watchdog = FeedWatchdog(
            cast(LiveAgent, SimpleNamespace(container=container, trades=self.feed))
        )

    def set(self, **changes: Any) -> None:
        self.feed.stats = replace(UP, **changes)

    async def at(self, when: datetime) -> None:
        self.clock.set(when)
        await self.watchdog.look(when)

    def errors(self) -> list[ErrorRaised]:
        return [e for e in self.bus.published if isinstance(e, ErrorRaised)]


async def test_an_outage_longer_than_the_alert_raises_once_and_its_end_is_said() -> None:
    world = World()
    await world.at(ny(10, 0))
    world.set(connected=False)
    await world.at(ny(10, 0, 1))
    await world.at(ny(10, 0, 30))
    assert world.errors() == []
    assert await world.watchdog.check() is None

    await world.at(ny(10, 0, 32))
    await world.at(ny(10, 1, 0))
    [down] = world.errors()
    assert (down.code, down.severity, down.source) == ("feed.down", Severity.ERROR, "feed")
    assert "3 symbols unwatched" in down.message
    assert "disconnected for 59s" in (await world.watchdog.check() or "")

    world.set(connected=True)
    await world.at(ny(10, 2, 0))
    assert [e.code for e in world.errors()] == ["feed.down", "feed.recovered"]
    assert "back after 119s" in world.errors()[-1].message
    assert await world.watchdog.check() is None


async def test_no_alert_outside_the_session_or_with_nothing_to_watch() -> None:
    world = World()
    world.set(connected=False)
    await world.at(ny(17, 0))
    await world.at(ny(17, 5))  # after the close
    assert world.errors() == []

    quiet = World()
    quiet.set(connected=False, watchlist=0, subscribed=0)
    await quiet.at(ny(10, 0))
    await quiet.at(ny(10, 5))
    assert quiet.errors() == []
    assert await quiet.watchdog.check() is None
    assert quiet.watchdog.down_for(ny(10, 5)) is None
    assert world.watchdog.down_for(ny(17, 5)) == timedelta(minutes=5)
