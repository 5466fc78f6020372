"""`FinnhubTradeFeed`: Finnhub's trade stream over one WebSocket, kept alive through every drop.

It subscribes to a watchlist and keeps the server's subscriptions equal to it (`set_watchlist`
sends only the difference; a new connection gets all of it), decodes each frame into a
`TradeBatch` for the sink, and reconnects after any drop with jittered exponential backoff: the
delay doubles with each quick failure up to a cap and starts over once a connection has stayed up
for a while, so a flapping server is never stormed. A connection silent for `stale_after_secs`
while the market is open is closed and replaced. A malformed frame is counted and logged (at most
once per `malformed_log_every_secs`, with a sample), never fatal.

A connection counts as up from its first frame (a trade or a ping), or once it has lasted
`healthy_after_secs`: one the server closes before either (Finnhub accepts a second connection on
a key in use, then drops it) is a refused attempt, not a reconnect, and the outage goes on.
Downtime runs from the last frame received before a drop to the first frame after it.

The API key goes in the URL (`?token=`), as Finnhub requires for WebSockets, so the URL is never
logged: log lines name the host only, exception texts are masked, and the `websockets` library
logs through a masking adapter (its debug lines would show the request line).

News rides the same connection (Finnhub allows one per key): `set_news_watchlist` keeps the
server's `subscribe-news` subscriptions equal to it, and each `news` frame's items go to the
news sink (`set_news_sink`) as `NewsItem`s; the connection stays up while either list has symbols.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from fin_agent.adapters.finnhub.feed_config import FeedStats, FinnhubFeedConfig
from fin_agent.adapters.finnhub.feed_connection import connect_once, wait_or_stop
from fin_agent.adapters.finnhub.feed_decode import FrameDecoder, TradeBatch
from fin_agent.adapters.finnhub.feed_news import NewsChannel
from fin_agent.adapters.finnhub.feed_secrets import MaskingLogger, mask_secret, url_with_token
from fin_agent.adapters.retrying import equal_jitter_backoff
from fin_agent.adapters.system_clock import SystemClock
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Symbol, symbol
from fin_agent.ports.clock import Clock
from fin_agent.ports.news import NewsSink

log = structlog.get_logger(__name__)

__all__ = ["FeedStats", "FinnhubFeedConfig", "FinnhubTradeFeed", "Sink", "TradeBatch"]

Sink = Callable[[TradeBatch], Awaitable[None]]


class FinnhubTradeFeed:
    """Streams Finnhub trades of the watchlist to a sink, reconnecting and resubscribing."""

    def __init__(
        self,
        config: FinnhubFeedConfig,
        api_key: str,
        *,
        clock: Clock | None = None,
        market_open: Callable[[], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("finnhub_api_key is empty: set it to the key of your Finnhub account")
        self.config = config
        self._url = url_with_token(config.url, api_key)
        self._secret = api_key
        self._host = config.host
        self._clock = clock or SystemClock()
        self._market_open = market_open or _always
        self._backoff = equal_jitter_backoff(
            initial_secs=config.backoff_initial_secs,
            max_secs=config.backoff_max_secs,
            factor=config.backoff_factor,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
        )
        self._ws_logger = MaskingLogger(logging.getLogger("fin_agent.finnhub.websockets"), api_key)
        self._decoder = FrameDecoder()
        self._watched: frozenset[Symbol] = frozenset()
        self._subscribed: set[Symbol] = set()
        self.news = NewsChannel(self._host)
        self._changed = asyncio.Event()
        self._watching = asyncio.Event()  # set while the watchlist has symbols
        self._emptied = asyncio.Event()  # set while it has none
        self._emptied.set()
        self._idling = False  # the connection is being closed because nothing is watched
        self._from_idle = False  # the next connection follows an idle spell, not a drop
        self._connected = False
        self._ever_connected = False
        self._proven = False  # the current connection has shown it serves (a frame, or its age)
        self._closed_by_us = False  # the watchdog closed it: it was up, only silent
        self._connected_at = 0.0
        self._running = False
        self._reconnects = 0
        self._connect_failures = 0
        self._disconnects = 0
        self._stale = 0
        self._downtime = 0.0
        self._down_since: float | None = None
        self._last_frame: float | None = None
        self._malformed_logged_at = -1e9
        self._malformed_unlogged = 0
        self._in_sink = False

    # -- public surface ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The server's host: safe to log."""
        return self._host

    @property
    def watchlist(self) -> frozenset[Symbol]:
        """The symbols the feed wants (the server has them once a connection is up)."""
        return self._watched

    @property
    def subscribed(self) -> frozenset[Symbol]:
        """The symbols subscribed on the current connection (empty while down)."""
        return frozenset(self._subscribed) if self._connected else frozenset()

    @property
    def stats(self) -> FeedStats:
        """Counts and health right now."""
        now = time.perf_counter()
        c = self._decoder.counters
        downtime = self._downtime + (now - self._down_since if self._down_since is not None else 0)
        last = self._last_frame
        return FeedStats(
            connected=self._connected,
            reconnects=self._reconnects,
            connect_failures=self._connect_failures,
            disconnects=self._disconnects,
            stale_reconnects=self._stale,
            downtime_secs=downtime,
            frames=c.frames,
            trades=c.trades,
            malformed=c.malformed,
            malformed_trades=c.malformed_trades,
            ignored_trades=c.ignored_trades,
            pings=c.pings,
            server_errors=c.server_errors,
            subscribed=len(self._subscribed) if self._connected else 0,
            watchlist=len(self._watched),
            last_frame_at=None
            if last is None
            else self._clock.now() - timedelta(seconds=now - last),
        )

    def set_watchlist(self, symbols: Iterable[str]) -> None:
        """Watch exactly `symbols`: the connection subscribes the new ones, unsubscribes the rest.

        Raises `DataError` for a malformed ticker, `ConfigError` beyond `max_symbols`.
        """
        wanted = self._checked(symbols)
        if wanted != self._watched:
            self._watched = wanted
            self._changed.set()
            self._update_idle()

    def set_news_watchlist(self, symbols: Iterable[str]) -> None:
        """Follow the news of exactly `symbols` (`subscribe-news`; a plan with news access)."""
        wanted = self._checked(symbols)
        if wanted != self.news.watched:
            self.news.watched = wanted
            self._changed.set()
            self._update_idle()

    def set_news_sink(self, sink: NewsSink | None) -> None:
        """Hand the items of every `news` frame to `sink` (None: count and drop them)."""
        self.news.sink = sink

    def _checked(self, symbols: Iterable[str]) -> frozenset[Symbol]:
        wanted = frozenset(symbol(s) for s in symbols)
        if len(wanted) > self.config.max_symbols:
            raise ConfigError(
                f"watchlist of {len(wanted)} symbols exceeds the feed's max_symbols "
                f"({self.config.max_symbols}, Finnhub's free plan allows 50): watch fewer symbols "
                "or raise feed.max_symbols in config.yaml if your plan allows more"
            )
        return wanted

    def _update_idle(self) -> None:
        busy = bool(self._watched or self.news.watched)
        (self._watching if busy else self._emptied).set()
        (self._emptied if busy else self._watching).clear()

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Stream until `stop` is set: connect, subscribe, hand each batch to `sink`, reconnect."""
        if self._running:
            raise RuntimeError("FinnhubTradeFeed.run is already running: one connection per key")
        self._running = True
        failures = 0
        try:
            while not stop.is_set():
                idle = not (self._watched or self.news.watched)
                if idle and not self.config.connect_when_idle:
                    if await self._until_watching(stop):
                        break
                    failures = 0
                attempt_at = time.perf_counter()
                log.debug("feed_connecting", host=self._host, attempt=failures + 1)
                ws = await connect_once(
                    self._url, self.config, stop, logger=self._ws_logger, secret=self._secret
                )
                if ws is None:
                    if stop.is_set():
                        break
                    failures += 1
                    self._connect_failures += 1
                    if self._down_since is None:
                        self._down_since = attempt_at
                    if await wait_or_stop(stop, self._delay(failures)):
                        break
                    continue
                connected_at = self._mark_up()
                try:
                    await self._serve(ws, sink, stop)
                finally:
                    self._mark_down(stopping=stop.is_set() or self._idling)
                if self._idling:  # closed for want of symbols: not a drop, no backoff
                    self._idling, self._from_idle = False, True
                    continue
                if time.perf_counter() - connected_at >= self.config.healthy_after_secs:
                    failures = 0
                failures += 1
                if stop.is_set():
                    break
                if await wait_or_stop(stop, self._delay(failures)):
                    break
        finally:
            if self._down_since is not None:
                self._downtime += time.perf_counter() - self._down_since
                self._down_since = None
            self._running = False
            log.info("feed_stopped", host=self._host, reconnects=self._reconnects)

    # -- connection -------------------------------------------------------------------------------

    def _mark_up(self) -> float:
        now = time.perf_counter()
        self._connected = True
        self._proven = self._closed_by_us = False
        self._connected_at = self._last_frame = now
        log.info("feed_connected", host=self._host, symbols=len(self._watched))
        return now

    def _prove(self, at: float) -> None:
        """The connection serves (since `at`): the outage before it ends, a reconnect counts."""
        self._proven = True
        outage = None
        if self._down_since is not None:
            outage = max(0.0, at - self._down_since)
            self._downtime += outage
            self._down_since = None
        if self._ever_connected and not self._from_idle:
            self._reconnects += 1
        self._from_idle = False
        self._ever_connected = True
        log.info(
            "feed_serving",
            host=self._host,
            reconnects=self._reconnects,
            outage_secs=None if outage is None else round(outage, 3),
        )

    def _mark_down(self, *, stopping: bool) -> None:
        self._connected = False
        self._subscribed = set()
        self.news.subscribed = set()
        if not self._proven and not stopping:
            lasted = time.perf_counter() - self._connected_at
            if not self._closed_by_us and lasted < self.config.healthy_after_secs:
                self._connect_failures += 1
                if self._down_since is None:
                    self._down_since = self._connected_at
                log.warning(
                    "feed_connection_refused",
                    host=self._host,
                    after_secs=round(lasted, 3),
                    detail="closed by the server before any frame: is the key in use elsewhere?",
                )
                return
            self._prove(self._connected_at)  # it was up, only silent
        if not stopping:
            self._disconnects += 1
            # Down since the last frame: a connection that went silent before it was found out
            # (the stale watchdog) was no use for that whole time.
            self._down_since = self._last_frame or time.perf_counter()

    async def _serve(self, ws: ClientConnection, sink: Sink, stop: asyncio.Event) -> None:
        """Subscribe, then receive until the connection ends or `stop` is set."""
        self._subscribed = set()
        self.news.subscribed = set()
        self._changed.set()
        helpers = [
            asyncio.ensure_future(self._sync_subscriptions(ws)),
            asyncio.ensure_future(self._close_on(stop, ws)),
        ]
        if self.config.stale_after_secs is not None:
            helpers.append(asyncio.ensure_future(self._watch(ws, self.config.stale_after_secs)))
        if not self.config.connect_when_idle:
            helpers.append(asyncio.ensure_future(self._close_when_idle(ws)))
        try:
            await self._receive(ws, sink, stop)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await ws.close()

    async def _receive(self, ws: ClientConnection, sink: Sink, stop: asyncio.Event) -> None:
        decoder = self._decoder
        decode = decoder.decode
        recv = ws.recv
        perf = time.perf_counter
        try:
            while True:
                message = await recv()
                now = perf()
                self._last_frame = now
                ticks = decode(message, self._watched)
                if not self._proven and decoder.server_error is None:
                    self._prove(now)
                if decoder.problem is not None:
                    self._log_problem()
                if decoder.server_error is not None:
                    self._log_server_error()
                if decoder.news is not None:
                    self._in_sink = True
                    await self.news.hand(decoder.news)
                    self._in_sink = False
                    decoder.news = None
                if ticks:
                    self._in_sink = True  # a sink applying back-pressure is not a stale feed
                    await sink(TradeBatch(ticks, now))
                    self._in_sink = False
        except ConnectionClosed as exc:
            self._in_sink = False
            if stop.is_set():
                log.info("feed_closed", host=self._host)
                return
            if self._idling:
                log.info("feed_idle", host=self._host, detail="nothing to watch: disconnected")
                return
            log.warning(
                "feed_disconnected",
                host=self._host,
                code=ws.close_code,
                reason=self._mask(ws.close_reason or ""),
                error=self._mask(exc),
            )

    async def _sync_subscriptions(self, ws: ClientConnection) -> None:
        """Make the server's subscriptions equal the watchlist, again after every change."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self.news.sync(ws.send)
            wanted = self._watched
            removed = sorted(self._subscribed - wanted)
            added = sorted(wanted - self._subscribed)
            for name in removed:
                await ws.send(json.dumps({"type": "unsubscribe", "symbol": name}))
                self._subscribed.discard(name)
            for name in added:
                await ws.send(json.dumps({"type": "subscribe", "symbol": name}))
                self._subscribed.add(name)
            if added or removed:
                log.info(
                    "feed_subscriptions",
                    host=self._host,
                    subscribed=len(self._subscribed),
                    added=added,
                    removed=removed,
                )

    async def _until_watching(self, stop: asyncio.Event) -> bool:
        """Wait, disconnected, until there is a symbol to watch; True when stopping instead."""
        watching = asyncio.ensure_future(self._watching.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watching, stopping):
                task.cancel()
            await asyncio.gather(watching, stopping, return_exceptions=True)
        return stop.is_set()

    async def _close_when_idle(self, ws: ClientConnection) -> None:
        """Close the connection once nothing is watched: Finnhub allows one per key."""
        await self._emptied.wait()
        self._idling = True
        await ws.close(1000, "nothing to watch")

    async def _close_on(self, stop: asyncio.Event, ws: ClientConnection) -> None:
        await stop.wait()
        await ws.close(1000, "client stopping")

    async def _watch(self, ws: ClientConnection, limit_secs: float) -> None:
        """Close a connection silent for `limit_secs` while the market is open."""
        step = min(1.0, limit_secs / 4)
        while True:
            await asyncio.sleep(step)
            silent = time.perf_counter() - (self._last_frame or 0.0)
            if silent >= limit_secs and not self._in_sink and self._market_open():
                self._stale += 1
                self._closed_by_us = True
                log.warning("feed_stale", host=self._host, silent_secs=round(silent, 1))
                await ws.close(4000, "no frame while the market is open")
                return

    def _delay(self, failures: int) -> float:
        """Exponential in the failures in a row, capped, with equal jitter (half to all of it)."""
        delay = self._backoff(failures)
        log.info(
            "feed_retry_scheduled", host=self._host, in_secs=round(delay, 3), failures=failures
        )
        return delay

    def _log_problem(self) -> None:
        problem = self._decoder.problem
        self._decoder.problem = None
        now = time.perf_counter()
        if problem is None:
            return
        if now - self._malformed_logged_at < self.config.malformed_log_every_secs:
            self._malformed_unlogged += 1
            return
        log.warning(
            "feed_malformed_frame",
            host=self._host,
            reason=problem.reason,
            sample=self._mask(problem.sample),
            malformed_total=self._decoder.counters.malformed,
            not_logged_since_last=self._malformed_unlogged,
        )
        self._malformed_logged_at = now
        self._malformed_unlogged = 0

    def _log_server_error(self) -> None:
        message = self._decoder.server_error or ""
        self._decoder.server_error = None
        log.warning("feed_server_error", host=self._host, message=self._mask(message))

    def _mask(self, value: object) -> str:
        return mask_secret(str(value), self._secret)


def _always() -> bool:
    return True
