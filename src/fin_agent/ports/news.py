"""The `News` port: company headlines, the catalyst behind a gap; `NewsStream`: the same news
as a stream of items with stable ids, from before the open until the close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import date, datetime
from typing import Protocol

from fin_agent.domain.news import NewsItem
from fin_agent.domain.values import Headline, Symbol


class News(Protocol):
    """A source of company headlines."""

    async def headlines(
        self, symbol: Symbol, since: datetime, until: datetime
    ) -> Sequence[Headline]:
        """Return the headlines about `symbol` published in [since, until), oldest first."""
        ...


NewsSink = Callable[[Sequence[NewsItem]], Awaitable[None]]
"""Where a news stream hands each batch of items as they arrive (duplicates included)."""


class StopSignal(Protocol):
    """When a stream must stop (an `asyncio.Event` is one)."""

    def is_set(self) -> bool:
        """True once stopping."""
        ...

    async def wait(self) -> object:
        """Return once stopping."""
        ...


class NewsStream(Protocol):
    """The streaming side of news: headlines about the watched symbols, and market news, as
    they arrive. A source may hand the same item twice (a reconnect, an overlapping poll):
    the consumer dedupes on `NewsItem.news_id`."""

    def set_watchlist(self, symbols: Collection[Symbol]) -> None:
        """Follow exactly `symbols` from now on (the day's universe, candidates or positions)."""
        ...

    async def run(self, sink: NewsSink, stop: StopSignal) -> None:
        """Stream until `stop` is set, handing every batch of items to `sink`."""
        ...


class RecordedNews(Protocol):
    """A day's news known in advance (the simulator, a replay): what a stream would have brought."""

    async def news_of(self, day: date) -> Sequence[NewsItem]:
        """The news of session `day`, from the previous close until the close, oldest first."""
        ...
