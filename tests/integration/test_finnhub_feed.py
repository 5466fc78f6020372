"""FinnhubTradeFeed and MarketFeed against a local Finnhub-protocol server (bench/finnhub_local.py).

100 forced disconnects each followed by a full resubscription, 10k garbage frames without a crash,
backoff that never storms a refusing or flapping server, stale connections replaced, the API key in
no log line, metric or file, and recorded minute bars through the wire, the aggregator and a real
Redis bus coming out exact. Waits are bounded polls on state, never sleeps for time to pass, except
where the point is that nothing happens for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import importlib
import logging
import random
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import structlog
from redis.asyncio import Redis
from structlog.testing import capture_logs

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.finnhub.feed import FeedStats, FinnhubFeedConfig, FinnhubTradeFeed
from fin_agent.adapters.finnhub.feed_decode import FrameDecoder, TradeBatch
from fin_agent.adapters.live.bar_aggregator import BarAggregator
from fin_agent.adapters.memory import FixedClock, InMemoryEventBus
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.app.bootstrap.vendors import bar_aggregator
from fin_agent.app.config.settings import load_settings
from fin_agent.app.live.market_feed import MarketFeed, MarketFeedConfig
from fin_agent.app.observability.logs import configure_logging
from fin_agent.domain.errors import AdapterError, ConfigError, DataError
from fin_agent.domain.events import BarsClosed, DomainEvent
from fin_agent.domain.values import Trade, symbol

API_KEY = "fk-SECRET-TOKEN-777"
ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parents[2] / "bench"
T = 1381152600000  # 2013-10-07 13:30 UTC (09:30 ET)
NOW = datetime(2013, 10, 7, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def local() -> ModuleType:
    """bench/finnhub_local.py, shared with the benchmark: imported with bench/ on sys.path."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("finnhub_local")


@pytest_asyncio.fixture
async def server(local: ModuleType) -> AsyncIterator[Any]:
    async with local.LocalFinnhub(token=API_KEY) as running:
        yield running


def fast(url: str, **overrides: Any) -> FinnhubFeedConfig:
    """Test timings: retries in tens of milliseconds, no stale detection unless asked."""
    settings: dict[str, Any] = {
        "url": url,
        "backoff_initial_secs": 0.01,
        "backoff_max_secs": 0.05,
        "stale_after_secs": None,
        "open_timeout_secs": 2.0,
        "close_timeout_secs": 0.5,
        **overrides,
    }
    return FinnhubFeedConfig(**settings)


class Collector:
    """A sink that keeps every batch."""

    def __init__(self) -> None:
        self.batches: list[TradeBatch] = []

    async def __call__(self, batch: TradeBatch) -> None:
        self.batches.append(batch)

    @property
    def trades(self) -> list[Trade]:
        return [trade for batch in self.batches for trade in batch.trades()]


