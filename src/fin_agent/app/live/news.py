"""`LiveNews`: the live run's news stream, from `news.start` (04:00 ET) until each session's close.

Each session day it makes a `NewsPublisher` (seeded from the store: a restart publishes nothing
again, and items before the previous close are not the day's), points the stream at the symbols
to follow (the day's candidates first, then the scan universe, at most `news.max_symbols`), runs
it until the close, and waits for the next session's start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from fin_agent.app.container import Container
from fin_agent.app.news.publisher import NewsPublisher
from fin_agent.app.schedule.scheduler import wait_or_stop
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Session, Symbol, symbol
from fin_agent.ports.news import NewsStream

log = structlog.get_logger(__name__)

WATCH_EVERY_SECS = 5.0
IDLE_SECS = 60.0


class LiveNews:
    """Runs a `NewsStream` during each session day and publishes its headlines once each."""

    def __init__(self, container: Container, stream: NewsStream) -> None:
        self._container = container
        self._stream = stream
        self.publisher: NewsPublisher | None = None

    def symbols(self) -> list[Symbol]:
        """What to follow now: the day's candidates first, then the scan universe."""
        settings = self._container.live.current.settings
        day = self._container.agent.day
        wanted: list[Symbol] = list(day.watchlist) if day is not None else []
        for name in (symbol(s) for s in settings.scan.universe):
            if name not in wanted:
                wanted.append(name)
        return wanted[: settings.news.max_symbols]

    def window(self, now: datetime) -> tuple[Session, datetime] | None:
        """Today's session and the stream's start when `now` is between the start and the close."""
        container = self._container
        local = now.astimezone(container.timezone)
        try:
            session = container.calendar.session(local.date())
        except ConfigError:
            return None
        if session is None:
            return None
        start = datetime.combine(local.date(), container.settings.news.start, container.timezone)
        return (session, start) if start <= now < session.close else None

    async def run(self, stop: asyncio.Event) -> None:
        """Stream during every session day until `stop` is set."""
        while not stop.is_set():
            window = self.window(self._container.clock.now())
            if window is None:
                await wait_or_stop(stop, IDLE_SECS)
                continue
            try:
                await self.run_day(window[0], stop)
            except Exception as exc:  # news never ends the agent: wait, then try again
                log.warning("news_stream_failed", error=f"{type(exc).__name__}: {exc}")
                await wait_or_stop(stop, IDLE_SECS)

    async def run_day(self, session: Session, stop: asyncio.Event) -> None:
        """Publish the session's headlines until its close (or `stop`)."""
        container = self._container
        previous = _previous_close(container, session)
        publisher = NewsPublisher(
            bus=container.bus, clock=container.clock, day=session.day, since=previous
        )
        self.publisher = publisher
        known = await publisher.load_seen(container.store)
        log.info("news_stream_started", trading_day=str(session.day), known=known)
        day_stop = asyncio.Event()
        self._stream.set_watchlist(self.symbols())
        watcher = asyncio.create_task(self._watch(session, stop, day_stop))
        try:
            await self._stream.run(publisher.sink, day_stop)
        finally:
            day_stop.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        log.info("news_stream_stopped", trading_day=str(session.day), published=publisher.published)

    async def _watch(self, session: Session, stop: asyncio.Event, day_stop: asyncio.Event) -> None:
        """Follow the day's symbols as they change; end the day at the close or on `stop`."""
        while not stop.is_set() and self._container.clock.now() < session.close:
            self._stream.set_watchlist(self.symbols())
            await wait_or_stop(stop, WATCH_EVERY_SECS)
        day_stop.set()


def _previous_close(container: Container, session: Session) -> datetime | None:
    try:
        previous = container.calendar.previous_session(session.day)
    except ConfigError:
        return None
    return None if previous is None else previous.close.astimezone(UTC)
