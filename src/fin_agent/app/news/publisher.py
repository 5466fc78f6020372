"""`NewsPublisher`: headlines from any news source onto the bus as `news.published`, each once.

Dedupe is by the headline's stable id (`NewsItem.news_id`): an in-process set, seeded from the
store's `news.published` events of the day when a run starts, so a headline met again after a
reconnect, in the next poll or after a restart is not published again. The event id derives from
the news id too, so one that slips through (a crash between publish and store) is the same event:
the store and the consumers dedupe it. Items older than `since` (before the previous close) are
not the day's news and are dropped, counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

import structlog

from fin_agent.domain.events import NewsPublished
from fin_agent.domain.news import NewsItem
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)


class NewsPublisher:
    """Publishes each headline of a trading day once; counts what it dropped and why."""

    def __init__(
        self, *, bus: EventBus, clock: Clock, day: date, since: datetime | None = None
    ) -> None:
        self.day = day
        self.since = since
        self._bus = bus
        self._clock = clock
        self._seen: set[str] = set()
        self.published = 0
        self.duplicates = 0
        self.stale = 0

    @property
    def seen(self) -> frozenset[str]:
        """The news ids published (or found stored) for the day."""
        return frozenset(self._seen)

    async def load_seen(self, store: Store) -> int:
        """Remember the day's headlines already stored (a restart); returns how many."""
        events = await store.events(day=self.day, types=[NewsPublished.TYPE])
        self.remember(e.item.news_id for e in events if isinstance(e, NewsPublished))
        return len(self._seen)

    def remember(self, news_ids: Iterable[str]) -> None:
        """Treat `news_ids` as published already."""
        self._seen.update(news_ids)

    async def sink(self, items: Sequence[NewsItem]) -> None:
        """A stream's sink (`NewsSink`): publish what is new, arrived now."""
        await self.publish(items)

    async def publish(
        self, items: Sequence[NewsItem], at: datetime | None = None
    ) -> list[NewsPublished]:
        """Publish the items not seen before (arrived `at`, default now); returns the events."""
        arrived = (at or self._clock.now()).astimezone(UTC)
        fresh: list[NewsPublished] = []
        batch: set[str] = set()
        for item in items:
            if item.news_id in self._seen or item.news_id in batch:
                self.duplicates += 1
                continue
            if self.since is not None and item.published_at < self.since:
                self.stale += 1
                continue
            batch.add(item.news_id)
            fresh.append(
                NewsPublished(
                    id=NewsPublished.id_for(item.news_id),
                    occurred_at=max(arrived, item.published_at),
                    trading_day=self.day,
                    item=item,
                )
            )
        if fresh:
            await self._bus.publish(fresh)  # raises: nothing is marked seen, the next try sends
            self._seen.update(batch)
            self.published += len(fresh)
            log.info("news_published", trading_day=str(self.day), count=len(fresh))
        return fresh