@contextlib.asynccontextmanager
async def running(
    feed: FinnhubTradeFeed, sink: Callable[[TradeBatch], Awaitable[None]]
) -> AsyncIterator[asyncio.Event]:
    """The feed's `run` in the background; stopped (and awaited) on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(sink, stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def eventually(condition: Callable[[], bool], what: str, timeout_secs: float = 10.0) -> None:
    """Poll `condition` every 5 ms until true; fail after `timeout_secs`."""
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        await asyncio.sleep(0.005)


def subscribed(server: Any, symbols: set[str]) -> Callable[[], bool]:
    """True once exactly one connection is open and it subscribed exactly `symbols`."""
    return lambda: server.subscription_sets() == [frozenset(symbols)]


def trade(local: ModuleType, name: str, price: float, at_ms: int, size: int = 100) -> Any:
    return local.TapeTrade(name, at_ms, price, size, ("1",))


# -- streaming and subscriptions ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_feed_subscribes_the_watchlist_and_streams_frames_as_trade_batches(
    server: Any, local: ModuleType
) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY, clock=FixedClock(NOW))
    feed.set_watchlist(["AIG", "AAPL"])
    sink = Collector()

    async with running(feed, sink):
        await server.wait_for(subscribed(server, {"AIG", "AAPL"}))
        await server.send_trades(
            [
                trade(local, "AIG", 49.18, T, 300),
                trade(local, "AAPL", 187.3, T + 5),
                trade(local, "MSFT", 370.0, T + 6),  # not subscribed: the server keeps it
            ]
        )
        await server.send_ping()
        await eventually(lambda: feed.stats.pings == 1, "the ping arrived")

    assert [len(b) for b in sink.batches] == [2]  # one frame, one batch
    assert sink.trades == [
        Trade(
            symbol=symbol("AIG"),
            price=Decimal("49.18"),
            size=300,
            at=datetime(2013, 10, 7, 13, 30, tzinfo=UTC),
        ),
        Trade(
            symbol=symbol("AAPL"),
            price=Decimal("187.3"),
            size=100,
            at=datetime(2013, 10, 7, 13, 30, 0, 5000, tzinfo=UTC),
        ),
    ]
    stats = feed.stats
    assert (stats.frames, stats.trades, stats.malformed, stats.reconnects) == (2, 2, 0, 0)
    assert stats.last_frame_at is not None
    assert stats.last_frame_at <= NOW
    assert not stats.connected
    assert stats.subscribed == 0


@pytest.mark.asyncio
async def test_set_watchlist_sends_only_the_difference(server: Any) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    feed.set_watchlist(["AIG", "MSFT"])

    async with running(feed, Collector()):
        await server.wait_for(subscribed(server, {"AIG", "MSFT"}))
        feed.set_watchlist(["MSFT", "TSLA"])
        await server.wait_for(subscribed(server, {"MSFT", "TSLA"}))
        feed.set_watchlist(["MSFT", "TSLA"])  # no change, nothing sent

        conn = server.latest
        await asyncio.sleep(0)
        assert conn.received == [
            '{"type": "subscribe", "symbol": "AIG"}',
            '{"type": "subscribe", "symbol": "MSFT"}',
            '{"type": "unsubscribe", "symbol": "AIG"}',
            '{"type": "subscribe", "symbol": "TSLA"}',
        ]
        assert feed.subscribed == {"MSFT", "TSLA"}


@pytest.mark.asyncio
async def test_with_nothing_to_watch_the_feed_holds_no_connection(server: Any) -> None:
    """Finnhub allows one connection per key: an idle feed (no candidates yet, or a day done)
    leaves it free, and going idle is neither a drop nor downtime."""
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)

    async with running(feed, Collector()):
        await asyncio.sleep(0.2)
        assert server.connections == {}
        assert not feed.stats.connected

        feed.set_watchlist(["AIG"])
        await server.wait_for(subscribed(server, {"AIG"}))
        feed.set_watchlist([])
        await server.wait_for(lambda: server.open_connections == [])
        await eventually(lambda: not feed.stats.connected, "the feed to go idle")
        feed.set_watchlist(["MSFT"])
        await server.wait_for(subscribed(server, {"MSFT"}))

        stats = feed.stats
        assert len(server.connections) == 2
        assert (stats.reconnects, stats.disconnects, stats.connect_failures) == (0, 0, 0)
        assert stats.downtime_secs == 0.0


@pytest.mark.asyncio
async def test_a_feed_told_to_connect_when_idle_connects_with_an_empty_watchlist(
    server: Any,
) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url, connect_when_idle=True), API_KEY)

    async with running(feed, Collector()):
        await server.wait_for(lambda: len(server.open_connections) == 1)
        await eventually(lambda: feed.stats.connected, "the idle feed to connect")


@pytest.mark.asyncio
async def test_trades_of_a_symbol_just_unsubscribed_are_ignored_and_counted(
    server: Any, local: ModuleType
) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    feed.set_watchlist(["AIG"])
    sink = Collector()

    async with running(feed, sink):
        await server.wait_for(subscribed(server, {"AIG"}))
        feed.set_watchlist(["MSFT"])
        # in flight before the unsubscribe reached the server
        await server.send_text(local.encode_frame([trade(local, "AIG", 49.0, T)]))
        await server.wait_for(subscribed(server, {"MSFT"}))
        await server.send_trades([trade(local, "MSFT", 370.0, T + 1)])
        await eventually(lambda: feed.stats.trades == 1, "the MSFT trade arrived")

    assert [t.symbol for t in sink.trades] == ["MSFT"]
    assert feed.stats.ignored_trades == 1


def test_watchlist_refuses_bad_tickers_and_more_than_max_symbols() -> None:
    feed = FinnhubTradeFeed(FinnhubFeedConfig(max_symbols=2), API_KEY)

    with pytest.raises(DataError, match="not a ticker symbol"):
        feed.set_watchlist(["AAPL", "BINANCE:BTCUSDT"])
    with pytest.raises(ConfigError, match=r"watchlist of 3 symbols exceeds the feed's max_symbols"):
        feed.set_watchlist(["A", "B", "C"])
    assert feed.watchlist == frozenset()


def test_config_refuses_a_token_in_the_url_and_nonsense_timings() -> None:
    with pytest.raises(ConfigError, match="must not carry the token"):
        FinnhubFeedConfig(url="wss://ws.finnhub.io?token=abc")
    with pytest.raises(ConfigError, match="must be ws:// or wss://"):
        FinnhubFeedConfig(url="https://ws.finnhub.io")
    with pytest.raises(ConfigError, match="backoff_max_secs"):
        FinnhubFeedConfig(backoff_initial_secs=5, backoff_max_secs=1)
    with pytest.raises(ConfigError, match="finnhub_api_key is empty"):
        FinnhubTradeFeed(FinnhubFeedConfig(), "")


# -- drops and reconnects -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_every_one_of_100_forced_disconnects_is_followed_by_a_full_resubscription(
    server: Any, local: ModuleType
) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    wanted = {"AIG", "AAPL", "MSFT", "TSLA"}
    feed.set_watchlist(wanted)
    sink = Collector()

    async def serving(reconnects: int) -> None:
        """Finnhub pings now and then: a connection counts as up once a frame arrives."""
        await server.send_ping()
        await eventually(lambda: feed.stats.reconnects == reconnects, "a frame on the connection")
        await eventually(lambda: feed.stats.pings == reconnects + 1, "the ping read")

    async with running(feed, sink):
        await server.wait_for(subscribed(server, wanted))
        await serving(0)
        for i in range(100):
            before = server.latest.id
            if i % 10 == 3:  # the watchlist changes now and then, right before a drop
                wanted = (wanted - {min(wanted)}) | {f"X{i}"}
                feed.set_watchlist(wanted)
            assert await server.drop_all() == 1
            await server.wait_for(
                lambda before=before, wanted=wanted: (
                    server.latest.id > before and subscribed(server, wanted)()
                ),
                timeout_secs=5,
            )
            conn = server.latest
            assert conn.subscriptions == wanted, f"drop {i + 1}: lost a subscription"
            assert sorted(conn.received) == sorted(
                f'{{"type": "subscribe", "symbol": "{name}"}}' for name in wanted
            ), f"drop {i + 1}: resubscribed more or less than the watchlist"
            await serving(i + 1)
        await server.send_trades([trade(local, name, 10.0, T) for name in sorted(wanted)])
        await eventually(lambda: feed.stats.trades == len(wanted), "trades after the last drop")

    stats = feed.stats
    assert (stats.reconnects, stats.disconnects, stats.connect_failures) == (100, 100, 0)
    assert len(server.connections) == 101
    assert 0 < stats.downtime_secs < 100 * 1.0


@pytest.mark.asyncio
async def test_a_clean_close_by_the_server_is_a_drop_too(server: Any) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    feed.set_watchlist(["AIG"])

    async with running(feed, Collector()):
        await server.wait_for(subscribed(server, {"AIG"}))
        await server.send_ping()
        await eventually(lambda: feed.stats.pings == 1, "the first connection serving")
        assert await server.close_all(code=1001) == 1
        await server.wait_for(
            lambda: len(server.connections) == 2 and subscribed(server, {"AIG"})()
        )
        await server.send_ping()
        await eventually(lambda: feed.stats.pings == 2, "the second connection serving")

    assert (feed.stats.reconnects, feed.stats.disconnects) == (1, 1)


@pytest.mark.asyncio
async def test_backoff_never_storms_a_server_that_refuses_the_key(local: ModuleType) -> None:
    async with local.LocalFinnhub(token="another-key") as refusing:
        config = fast(refusing.ws_url, backoff_initial_secs=0.05, backoff_max_secs=0.4)
        feed = FinnhubTradeFeed(config, API_KEY, rng=random.Random(5))
        feed.set_watchlist(["AIG"])
        with capture_logs() as logs:
            async with running(feed, Collector()):
                await asyncio.sleep(1.5)  # the point: how often it knocks in this time

    # delays 0.025-0.05, 0.05-0.1, 0.1-0.2, then 0.2-0.4 s: at most ~9 attempts in 1.5 s
    assert 4 <= refusing.rejected <= 10
    stats = feed.stats
    assert stats.connect_failures == refusing.rejected
    assert not stats.connected
    assert stats.downtime_secs == pytest.approx(1.5, abs=0.3)
    failed = [line for line in logs if line["event"] == "feed_connect_failed"]
    assert failed
    assert all(line["hint"] == "check finnhub_api_key" for line in failed)
    assert all("401" in line["error"] for line in failed)


@pytest.mark.asyncio
async def test_backoff_keeps_growing_while_connections_drop_right_away(server: Any) -> None:
    config = fast(server.ws_url, backoff_initial_secs=0.05, backoff_max_secs=0.4)
    feed = FinnhubTradeFeed(config, API_KEY, rng=random.Random(5))
    feed.set_watchlist(["AIG"])

    async def flap() -> None:
        while True:
            await server.wait_for(lambda: bool(server.open_connections), timeout_secs=10)
            await server.drop_all()

    async with running(feed, Collector()):
        flapper = asyncio.create_task(flap())
        await asyncio.sleep(1.5)  # the point: how often it reconnects in this time
        flapper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flapper

    assert 4 <= len(server.connections) <= 11  # not reset by a connection that did not last
    # dropped before any frame: refused attempts (as Finnhub drops a second connection on a key
    # in use), not reconnects; the last one may still be open when the feed stops
    stats = feed.stats
    assert (stats.reconnects, stats.disconnects) == (0, 0)
    assert len(server.connections) - 1 <= stats.connect_failures <= len(server.connections)


@pytest.mark.asyncio
async def test_a_second_connection_refused_on_a_key_in_use_is_no_reconnect(
    local: ModuleType,
) -> None:
    async with local.LocalFinnhub(token=API_KEY, one_connection_per_key=True) as server:
        other = FinnhubTradeFeed(fast(server.ws_url), API_KEY)  # another program on the key
        other.set_watchlist(["AIG"])
        config = fast(server.ws_url, backoff_initial_secs=0.05, backoff_max_secs=0.2)
        feed = FinnhubTradeFeed(config, API_KEY, rng=random.Random(3))
        feed.set_watchlist(["AIG"])
        async with running(other, Collector()):
            await server.wait_for(lambda: len(server.open_connections) == 1)
            async with running(feed, Collector()):
                await server.wait_for(lambda: server.in_use_refused >= 3, timeout_secs=5)
                await asyncio.sleep(0.3)
                stats = feed.stats

    assert (stats.reconnects, stats.disconnects) == (0, 0)
    assert stats.connect_failures >= 3
    assert stats.downtime_secs >= 0.3  # down from the first attempt, not a string of short blips


@pytest.mark.asyncio
async def test_a_feed_started_before_the_server_connects_once_it_is_up(
    local: ModuleType,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = FinnhubTradeFeed(fast(f"ws://127.0.0.1:{port}"), API_KEY)
    feed.set_watchlist(["AIG"])

    async with running(feed, Collector()):
        await eventually(lambda: feed.stats.connect_failures >= 2, "refused attempts")
        async with local.LocalFinnhub(token=API_KEY, port=port) as late:
            await late.wait_for(subscribed(late, {"AIG"}))
            stats = feed.stats
            assert stats.connected
            assert stats.reconnects == 0
            assert stats.downtime_secs > 0


@pytest.mark.asyncio
async def test_a_connection_silent_while_the_market_is_open_is_replaced(server: Any) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url, stale_after_secs=0.2), API_KEY)
    feed.set_watchlist(["AIG"])

    async with running(feed, Collector()):
        await server.wait_for(lambda: len(server.connections) >= 3, timeout_secs=5)

    stats = feed.stats
    assert stats.stale_reconnects >= 2
    # each replaced connection was up (only silent); the last was not yet serving at the stop
    assert stats.reconnects == stats.stale_reconnects - 1
    # every silent stretch, from the last frame to its replacement, counts as downtime
    assert stats.downtime_secs >= 0.2 * stats.stale_reconnects


@pytest.mark.asyncio
async def test_pings_keep_a_connection_fresh_and_a_closed_market_needs_none(
    local: ModuleType,
) -> None:
    async with local.LocalFinnhub(token=API_KEY, ping_every_secs=0.05) as pinging:
        fresh = FinnhubTradeFeed(fast(pinging.ws_url, stale_after_secs=0.3), API_KEY)
        fresh.set_watchlist(["AIG"])
        async with running(fresh, Collector()):
            await pinging.wait_for(subscribed(pinging, {"AIG"}))
            await asyncio.sleep(1.0)  # the point: nothing happens for a while
        assert fresh.stats.stale_reconnects == 0
        assert fresh.stats.pings >= 10

    async with local.LocalFinnhub(token=API_KEY) as silent:
        closed = FinnhubTradeFeed(
            fast(silent.ws_url, stale_after_secs=0.2), API_KEY, market_open=lambda: False
        )
        closed.set_watchlist(["AIG"])
        async with running(closed, Collector()):
            await silent.wait_for(subscribed(silent, {"AIG"}))
            await asyncio.sleep(0.8)  # the point: nothing happens for a while
        assert closed.stats.stale_reconnects == 0
        assert len(silent.connections) == 1


# -- malformed frames -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_10k_garbage_frames_are_counted_logged_sparingly_and_never_fatal(
    server: Any, local: ModuleType
) -> None:
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    feed.set_watchlist(["AIG"])
    sink = Collector()
    frames = local.garbage_frames(10_000)
    not_malformed = sum(1 for f in frames if f == '{"type": "news", "data": []}')

    with capture_logs() as logs:
        async with running(feed, sink):
            await server.wait_for(subscribed(server, {"AIG"}))
            for frame in frames:
                await server.send_text(frame)
            await server.send_trades([trade(local, "AIG", 49.1, T)])
            await eventually(lambda: feed.stats.trades == 1, "the good trade after the garbage")

    stats = feed.stats
    assert stats.frames == 10_001
    assert stats.malformed == 10_000 - not_malformed
    assert (stats.reconnects, stats.disconnects) == (0, 0)
    assert [t.price for t in sink.trades] == [Decimal("49.1")]
    warned = [line for line in logs if line["event"] == "feed_malformed_frame"]
    assert 1 <= len(warned) <= 3  # one now and then, with a sample and the running count
    assert warned[0]["reason"]
    assert len(warned[0]["sample"]) <= 200


def test_a_frame_keeps_its_good_trades_and_counts_the_bad_ones() -> None:
    decoder = FrameDecoder()
    good = '{"s": "AIG", "p": 49, "t": 1381152600000, "v": 100.0}'
    frame = (
        '{"type": "trade", "data": ['
        f'{good}, {{"s": "AIG", "p": true, "t": 1, "v": 1}}, {good.replace("49", "49.5")}]}}'
    )

    ticks = decoder.decode(frame, {"AIG"})

    assert ticks == [("AIG", 49.0, T, 100, ()), ("AIG", 49.5, T, 100, ())]
    assert type(ticks[0][1]) is float
    assert type(ticks[0][3]) is int
    assert decoder.problem is not None
    assert decoder.problem.reason == "1 of 3 trades malformed"
    c = decoder.counters
    assert (c.frames, c.trades, c.malformed, c.malformed_trades) == (1, 2, 1, 1)


# -- the API key ----------------------------------------------------------------------------------


class Records(logging.Handler):
    """Keeps the formatted messages of stdlib log records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def websockets_debug_records() -> Iterator[Records]:
    """Everything the websockets library logs for the feed, at DEBUG (its request line too)."""
    logger = logging.getLogger("fin_agent.finnhub.websockets")
    handler = Records()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


