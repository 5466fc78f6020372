"""`MarketFeed`: live trades in, one `market.bars_closed` event per closed minute out, on the bus.

The trade source (a `FinnhubTradeFeed`) hands each frame's trades to the `MinuteAggregator` (a
`BarAggregator`); every minute it closes becomes a `BarsClosed` event with every symbol's bar of
that minute, its id derived from the trading day and the minute (so a replay or a redelivery
carries the same id).
A publisher task sends the events in batches: whatever closed while the previous publish was in
flight goes in the next one. The buffer is bounded: when it is full the feed stops reading
(back-pressure, counted) rather than dropping. A failed publish is retried until it succeeds or
the feed stops; nothing is dropped without being counted.

Minutes also close by the clock: every `flush_every_secs` the minutes that ended more than
`flush_grace_secs` ago are closed, so a quiet symbol does not hold the minute back. Leave the
timer off (None) when replaying recorded trades faster than real time: trades close minutes then.
Listeners added with `add_trade_listener` get every batch as domain `Trade`s (made only if one
listens), for triggers that need prints rather than bars.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from fin_agent.domain.errors import ConfigError, TransientError
from fin_agent.domain.events import BarsClosed, DomainEvent
from fin_agent.domain.values import Trade
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.trade_feed import (
    AggregatorStats,
    ClosedMinute,
    FeedStats,
    MinuteAggregator,
    Sink,
    TickBatch,
)

log = structlog.get_logger(__name__)

TradeListener = Callable[[Sequence[Trade]], None]


class TradeSource(Protocol):
    """What `MarketFeed` needs of a trade feed (`FinnhubTradeFeed` is one)."""

    @property
    def stats(self) -> FeedStats:
        """The feed's counts and health."""
        ...

    def set_watchlist(self, symbols: Iterable[str]) -> None:
        """Watch exactly these symbols."""
        ...

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Stream trade batches to `sink` until `stop` is set."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFeedConfig:
    """How minutes close and events leave (units in the names)."""

    flush_every_secs: float | None = 1.0
    flush_grace_secs: float = 2.0
    max_pending_events: int = 1_000
    retry_initial_secs: float = 0.2
    retry_max_secs: float = 5.0
    drain_timeout_secs: float = 10.0

    def __post_init__(self) -> None:
        if self.flush_every_secs is not None and self.flush_every_secs <= 0:
            raise ConfigError(
                f"market feed flush_every_secs must be positive (got {self.flush_every_secs}), "
                "or null to close minutes by trades only"
            )
        if self.flush_grace_secs < 0 or self.max_pending_events < 1:
            raise ConfigError(
                f"market feed flush_grace_secs must be >= 0 (got {self.flush_grace_secs}) and "
                f"max_pending_events >= 1 (got {self.max_pending_events})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFeedStats:
    """The feed, the aggregator and the publishing, in one snapshot (for metrics)."""

    feed: FeedStats
    bars: AggregatorStats
    events_published: int
    bars_published: int
    pending_events: int
    publish_failures: int
    backpressure_waits: int
    listener_errors: int
    last_published_at: datetime | None


class MarketFeed:
    """Runs a trade source into a bar aggregator and publishes the closed minutes."""

    def __init__(
        self,
        source: TradeSource,
        bus: EventBus,
        *,
        clock: Clock,
        timezone: str = "America/New_York",
        aggregator: MinuteAggregator,
        config: MarketFeedConfig | None = None,
    ) -> None:
        self.source = source
        self.aggregator = aggregator
        self.config = config or MarketFeedConfig()
        self._bus = bus
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._listeners: list[TradeListener] = []
        self._pending: list[BarsClosed] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()  # nothing pending or in flight
        self._idle.set()
        self._events_published = 0
        self._bars_published = 0
        self._publish_failures = 0
        self._backpressure_waits = 0
        self._listener_errors = 0
        self._last_published_at: datetime | None = None
        self._in_flight = 0

    @property
    def stats(self) -> MarketFeedStats:
        """Counts and health right now."""
        return MarketFeedStats(
            feed=self.source.stats,
            bars=self.aggregator.stats,
            events_published=self._events_published,
            bars_published=self._bars_published,
            pending_events=len(self._pending) + self._in_flight,
            publish_failures=self._publish_failures,
            backpressure_waits=self._backpressure_waits,
            listener_errors=self._listener_errors,
            last_published_at=self._last_published_at,
        )

    def set_watchlist(self, symbols: Iterable[str]) -> None:
        """Watch exactly `symbols` (candidates and open positions)."""
        self.source.set_watchlist(symbols)

    def add_trade_listener(self, listener: TradeListener) -> Callable[[], None]:
        """Call `listener` with each batch of trades (keep it quick); returns its remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def run(self, stop: asyncio.Event) -> None:
        """Stream, aggregate and publish until `stop` is set; then publish what is left."""
        publisher = asyncio.ensure_future(self._publish_loop())
        timer = (
            asyncio.ensure_future(self._flush_loop(stop, self.config.flush_every_secs))
            if self.config.flush_every_secs is not None
            else None
        )
        feed = asyncio.ensure_future(self.source.run(self._on_batch, stop))
        try:
            await asyncio.wait([feed, publisher], return_when=asyncio.FIRST_COMPLETED)
            if publisher.done():  # it only ends by failing: stop the feed, raise its error
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)
                publisher.result()
            await feed
        finally:
            for task in (feed, timer):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if self.config.flush_every_secs is not None:
                self._enqueue(self.aggregator.flush(self._flush_limit()))
            await self._finish(publisher)

    def flush(self, now: datetime | None = None) -> int:
        """Close the minutes that ended by `now` (default: the clock less the grace); how many."""
        closed = self.aggregator.flush(now if now is not None else self._flush_limit())
        self._enqueue(closed)
        return len(closed)

    def close_all(self) -> int:
        """Close every minute with trades, finished or not (the end of a replay); how many."""
        closed = self.aggregator.close_all()
        self._enqueue(closed)
        return len(closed)

    async def wait_published(self, timeout_secs: float = 10.0) -> None:
        """Return once every event closed so far is on the bus (TimeoutError after the timeout)."""
        await asyncio.wait_for(self._idle.wait(), timeout_secs)

    # -- the pipeline -----------------------------------------------------------------------------

    async def _on_batch(self, batch: TickBatch) -> None:
        closed = self.aggregator.add(batch.ticks)
        if self._listeners:
            self._tell_listeners(batch.trades())
        if closed:
            self._enqueue(closed)
            if len(self._pending) >= self.config.max_pending_events:
                self._backpressure_waits += 1
                self._room.clear()
                await self._room.wait()

    def _enqueue(self, closed: Sequence[ClosedMinute]) -> None:
        if not closed:
            return
        zone = self._zone
        for minute in closed:
            day = minute.start.astimezone(zone).date()
            self._pending.append(
                BarsClosed(
                    id=BarsClosed.id_for(f"{day}:{minute.start.isoformat()}"),
                    occurred_at=minute.end,
                    trading_day=day,
                    bars=minute.bars,
                )
            )
        self._idle.clear()
        self._wake.set()

    def _tell_listeners(self, trades: Sequence[Trade]) -> None:
        for listener in list(self._listeners):
            try:
                listener(trades)
            except Exception:  # a listener's bug must not stop the market data
                self._listener_errors += 1
                log.exception("trade_listener_failed", listener=repr(listener))

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                events, self._pending = self._pending, []
                self._in_flight = len(events)
                self._room.set()
                await self._publish(events)
                self._in_flight = 0
            self._idle.set()

    async def _publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish, retrying transient failures with capped backoff until it goes through."""
        delay = self.config.retry_initial_secs
        while True:
            try:
                await self._bus.publish(events)
            except TransientError as exc:
                self._publish_failures += 1
                log.warning(
                    "bars_publish_failed", events=len(events), error=str(exc), retry_in_secs=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_secs)
                continue
            self._events_published += len(events)
            self._bars_published += sum(len(e.bars) for e in events if isinstance(e, BarsClosed))
            self._last_published_at = self._clock.now()
            return

    async def _flush_loop(self, stop: asyncio.Event, every_secs: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_secs)
            if not stop.is_set():
                self.flush()

    def _flush_limit(self) -> datetime:
        return self._clock.now() - timedelta(seconds=self.config.flush_grace_secs)

    async def _finish(self, publisher: asyncio.Future[None]) -> None:
        """Give the publisher `drain_timeout_secs` to send what is left, then stop it."""
        if not publisher.done():
            try:
                await self.wait_published(self.config.drain_timeout_secs)
            except TimeoutError:
                log.error("bars_not_published", events=len(self._pending) + self._in_flight)
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
