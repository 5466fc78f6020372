"""`RecordedDayNews`: a simulated or replayed day's news published at its times, among the bars.

The runner asks `until(t)` before each minute it publishes: the items published before `t` go on
the bus first (the pre-market ones before the scan, arriving from the stream's start), so the day
meets each headline when a live stream would have brought it. A resumed day skips what is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fin_agent.app.news.publisher import NewsPublisher
from fin_agent.domain.news import NewsItem


class RecordedDayNews:
    """The day's items not yet published, oldest first, and the publisher that sends them."""

    def __init__(
        self, publisher: NewsPublisher, items: Sequence[NewsItem], stream_start: datetime
    ) -> None:
        self._publisher = publisher
        self._pending = sorted(items, key=lambda i: (i.published_at, i.news_id))
        self._start = stream_start
        self._next = 0

    @property
    def next_at(self) -> datetime | None:
        """When the next pending item was published; None when all are out."""
        return self._pending[self._next].published_at if self._next < len(self._pending) else None

    @property
    def publisher(self) -> NewsPublisher:
        """The publisher (its counts: published, duplicates)."""
        return self._publisher

    async def until(self, moment: datetime) -> int:
        """Publish the pending items published before `moment`; returns how many went out."""
        due: list[NewsItem] = []
        while self._next < len(self._pending) and self._pending[self._next].published_at < moment:
            due.append(self._pending[self._next])
            self._next += 1
        if not due:
            return 0
        # each arrives at its own time, or at the stream's start for the older ones
        return len(await self._publisher.publish(due, at=self._start))