async def _leaky_session(local: ModuleType, server: Any) -> FeedStats:
    """Everything that could leak the key: a refused key, connects, a server echoing the key in
    garbage and in an error message, a drop, a stale connection; returns the feed's stats."""
    async with local.LocalFinnhub(token="not-the-key") as refusing:
        refused = FinnhubTradeFeed(fast(refusing.ws_url), API_KEY)
        refused.set_watchlist(["AIG"])
        async with running(refused, Collector()):
            await eventually(lambda: refusing.rejected >= 2, "two refused attempts")
    feed = FinnhubTradeFeed(fast(server.ws_url, stale_after_secs=0.3), API_KEY)
    market = MarketFeed(feed, InMemoryEventBus(), clock=FixedClock(NOW), aggregator=BarAggregator())
    market.set_watchlist(["AIG"])
    stop = asyncio.Event()
    before = len(server.connections)
    task = asyncio.create_task(market.run(stop))
    await server.wait_for(subscribed(server, {"AIG"}))
    await server.send_garbage(3, echo_token=True)
    await eventually(lambda: feed.stats.frames == 3, "the garbage arrived")
    await server.drop_all()
    await server.wait_for(lambda: len(server.connections) >= before + 3, timeout_secs=5)
    stop.set()
    await asyncio.wait_for(task, 10)
    stats = market.stats
    assert stats.feed.server_errors == 1
    assert stats.feed.stale_reconnects >= 1
    return stats.feed


