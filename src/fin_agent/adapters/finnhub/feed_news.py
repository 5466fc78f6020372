"""`NewsChannel`: the news side of `FinnhubTradeFeed`'s one connection (`subscribe-news`).

It keeps the server's news subscriptions equal to the news watchlist on every connection and hands
each `news` frame's items, decoded, to the sink. Finnhub streams news only on plans that include
it; on others the poller (`adapters.finnhub.news_poll`) covers the same symbols over REST.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Protocol

import structlog

from fin_agent.adapters.finnhub.news_decode import decode_news
from fin_agent.domain.values import Symbol
from fin_agent.ports.news import NewsSink, StopSignal

log = structlog.get_logger(__name__)

Send = Callable[[str], Awaitable[None]]


class NewsChannel:
    """The news watchlist, what the current connection subscribed of it, and the sink."""

    def __init__(self, host: str) -> None:
        self.watched: frozenset[Symbol] = frozenset()
        self.subscribed: set[Symbol] = set()
        self.sink: NewsSink | None = None
        self.items = 0  # items handed to the sink
        self.bad_items = 0
        self._host = host

    async def sync(self, send: Send) -> None:
        """Subscribe the watched symbols the connection lacks and unsubscribe the others."""
        for name in sorted(self.subscribed - self.watched):
            await send(json.dumps({"type": "unsubscribe-news", "symbol": name}))
            self.subscribed.discard(name)
        for name in sorted(self.watched - self.subscribed):
            await send(json.dumps({"type": "subscribe-news", "symbol": name}))
            self.subscribed.add(name)

    async def hand(self, data: list[object]) -> None:
        """Decode one `news` frame's items and give the good ones to the sink."""
        decoded = decode_news(data)
        if decoded.bad:
            self.bad_items += decoded.bad
            log.warning("feed_bad_news_items", host=self._host, bad=decoded.bad)
        if decoded.items and self.sink is not None:
            await self.sink(decoded.items)
            self.items += len(decoded.items)


class FinnhubWebSocketNews:
    """The `NewsStream` of Finnhub's WebSocket news: it rides the trade feed's connection (run by
    the market feed), so `run` only points the feed's news at the sink until `stop`."""

    def __init__(self, feed: NewsFeed) -> None:
        self._feed = feed

    def set_watchlist(self, symbols: Collection[Symbol]) -> None:
        """`subscribe-news` exactly `symbols` on the feed's connection."""
        self._feed.set_news_watchlist(symbols)

    async def run(self, sink: NewsSink, stop: StopSignal) -> None:
        """Hand the feed's news frames to `sink` until `stop`, then unsubscribe them."""
        self._feed.set_news_sink(sink)
        try:
            await stop.wait()
        finally:
            self._feed.set_news_sink(None)
            self._feed.set_news_watchlist(())


class NewsFeed(Protocol):
    """The news side of the trade feed (`FinnhubTradeFeed`)."""

    def set_news_watchlist(self, symbols: Iterable[str]) -> None:
        """Follow the news of exactly `symbols`."""
        ...

    def set_news_sink(self, sink: NewsSink | None) -> None:
        """Where news items go."""
        ...
