"""Finnhub news against the local Finnhub-protocol server (bench/finnhub_local.py): news frames
among trade frames on the feed's one connection, resubscribed after a forced reconnect whose
repeated items are published once, a restart that publishes nothing again, and the REST poller
through 429s and `minId` pages within the shared rate budget."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.finnhub.feed import FinnhubFeedConfig, FinnhubTradeFeed
from fin_agent.adapters.finnhub.feed_decode import TradeBatch
from fin_agent.adapters.finnhub.news_poll import FinnhubNewsPoller, NewsPollConfig
from fin_agent.adapters.finnhub.rest import FinnhubRest
from fin_agent.adapters.memory import FixedClock, InMemoryEventBus, InMemoryStore
from fin_agent.adapters.vendor_http.rate_budget import FINNHUB_FREE_WINDOWS, RateBudget
from fin_agent.app.news.publisher import NewsPublisher
from fin_agent.domain.events import NewsPublished
from fin_agent.domain.news import NewsItem
from fin_agent.domain.values import symbol

API_KEY = "fk-SECRET-TOKEN-777"
BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="session")
def local() -> ModuleType:
    """bench/finnhub_local.py, shared with the benchmark: imported with bench/ on sys.path."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("finnhub_local")


def fast(url: str) -> FinnhubFeedConfig:
    """Test timings: retries in tens of milliseconds, no stale detection."""
    return FinnhubFeedConfig(
        url=url,
        backoff_initial_secs=0.01,
        backoff_max_secs=0.05,
        stale_after_secs=None,
        open_timeout_secs=2.0,
        close_timeout_secs=0.5,
    )


async def eventually(condition: Callable[[], bool], what: str, timeout_secs: float = 10.0) -> None:
    """Poll `condition` every 5 ms until true; fail after `timeout_secs`."""
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        await asyncio.sleep(0.005)


def trade(local: ModuleType, name: str, price: float, at_ms: int, size: int = 100) -> Any:
    return local.TapeTrade(name, at_ms, price, size, ("1",))


DAY = date(2013, 10, 7)
T = 1381152600000  # 09:30 ET in ms
NOW = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def server(local: ModuleType) -> AsyncIterator[Any]:
    async with local.LocalFinnhub(token=API_KEY) as running:
        yield running


def news(item_id: int, related: str, secs: int = 1381150000) -> dict[str, Any]:
    return {
        "category": "company",
        "datetime": secs + item_id,
        "headline": f"{related} headline {item_id}",
        "id": item_id,
        "image": "",
        "related": related,
        "source": "Wire",
        "summary": "",
        "url": f"https://news.example.com/{item_id}",
    }


@pytest.mark.asyncio
async def test_news_frames_among_trades_are_published_once_across_a_reconnect_and_a_restart(
    server: Any,
    local: ModuleType,
) -> None:
    bus, store = InMemoryEventBus(), InMemoryStore(EventCodec(default_registry()))
    publisher = NewsPublisher(bus=bus, clock=FixedClock(NOW), day=DAY)
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    feed.set_watchlist(["AAPL"])
    feed.set_news_watchlist(["AAPL", "MSFT"])
    feed.set_news_sink(publisher.sink)
    trades: list[TradeBatch] = []

    async def sink(batch: TradeBatch) -> None:
        trades.append(batch)

    def news_subscribed() -> bool:
        conn = server.latest
        return conn is not None and conn.open and conn.news_subscriptions == {"AAPL", "MSFT"}

    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(sink, stop))
    try:
        await eventually(news_subscribed, "subscribe-news for AAPL and MSFT")
        await eventually(lambda: server.subscription_sets() == [frozenset({"AAPL"})], "trades")
        await server.send_trades([trade(local, "AAPL", 187.3, T)])
        assert await server.send_news([news(1, "AAPL"), news(2, "MSFT"), news(3, "TSLA")]) == 2
        await server.send_trades([trade(local, "AAPL", 187.4, T + 1000)])
        await eventually(lambda: len(trades) == 2 and publisher.published == 2, "both kinds")
        await server.drop_all()  # a forced reconnect: the server sends recent items again
        await eventually(lambda: len(server.connections) == 2, "a second connection")
        await eventually(news_subscribed, "subscribe-news again after the reconnect")
        await server.send_ping()  # a connection counts as up from its first frame
        await eventually(lambda: feed.stats.reconnects == 1, "the reconnect")
        assert await server.send_news([news(1, "AAPL"), news(2, "MSFT"), news(4, "AAPL")]) == 3
        await eventually(lambda: publisher.duplicates == 2, "the repeats counted")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    ids = [e.item.news_id for e in bus.published if isinstance(e, NewsPublished)]
    assert ids == ["finnhub:1", "finnhub:2", "finnhub:4"]
    assert feed.stats.reconnects == 1
    assert [t.symbol for b in trades for t in b.trades()] == ["AAPL", "AAPL"]

    await store.write(bus.published)  # a restart: the new process reads back what is stored
    again = NewsPublisher(bus=bus, clock=FixedClock(NOW), day=DAY)
    await again.load_seen(store)
    repeated = [e.item for e in bus.published if isinstance(e, NewsPublished)]
    assert await again.publish(repeated) == []
    assert again.duplicates == 3


@pytest.mark.asyncio
async def test_the_poller_rides_out_429s_and_pages_market_news_by_min_id(server: Any) -> None:
    server.rest.set("/company-news", [news(10, "AAPL"), news(11, "AAPL")], symbol="AAPL")
    server.rest.set("/news", [news(20, ""), news(21, "")])
    budget = RateBudget(FINNHUB_FREE_WINDOWS)
    rest = FinnhubRest(server.rest_url, API_KEY, budget)
    got: list[NewsItem] = []

    async def sink(items: Sequence[NewsItem]) -> None:
        got.extend(items)

    poller = FinnhubNewsPoller(rest, FixedClock(NOW), NewsPollConfig(symbols_per_round=1))
    poller.set_watchlist([symbol("AAPL")])
    try:
        server.rest.fail_next(1, status=429, retry_after_secs=0)
        await poller.poll_once(sink)
        await poller.poll_once(sink)
    finally:
        await rest.close()
    assert [i.news_id for i in got][:4] == ["finnhub:20", "finnhub:21", "finnhub:10", "finnhub:11"]
    pages = [c for c in server.rest.calls_to("/news") if c.status == 200]
    assert len(pages) == 2
    assert budget.stats.acquired >= 5  # 429 retried: every call went through the shared budget
    assert budget.stats.rate_limited == 1
    assert poller.failures == 0