def files_with(folder: Path, text: str) -> list[Path]:
    """The files under `folder` that contain `text`."""
    return [p for p in folder.rglob("*") if p.is_file() and text in p.read_text("latin-1")]


@pytest.mark.asyncio
async def test_the_api_key_appears_in_no_log_line_metric_or_file(
    server: Any,
    local: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with websockets_debug_records() as stdlib, capture_logs() as raw:
        stats = await _leaky_session(local, server)
    configure_logging("DEBUG", "json", secrets=[API_KEY])
    try:
        with websockets_debug_records() as stdlib_rendered:
            await _leaky_session(local, server)
    finally:
        structlog.reset_defaults()
    rendered = capsys.readouterr()

    assert raw
    assert stdlib.lines
    assert rendered.err
    assert not [line for line in raw if API_KEY in repr(line)]
    assert not [line for line in stdlib.lines + stdlib_rendered.lines if API_KEY in line]
    assert API_KEY not in rendered.err
    assert API_KEY not in rendered.out
    assert any("token=**********" in line for line in stdlib.lines)  # the request line, masked
    assert any(line["event"] == "feed_server_error" for line in raw)
    assert API_KEY not in repr(stats)
    assert files_with(tmp_path, API_KEY) == []


# -- MarketFeed: trades to bars to events on the bus ----------------------------------------------

MINUTES = "lean_minute_ext_hours_AAPL_AIG_FOXA_GOOG_NWSA_SHY_TWX.csv.gz"


def lean_bars(folder: Path, symbols: set[str], day: date) -> dict[datetime, list[tuple[Any, ...]]]:
    """The recorded minute bars, by UTC start: (symbol, open, high, low, close, volume)."""
    by_minute: dict[datetime, list[tuple[Any, ...]]] = {}
    with gzip.open(folder / MINUTES, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            start = datetime.fromisoformat(row["datetime"])
            if row["symbol"] in symbols and start.date() == day:
                by_minute.setdefault(start.astimezone(UTC), []).append(
                    (
                        row["symbol"],
                        *(Decimal(row[k]) for k in ("open", "high", "low", "close")),
                        int(row["volume"]),
                    )
                )
    return {start: sorted(bars) for start, bars in sorted(by_minute.items())}


@pytest.mark.asyncio
@pytest.mark.data
async def test_recorded_minute_bars_survive_the_wire_and_the_bus_exactly(
    server: Any, local: ModuleType, redis_url: str, shared_data: Path
) -> None:
    day = date(2014, 6, 6)
    symbols = {"AAPL", "TWX"}
    expected = lean_bars(shared_data, symbols, day)
    tape = local.Tape.lean_minute_bars(shared_data / MINUTES, symbols=symbols, day=day)
    redis = Redis.from_url(redis_url)
    bus = RedisStreamsEventBus(
        redis, EventCodec(default_registry()), StreamsSettings(prefix="t", block_ms=50)
    )
    received: list[BarsClosed] = []

    async def handler(event: DomainEvent) -> None:
        assert isinstance(event, BarsClosed)
        received.append(event)

    bus.subscribe("check", [BarsClosed.TYPE], handler)
    await bus.start()
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    market = MarketFeed(
        feed,
        bus,
        clock=FixedClock(NOW),
        aggregator=BarAggregator(),
        config=MarketFeedConfig(flush_every_secs=None),
    )
    market.set_watchlist(symbols)
    stop = asyncio.Event()
    task = asyncio.create_task(market.run(stop))
    try:
        await server.wait_for(subscribed(server, symbols))
        sent = await server.replay(tape.frames(window_ms=10_000, max_trades=12))
        await eventually(lambda: feed.stats.trades == sent == len(tape), "every trade arrived")
        market.close_all()
        await market.wait_published()
        await bus.drain(10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.stop()
        await redis.aclose()

    assert [e.bars[0].start for e in received] == list(expected)  # one event per minute, in order
    for event in received:
        start = event.bars[0].start
        assert event.id == BarsClosed.id_for(f"{day}:{start.isoformat()}")
        assert event.trading_day == day
        assert event.occurred_at == start + (event.bars[0].end - start)
        got = [(b.symbol, b.open, b.high, b.low, b.close, b.volume) for b in event.bars]
        assert got == expected[start], start
    stats = market.stats
    assert stats.events_published == len(expected)
    assert stats.pending_events == 0
    assert stats.bars_published == sum(len(bars) for bars in expected.values())
    assert stats.bars.late == 0


@pytest.mark.asyncio
async def test_market_feed_closes_quiet_minutes_by_the_clock_and_tells_trade_listeners(
    server: Any, local: ModuleType
) -> None:
    clock = FixedClock(datetime(2013, 10, 7, 13, 30, 30, tzinfo=UTC))
    bus = InMemoryEventBus()
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    market = MarketFeed(
        feed,
        bus,
        clock=clock,
        aggregator=BarAggregator(),
        config=MarketFeedConfig(flush_every_secs=None, flush_grace_secs=2),
    )
    heard: list[Trade] = []
    market.add_trade_listener(heard.extend)

    def failing(trades: Sequence[Trade]) -> None:
        raise ZeroDivisionError("a trade listener that fails")

    market.add_trade_listener(failing)
    market.set_watchlist(["AIG", "MSFT"])
    stop = asyncio.Event()
    task = asyncio.create_task(market.run(stop))
    try:
        await server.wait_for(subscribed(server, {"AIG", "MSFT"}))
        await server.send_trades(
            [trade(local, "AIG", 49.1, T + 1_000), trade(local, "MSFT", 33.2, T + 20_000, 7)]
        )
        await eventually(lambda: len(heard) == 2, "listeners heard both trades")
        clock.set(datetime(2013, 10, 7, 13, 31, 1, tzinfo=UTC))
        assert market.flush() == 0  # within the 2 s grace
        clock.set(datetime(2013, 10, 7, 13, 31, 2, tzinfo=UTC))
        assert market.flush() == 1
        await market.wait_published()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    (event,) = bus.published
    assert isinstance(event, BarsClosed)
    assert [(b.symbol, b.close, b.volume) for b in event.bars] == [
        ("AIG", Decimal("49.1"), 100),
        ("MSFT", Decimal("33.2"), 7),
    ]
    assert market.stats.listener_errors == 1


@pytest.mark.asyncio
async def test_market_feed_retries_a_failing_bus_and_drops_nothing(
    server: Any, local: ModuleType
) -> None:
    class FlakyBus(InMemoryEventBus):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 3

        async def publish(self, events: Sequence[DomainEvent]) -> None:
            if self.failures:
                self.failures -= 1
                raise AdapterError("Redis unreachable (test)")
            await super().publish(events)

    bus = FlakyBus()
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    market = MarketFeed(
        feed,
        bus,
        clock=FixedClock(NOW),
        aggregator=BarAggregator(lateness_secs=0),
        config=MarketFeedConfig(flush_every_secs=None, retry_initial_secs=0.01),
    )
    market.set_watchlist(["AIG"])
    stop = asyncio.Event()
    task = asyncio.create_task(market.run(stop))
    try:
        await server.wait_for(subscribed(server, {"AIG"}))
        for minute in range(5):
            await server.send_trades([trade(local, "AIG", 49.0 + minute, T + minute * 60_000)])
        await eventually(lambda: feed.stats.trades == 5, "five trades")
        await market.wait_published()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    published = [e for e in bus.published if isinstance(e, BarsClosed)]
    assert len(published) == len(bus.published)
    assert [e.bars[0].close for e in published] == [Decimal(c) for c in (49, 50, 51, 52)]
    assert market.stats.publish_failures == 3


@pytest.mark.asyncio
async def test_market_feed_stops_and_raises_when_publishing_fails_for_good(
    server: Any, local: ModuleType
) -> None:
    class BrokenBus(InMemoryEventBus):
        async def publish(self, events: Any) -> None:
            raise DataError("cannot encode the event (test)")

    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    market = MarketFeed(
        feed,
        BrokenBus(),
        clock=FixedClock(NOW),
        aggregator=BarAggregator(lateness_secs=0),
        config=MarketFeedConfig(flush_every_secs=None),
    )
    market.set_watchlist(["AIG"])
    task = asyncio.create_task(market.run(asyncio.Event()))
    await server.wait_for(subscribed(server, {"AIG"}))
    await server.send_trades([trade(local, "AIG", 49.0, T)])
    await server.send_trades([trade(local, "AIG", 49.5, T + 60_000)])

    with pytest.raises(DataError, match="cannot encode the event"):
        await asyncio.wait_for(task, 10)
    await server.wait_for(lambda: not server.open_connections)  # the feed was stopped
    assert market.stats.pending_events == 1


# -- the local server's REST side (for the REST client's tests) -----------------------------------


@pytest.mark.asyncio
async def test_local_rest_answers_canned_json_401_without_the_header_and_429_on_demand(
    server: Any,
) -> None:
    server.rest.set("/quote", {"c": 261.74, "pc": 258.02}, symbol="AAPL")
    headers = {"X-Finnhub-Token": API_KEY}
    async with aiohttp.ClientSession(base_url=server.rest_url + "/") as http:

        async def call(path: str, **params: str) -> tuple[int, Any, str | None]:
            async with http.get(path, params=params, headers=headers) as response:
                return response.status, await response.json(), response.headers.get("Retry-After")

        assert await call("quote", symbol="AAPL") == (200, {"c": 261.74, "pc": 258.02}, None)
        status, body, _ = await call("quote", symbol="ZZZZ")
        assert (status, body["c"], body["pc"]) == (200, 0, 0)  # Finnhub's answer for unknowns
        assert (await call("stock/market-holiday", exchange="US"))[0] == 200
        server.rest.fail_next(2, status=429, retry_after_secs=3)
        assert [(await call("company-news", symbol="AAPL"))[::2] for _ in range(3)] == [
            (429, "3"),
            (429, "3"),
            (200, None),
        ]
        async with http.get("stock/profile2", params={"symbol": "AAPL", "token": API_KEY}) as r:
            assert r.status == 401  # a key in the URL is not accepted, only the header

    calls = server.rest.calls
    assert [c.status for c in calls] == [200, 200, 200, 429, 429, 200, 401]
    assert calls[-1].token_in_query
    assert not any(c.token_in_query for c in calls[:-1])


def out_of_order_frames(local: ModuleType, expected: dict[datetime, list[tuple[Any, ...]]]) -> Any:
    """Each recorded bar as four trades (open at :00.0, low and high in the order that fits the
    close at :15 and :30, close at :59.6), in frames as a consolidated feed sends them: the next
    minute's opening trades arrive before this minute's closing ones, 0.4 s older."""

    def trades(start: datetime, part: int) -> list[Any]:
        at_ms = int(start.timestamp() * 1000)
        out = []
        for name, open_, high, low, close, volume in expected[start]:
            middle = (low, high) if close >= open_ else (high, low)
            prices = (open_, *middle, close)
            sizes = [volume // 4] * 4
            sizes[0] += volume - sum(sizes)
            offsets = (0, 15_000, 30_000, 59_600)
            picks = {0: (0,), 1: (1, 2), 2: (3,)}[part]
            out += [
                local.TapeTrade(name, at_ms + offsets[i], float(prices[i]), sizes[i]) for i in picks
            ]
        return out

    starts = list(expected)
    frames: list[list[Any]] = [trades(starts[0], 0), trades(starts[0], 1)]
    for i, start in enumerate(starts):
        following = starts[i + 1] if i + 1 < len(starts) else None
        if following is not None and (following - start).total_seconds() == 60:
            frames += [trades(following, 0), trades(start, 2), trades(following, 1)]
        else:
            frames.append(trades(start, 2))
            if following is not None:
                frames += [trades(following, 0), trades(following, 1)]
    return frames


@pytest.mark.asyncio
@pytest.mark.data
async def test_trades_out_of_order_across_frames_make_exact_bars_with_the_shipped_lateness(
    server: Any, local: ModuleType, shared_data: Path
) -> None:
    # Issue 18: with feed.lateness_secs 0 a minute closed on the next minute's first trade, and
    # trades 0.4 s older arriving after it left 59 of 120 bars with a wrong volume.
    shipped = load_settings(ROOT / "config.yaml", environ={}, secrets_dir=ROOT / "no-secrets")
    day = date(2014, 6, 6)
    expected = lean_bars(shared_data, {"AAPL", "TWX"}, day)
    frames = out_of_order_frames(local, expected)
    bus = InMemoryEventBus()
    received: list[BarsClosed] = []

    async def handler(event: DomainEvent) -> None:
        assert isinstance(event, BarsClosed)
        received.append(event)

    bus.subscribe("check", [BarsClosed.TYPE], handler)
    await bus.start()
    feed = FinnhubTradeFeed(fast(server.ws_url), API_KEY)
    market = MarketFeed(
        feed,
        bus,
        clock=FixedClock(NOW),
        aggregator=bar_aggregator(shipped),
        config=MarketFeedConfig(flush_every_secs=None),
    )
    market.set_watchlist({"AAPL", "TWX"})
    stop = asyncio.Event()
    task = asyncio.create_task(market.run(stop))
    try:
        await server.wait_for(subscribed(server, {"AAPL", "TWX"}))
        sent = await server.replay(frames)
        total = sum(len(f) for f in frames)
        await eventually(lambda: feed.stats.trades == sent == total, "every trade arrived")
        market.close_all()
        await market.wait_published()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.stop()

    assert shipped.feed.lateness_secs == 2.0
    got = {
        e.bars[0].start: [(b.symbol, b.open, b.high, b.low, b.close, b.volume) for b in e.bars]
        for e in received
    }
    assert len(expected) > 500
    assert got == expected
    assert market.stats.bars.late == 0
