"""A local Finnhub: its trade WebSocket and its REST API on 127.0.0.1, for tests and benchmarks.

Two ways to use it:
- in process (tests): `async with LocalFinnhub(token=...) as server:` then drive it with methods
  (`replay`, `send_trades`, `send_garbage`, `drop_all`, `rest.fail_next`, ...) and read its state
  (`connections`, `subscription_sets()`, `rest.calls`); `wait_for(predicate)` waits on state.
- as a process (benchmarks, so the server does not share the client's core):
  `python bench/finnhub_local.py [--port 0] [--token T]` prints one JSON line with its URLs and
  serves until SIGINT/SIGTERM; `/_control/...` drives it over HTTP (see `_control_routes`).
Tests import it as bench/finnhub_local.py (with bench/ on sys.path) or from here.

WebSocket, as `wss://ws.finnhub.io?token=KEY`: `ws://HOST:PORT/?token=KEY`, HTTP 401 without the
token. `{"type":"subscribe","symbol":S}` / `unsubscribe` change the connection's subscriptions;
trades go out as `{"type":"trade","data":[{"s","p","t","v","c"}, ...]}`, several per frame, only
of symbols the connection subscribed; `{"type":"ping"}` every `ping_every_secs` and on demand.
With `one_connection_per_key`, a second connection on a key in use is accepted and closed at
once (as Finnhub drops it), counted in `in_use_refused`.
`subscribe-news` / `unsubscribe-news` change its news subscriptions; `send_news` sends
`{"type":"news","data":[{category, datetime, headline, id, image, related, source, summary,
url}]}` frames to the connections subscribed to an item's `related` symbol.

REST, under `http://HOST:PORT/api/v1`: `/quote`, `/company-news`, `/stock/market-status`,
`/stock/market-holiday`, `/stock/profile2`; the key must come in the `X-Finnhub-Token` header
(401 otherwise; a `token=` in the query is recorded, not accepted, to catch keys in URLs); like
Finnhub it also answers finnhub-python's doubled slash (`/api/v1//quote`). Bodies
are canned: `rest.set(path, body, symbol=None)` (per symbol or for all), with Finnhub's answers
for unknown symbols by default. `rest.fail_next(n, status=429, retry_after_secs=1)` answers the
next n calls with that status; `rest.fail_for(secs, ...)` does it for a time window. Every call is
in `rest.calls`. With `rest_limits` (Finnhub's free plan: `((60, 60.0), (30, 1.0))`) it counts
calls by arrival, as Finnhub does, and answers one past any window with 429 (`rest.limited`).

Recorded data (../shared/data): `Tape.lean_ticks()` replays the AIG trade prints (their `c` is the
Lean/AlgoSeek condition flag mask in hex, e.g. "1" regular, "20000020" ISO and trade-through
exempt; not Finnhub codes); `Tape.lean_minute_bars()` turns each minute bar into four trades
(open, then low and high in the order that fits the close, then close; the volume split over them)
that aggregate back to exactly that bar.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gzip
import itertools
import json
import random
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from aiohttp import WSMsgType, web

TOKEN_HEADER = "X-Finnhub-Token"  # noqa: S105 - a header name
DATA_DIR = Path(__file__).resolve().parents[5] / "shared" / "data"  # ../shared/data of the repo
TICKS_FILE = "lean_tick_trades_AIG_2013-10-07_to_11.parquet"
MINUTES_FILE = "lean_minute_ext_hours_AAPL_AIG_FOXA_GOOG_NWSA_SHY_TWX.csv.gz"
DAY_MS = 86_400_000
MINUTE_MS = 60_000


# -- recorded trades ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TapeTrade:
    """One trade to send: symbol, time (ms since the epoch, UTC), price, size, condition codes."""

    symbol: str
    at_ms: int
    price: float
    size: int
    conditions: tuple[str, ...] = ()

    def wire(self) -> dict[str, Any]:
        """The trade as Finnhub writes it in a frame's `data`."""
        return {
            "s": self.symbol,
            "p": self.price,
            "t": self.at_ms,
            "v": self.size,
            "c": list(self.conditions),
        }


T = TypeVar("T")


def _present(value: T | None, column: str) -> T:
    """A tape column's value, which the recorded file always has."""
    if value is None:
        raise ValueError(f"{TICKS_FILE}: a trade without a {column}")
    return value


def encode_frame(trades: Sequence[TapeTrade]) -> str:
    """A Finnhub trade frame of `trades`."""
    return json.dumps({"data": [t.wire() for t in trades], "type": "trade"}, separators=(",", ":"))


class Tape:
    """Trades in time order (same-millisecond trades keep their recorded order)."""

    def __init__(self, trades: Iterable[TapeTrade]) -> None:
        self.trades = sorted(trades, key=lambda t: t.at_ms)

    def __len__(self) -> int:
        return len(self.trades)

    @property
    def symbols(self) -> list[str]:
        """The symbols on the tape, sorted."""
        return sorted({t.symbol for t in self.trades})

    @classmethod
    def lean_ticks(
        cls, path: Path | None = None, *, day: date | None = None, as_symbol: str | None = None
    ) -> Tape:
        """The Lean AIG trade prints (all days, or the US/Eastern `day`), optionally renamed."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(path or DATA_DIR / TICKS_FILE)
        if day is not None:
            local_days = pc.local_timestamp(table["datetime"]).cast(pa.date32())
            table = table.filter(pc.equal(local_days, pa.scalar(day, pa.date32())))
        stamps = table["datetime"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
        columns = zip(
            table["symbol"].to_pylist(),
            stamps,
            table["price"].to_pylist(),
            table["size"].to_pylist(),
            table["condition"].to_pylist(),
            strict=True,
        )
        return cls(
            TapeTrade(
                as_symbol or _present(name, "symbol"),
                _present(at_ms, "datetime"),
                float(_present(price, "price")),
                int(_present(size, "size")),
                (code,) if code else (),
            )
            for name, at_ms, price, size, code in columns
        )

    @classmethod
    def lean_minute_bars(
        cls,
        path: Path | None = None,
        *,
        symbols: Iterable[str] | None = None,
        day: date | None = None,
        align_to: date | None = None,
    ) -> Tape:
        """Four trades per Lean minute bar (see the module docstring).

        `align_to`: move each symbol's k-th recorded day to `align_to + k days` (same time of day),
        so symbols recorded in different years trade side by side.
        """
        wanted = set(symbols) if symbols is not None else None
        rows: list[tuple[str, datetime, float, float, float, float, int]] = []
        with gzip.open(path or DATA_DIR / MINUTES_FILE, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                if wanted is not None and row["symbol"] not in wanted:
                    continue
                start = datetime.fromisoformat(row["datetime"])
                if day is not None and start.date() != day:
                    continue
                rows.append(
                    (
                        row["symbol"],
                        start,
                        float(row["open"]),
                        float(row["high"]),
                        float(row["low"]),
                        float(row["close"]),
                        int(float(row["volume"])),
                    )
                )
        shift_ms: dict[tuple[str, date], int] = {}
        if align_to is not None:
            days: dict[str, list[date]] = {}
            for name, start, *_ in rows:
                if start.date() not in days.setdefault(name, []):
                    days[name].append(start.date())
            for name, seen in days.items():
                for k, recorded in enumerate(sorted(seen)):
                    shift_ms[(name, recorded)] = (
                        align_to + timedelta(days=k) - recorded
                    ).days * DAY_MS
        trades: list[TapeTrade] = []
        for name, start, open_, high, low, close, volume in rows:
            at = int(start.astimezone(UTC).timestamp() * 1000) + shift_ms.get(
                (name, start.date()), 0
            )
            middle = (low, high) if close >= open_ else (high, low)
            prices = (open_, *middle, close)
            sizes = [volume // 4] * 4
            sizes[0] += volume - sum(sizes)
            trades += [
                TapeTrade(name, at + 15_000 * i, price, size, ("1",))
                for i, (price, size) in enumerate(zip(prices, sizes, strict=True))
            ]
        return cls(trades)

    def shifted(self, ms: int) -> Tape:
        """The same trades `ms` milliseconds later."""
        return Tape(
            TapeTrade(t.symbol, t.at_ms + ms, t.price, t.size, t.conditions) for t in self.trades
        )

    def repeated(self, passes: int, gap_days: int = 7) -> Tape:
        """`passes` copies back to back, each `gap_days` after the previous one's first day."""
        if not self.trades:
            return self
        span_days = (self.trades[-1].at_ms - self.trades[0].at_ms) // DAY_MS + gap_days
        return Tape(
            itertools.chain.from_iterable(
                self.shifted(p * span_days * DAY_MS).trades for p in range(passes)
            )
        )

    def frames(self, *, window_ms: int = 100, max_trades: int = 50) -> list[list[TapeTrade]]:
        """Group trades into frames: those within `window_ms` of a frame's first, at most
        `max_trades` each (Finnhub batches what it has when it sends)."""
        frames: list[list[TapeTrade]] = []
        current: list[TapeTrade] = []
        for trade in self.trades:
            if current and (
                trade.at_ms - current[0].at_ms >= window_ms or len(current) >= max_trades
            ):
                frames.append(current)
                current = []
            current.append(trade)
        if current:
            frames.append(current)
        return frames

    def minute_frames(self) -> list[list[TapeTrade]]:
        """One frame per minute with trades: every trade of that minute."""
        frames: dict[int, list[TapeTrade]] = {}
        for trade in self.trades:
            frames.setdefault(trade.at_ms // MINUTE_MS, []).append(trade)
        return [frames[m] for m in sorted(frames)]


def bar_trades(
    symbol: str, start: datetime, prices: tuple[float, float, float, float], volume: int
) -> list[TapeTrade]:
    """Four trades 15 s apart that aggregate back to exactly one 1-minute bar (`prices` is its
    open, high, low, close): the open, then the low and the high in the order that fits the
    close, then the close; the volume split over them."""
    open_, high, low, close = prices
    at = int(start.astimezone(UTC).timestamp() * 1000)
    middle = (low, high) if close >= open_ else (high, low)
    sizes = [volume // 4] * 4
    sizes[0] += volume - sum(sizes)
    return [
        TapeTrade(symbol, at + 15_000 * i, price, size, ("1",))
        for i, (price, size) in enumerate(zip((open_, *middle, close), sizes, strict=True))
    ]


# -- garbage --------------------------------------------------------------------------------------

_T = 1381152600000  # 2013-10-07 13:30 UTC


def _bad(fields: str) -> str:
    return '{"type": "trade", "data": [{' + fields + "}]}"


_GARBAGE: tuple[str, ...] = (
    "not json {",
    "",
    "[]",
    "null",
    "42",
    '"a string"',
    '{"data": []}',
    '{"type": 5}',
    '{"type": "trade"}',
    '{"type": "trade", "data": {}}',
    '{"type": "trade", "data": "AIG"}',
    '{"type": "trade", "data": [null, 5, "x", []]}',
    _bad('"s": "AIG"'),
    _bad(f'"s": "AIG", "p": "49.1", "t": {_T}, "v": 1'),
    _bad(f'"s": "AIG", "p": -1, "t": {_T}, "v": 100'),
    _bad(f'"s": "AIG", "p": 0, "t": {_T}, "v": 100'),
    _bad(f'"s": "AIG", "p": NaN, "t": {_T}, "v": 100'),
    _bad(f'"s": "AIG", "p": Infinity, "t": {_T}, "v": 100'),
    _bad(f'"s": "AIG", "p": 1e400, "t": {_T}, "v": 100'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}.5, "v": 100'),
    _bad('"s": "AIG", "p": 49.1, "t": 99999999999999999999, "v": 1'),
    _bad('"s": "AIG", "p": 49.1, "t": -5, "v": 1'),
    _bad('"s": "AIG", "p": 49.1, "t": true, "v": 1'),
    _bad(f'"s": 7, "p": 49.1, "t": {_T}, "v": 100'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": -5'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": 1.5'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": "100"'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": 1, "c": "1"'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": 1, "c": [{{}}]'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": 1, "c": [1]'),
    _bad(f'"s": "AIG", "p": 49.1, "t": {_T}, "v": 100')[:-2],
    "[" * 100_000,
    '{"type": "trade", "data": [' + "[" * 50_000 + "]" * 50_000 + "]}",
    "\ufeff{}",
    '{"type": "news", "data": []}',
)


def garbage_frames(count: int, seed: int = 7, *, binary_share: float = 0.1) -> list[str | bytes]:
    """`count` malformed frames: bad JSON, wrong shapes, bad fields, random bytes (seeded)."""
    rng = random.Random(seed)
    frames: list[str | bytes] = []
    for i in range(count):
        if rng.random() < binary_share:
            frames.append(rng.randbytes(rng.randint(1, 64)))
        else:
            frames.append(_GARBAGE[i % len(_GARBAGE)])
    return frames


# -- the server -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Connection:
    """One WebSocket client, as the server sees it."""

    id: int
    ws: web.WebSocketResponse
    request: web.Request
    token: str
    subscriptions: set[str] = field(default_factory=set)
    news_subscriptions: set[str] = field(default_factory=set)  # `subscribe-news`
    received: list[str] = field(default_factory=list)
    open: bool = True
    frames_sent: int = 0
    trades_sent: int = 0
    sent_log: list[tuple[int, float]] = field(default_factory=list)  # (first trade t, perf)
    autoplayed: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """JSON-ready summary (no token)."""
        return {
            "id": self.id,
            "open": self.open,
            "subscriptions": sorted(self.subscriptions),
            "news_subscriptions": sorted(self.news_subscriptions),
            "frames_sent": self.frames_sent,
            "trades_sent": self.trades_sent,
        }


@dataclass(frozen=True, slots=True)
class RestCall:
    """One REST request as received."""

    path: str
    query: dict[str, str]
    authorized: bool
    token_in_query: bool
    status: int
    at: float


@dataclass(slots=True)
class _Failure:
    status: int
    retry_after_secs: float | None
    remaining: int | None = None  # calls; None: until `until`
    until: float | None = None  # loop time


class RestState:
    """Canned REST answers, failure switches and the calls log of a `LocalFinnhub`."""

    DEFAULTS: ClassVar[dict[str, Any]] = {  # what Finnhub answers for a symbol it does not know
        "/quote": {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0},
        "/company-news": [],
        "/news": [],  # `?category=general&minId=N`: only the items with an id above N
        "/stock/market-status": {
            "exchange": "US",
            "holiday": None,
            "isOpen": False,
            "session": "closed",
            "t": 0,
            "timezone": "America/New_York",
        },
        "/stock/market-holiday": {"data": [], "exchange": "US", "timezone": "America/New_York"},
        "/stock/profile2": {},
    }

    def __init__(
        self, clock: Callable[[], float], limits: Sequence[tuple[int, float]] = ()
    ) -> None:
        self._clock = clock
        self._bodies: dict[tuple[str, str | None], Any] = {}
        self._failures: list[_Failure] = []
        self.calls: list[RestCall] = []
        # (max calls, per secs) counted by arrival, as Finnhub does: a call past one is a 429.
        self.limits = tuple(limits)
        self.limited = 0
        self._arrivals: list[float] = []

    def _over_limit(self, now: float) -> bool:
        """Count an authorized call's arrival; True when a window already held its maximum."""
        over = any(
            sum(1 for t in self._arrivals if t > now - per_secs) >= max_calls
            for max_calls, per_secs in self.limits
        )
        self._arrivals.append(now)
        if self.limits:
            longest = max(per_secs for _, per_secs in self.limits)
            self._arrivals = [t for t in self._arrivals if t > now - longest]
        return over

    def set(self, path: str, body: Any, symbol: str | None = None) -> None:
        """Answer `path` (e.g. "/quote") with `body`, for `symbol` or (None) for every symbol."""
        if path not in self.DEFAULTS:
            raise ValueError(f"unknown path {path!r}: use one of {sorted(self.DEFAULTS)}")
        self._bodies[(path, symbol)] = body

    def fail_next(
        self, count: int, *, status: int = 429, retry_after_secs: float | None = 1.0
    ) -> None:
        """Answer the next `count` authorized calls with `status` (and Retry-After if given)."""
        self._failures.append(_Failure(status, retry_after_secs, remaining=count))

    def fail_for(
        self, secs: float, *, status: int = 429, retry_after_secs: float | None = 1.0
    ) -> None:
        """Answer every authorized call with `status` for the next `secs` seconds."""
        self._failures.append(_Failure(status, retry_after_secs, until=self._clock() + secs))

    def clear_failures(self) -> None:
        """Answer normally again."""
        self._failures.clear()

    def calls_to(self, path: str) -> list[RestCall]:
        """The calls made to `path`."""
        return [c for c in self.calls if c.path == path]

    def _failure(self) -> _Failure | None:
        now = self._clock()
        for failure in self._failures:
            if failure.remaining is not None and failure.remaining > 0:
                failure.remaining -= 1
                return failure
            if failure.until is not None and now < failure.until:
                return failure
        return None

    def answer(
        self, path: str, query: dict[str, str], token: str | None, expected: str
    ) -> web.Response:
        """The aiohttp response for one call (records it)."""
        authorized = token == expected
        status, body, headers = 200, None, {}
        if not authorized:
            status, body = 401, {"error": "Invalid API key"}
        elif path not in self.DEFAULTS:
            status, body = 404, {"error": "Not found"}
        elif self._over_limit(self._clock()):
            self.limited += 1
            status = 429
            body = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
            headers["Retry-After"] = "1"
        elif (failure := self._failure()) is not None:
            status = failure.status
            body = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
            if failure.retry_after_secs is not None:
                headers["Retry-After"] = f"{failure.retry_after_secs:g}"
        elif path in ("/quote", "/company-news", "/stock/profile2") and not query.get("symbol"):
            status, body = 422, {"error": "Wrong symbol"}
        else:
            symbol = query.get("symbol")
            body = self._bodies.get((path, symbol), self._bodies.get((path, None)))
            if body is None:
                body = self.DEFAULTS[path]
            if path == "/news" and query.get("minId", "0").isdigit():
                floor = int(query.get("minId", "0"))
                page: Any = [i for i in body if isinstance(i, dict) and int(i["id"]) > floor]
                body = page
        self.calls.append(
            RestCall(path, query, authorized, "token" in query, status, self._clock())
        )
        return web.json_response(body, status=status, headers=headers)


class LocalFinnhub:
    """The local Finnhub server (see the module docstring)."""

    def __init__(
        self,
        *,
        token: str = "local-token",  # noqa: S107 - a test key
        host: str = "127.0.0.1",
        port: int = 0,
        ping_every_secs: float | None = None,
        one_connection_per_key: bool = False,
        clock: Callable[[], float] = time.monotonic,
        rest_limits: Sequence[tuple[int, float]] = (),
    ) -> None:
        self.token = token
        self.one_connection_per_key = one_connection_per_key
        self.in_use_refused = 0
        self.host = host
        self.port = port
        self.ping_every_secs = ping_every_secs
        self.connections: dict[int, Connection] = {}
        self.rejected = 0
        self.rest = RestState(clock, rest_limits)
        self.autoplay: AutoPlay | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle

    async def start(self) -> None:
        """Listen on host:port (port 0: a free one, then `self.port`)."""
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/", self._websocket)
        for path in RestState.DEFAULTS:
            app.router.add_get("/api/v1" + path, self._rest)
            app.router.add_get("/api/v1/" + path, self._rest)  # finnhub-python: /api/v1//quote
        _control_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in self.open_connections:
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalFinnhub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        """The feed URL without the token (the client adds `?token=`)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The REST base URL, like https://finnhub.io/api/v1."""
        return f"http://{self.host}:{self.port}/api/v1"

    # -- state

    @property
    def open_connections(self) -> list[Connection]:
        """Connections still open, oldest first."""
        return [c for c in self.connections.values() if c.open]

    @property
    def latest(self) -> Connection | None:
        """The most recent connection (open or not)."""
        return self.connections[max(self.connections)] if self.connections else None

    def subscription_sets(self) -> list[frozenset[str]]:
        """Each open connection's subscriptions, oldest connection first."""
        return [frozenset(c.subscriptions) for c in self.open_connections]

    async def wait_for(self, predicate: Callable[[], bool], timeout_secs: float = 5.0) -> None:
        """Return once `predicate()` holds (checked on every state change); TimeoutError after."""
        if self._changed is None:
            raise RuntimeError("the local Finnhub server is not started: start() it first")
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout_secs)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    # -- sending

    async def send_text(self, text: str | bytes, conns: Iterable[Connection] | None = None) -> int:
        """Send one raw frame to `conns` (default: every open connection); how many got it."""
        sent = 0
        for conn in list(conns if conns is not None else self.open_connections):
            if conn.open and await _send(conn, text):
                sent += 1
        return sent

    async def send_trades(self, trades: Sequence[TapeTrade]) -> int:
        """One frame per open connection with the trades of its subscriptions; trades sent."""
        total = 0
        for conn in self.open_connections:
            mine = [t for t in trades if t.symbol in conn.subscriptions]
            if mine and await _send(conn, encode_frame(mine)):
                conn.frames_sent += 1
                conn.trades_sent += len(mine)
                total += len(mine)
        return total

    async def send_news(self, items: Sequence[dict[str, Any]]) -> int:
        """One `{"type":"news","data":[...]}` frame per open connection with the items whose
        `related` symbols it subscribed with `subscribe-news`; items sent."""
        total = 0
        for conn in self.open_connections:
            mine = [
                i for i in items
                if set(str(i.get("related", "")).split(",")) & conn.news_subscriptions
            ]  # fmt: skip
            frame = json.dumps({"data": mine, "type": "news"}, separators=(",", ":"))
            if mine and await _send(conn, frame):
                conn.frames_sent += 1
                total += len(mine)
        return total

    async def send_ping(self) -> int:
        """`{"type":"ping"}` to every open connection."""
        return await self.send_text('{"type":"ping"}')

    async def send_garbage(self, count: int, *, seed: int = 7, echo_token: bool = False) -> int:
        """`count` malformed frames to every open connection (`echo_token`: some carry the key)."""
        frames = garbage_frames(count, seed)
        if echo_token:
            frames[: min(2, count)] = [
                json.dumps({"type": "trade", "data": f"token={self.token}"}),
                json.dumps({"type": "error", "msg": f"Invalid token {self.token}"}),
            ][: min(2, count)]
        sent = 0
        for frame in frames:
            sent += await self.send_text(frame)
        return sent

    async def replay(
        self,
        frames: Sequence[Sequence[TapeTrade]],
        *,
        frames_per_s: float | None = None,
        speed: float | None = None,
    ) -> int:
        """Send `frames` to the subscribed connections: as fast as possible, at `frames_per_s`,
        or at `speed` times the recorded pace; the trades sent."""
        total = 0
        started = time.perf_counter()
        first_ms = frames[0][0].at_ms if frames and frames[0] else 0
        for i, frame in enumerate(frames):
            due = None
            if frames_per_s is not None:
                due = started + i / frames_per_s
            elif speed is not None and frame:
                due = started + (frame[0].at_ms - first_ms) / 1000 / speed
            if due is not None and (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            total += await self.send_trades(frame)
            if i % 64 == 63:
                await asyncio.sleep(0)  # let clients' messages (subscribe, close) in
        return total

    def start_replay(self, frames: Sequence[Sequence[TapeTrade]], **pace: Any) -> asyncio.Task[int]:
        """`replay` in the background; stopped with the server."""
        task = asyncio.get_running_loop().create_task(self.replay(frames, **pace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drop_all(self) -> int:
        """Cut every open connection without a close frame, as a network drop does."""
        dropped = 0
        for conn in self.open_connections:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
                dropped += 1
        return dropped

    async def close_all(self, code: int = 1001, message: str = "going away") -> int:
        """Close every open connection cleanly, as a server restart does."""
        closed = 0
        for conn in self.open_connections:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code, message=message.encode())
                closed += 1
        return closed

    # -- handlers

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        if token != self.token:
            self.rejected += 1
            await self._notify()
            return web.json_response({"error": "Invalid API key"}, status=401)
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        if self.one_connection_per_key and any(c.token == token for c in self.open_connections):
            self.in_use_refused += 1
            await ws.close(code=1008, message=b"key in use")
            await self._notify()
            return ws
        conn = Connection(next(self._ids), ws, request, token)
        self.connections[conn.id] = conn
        if self.ping_every_secs is not None:
            conn.tasks.append(asyncio.create_task(self._pings(conn, self.ping_every_secs)))
        await self._notify()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                conn.received.append(message.data)
                self._apply(conn, message.data)
                await self._notify()
        finally:
            conn.open = False
            for task in conn.tasks:
                task.cancel()
            await asyncio.gather(*conn.tasks, return_exceptions=True)
            await self._notify()
        return ws

    def _apply(self, conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
            kind, name = message["type"], message["symbol"]
        except (ValueError, KeyError, TypeError):
            return
        if kind == "subscribe" and isinstance(name, str):
            conn.subscriptions.add(name)
            if self.autoplay is not None and not conn.autoplayed:
                conn.autoplayed = True
                conn.tasks.append(asyncio.create_task(self.autoplay.play(conn)))
        elif kind == "unsubscribe" and isinstance(name, str):
            conn.subscriptions.discard(name)
        elif kind == "subscribe-news" and isinstance(name, str):
            conn.news_subscriptions.add(name)
        elif kind == "unsubscribe-news" and isinstance(name, str):
            conn.news_subscriptions.discard(name)

    async def _pings(self, conn: Connection, every_secs: float) -> None:
        while conn.open:
            await asyncio.sleep(every_secs)
            await _send(conn, '{"type":"ping"}')

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/api/v1").replace("//", "/")
        response = self.rest.answer(
            path, dict(request.query), request.headers.get(TOKEN_HEADER), self.token
        )
        await self._notify()
        return response


async def _send(conn: Connection, text: str | bytes) -> bool:
    try:
        if isinstance(text, bytes):
            await conn.ws.send_bytes(text)
        else:
            await conn.ws.send_str(text)
    except (ConnectionError, RuntimeError):
        return False
    return True


@dataclass(slots=True)
class AutoPlay:
    """For a server in its own process: play pre-encoded frames to each connection as soon as it
    subscribes (to anything), recording when each frame went out.

    Paced (`frames_per_s`): one `send_str` per frame on time. Flat out: the WebSocket frames are
    built ahead (server frames are not masked) and written straight to the transport 64 at a
    time, waiting only for the socket to drain, so the server outruns any client.
    """

    texts: list[str]
    first_ms: list[int]
    trades: list[int]
    frames_per_s: float | None = None
    delay_secs: float = 0.05
    raw: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, frames: Sequence[Sequence[TapeTrade]], frames_per_s: float | None) -> AutoPlay:
        texts = [encode_frame(f) for f in frames]
        return cls(
            texts=texts,
            first_ms=[f[0].at_ms for f in frames],
            trades=[len(f) for f in frames],
            frames_per_s=frames_per_s,
            raw=[] if frames_per_s is not None else [_ws_text_frame(t) for t in texts],
        )

    async def play(self, conn: Connection) -> None:
        await asyncio.sleep(self.delay_secs)  # the rest of the subscribes land first
        try:
            if self.frames_per_s is None:
                await self._flat_out(conn)
            else:
                await self._paced(conn, self.frames_per_s)
        except (ConnectionError, RuntimeError):
            return

    async def _paced(self, conn: Connection, rate: float) -> None:
        perf = time.perf_counter
        log = conn.sent_log
        send = conn.ws.send_str
        started = perf()
        for i, text in enumerate(self.texts):
            delay = started + i / rate - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            log.append((self.first_ms[i], perf()))
            await send(text)
            conn.frames_sent += 1
            conn.trades_sent += self.trades[i]

    async def _flat_out(self, conn: Connection, chunk: int = 64) -> None:
        transport = conn.request.transport
        protocol = conn.request.protocol
        if transport is None:
            return
        perf = time.perf_counter
        for first in range(0, len(self.raw), chunk):
            if transport.is_closing():
                return
            now = perf()
            conn.sent_log.extend((t, now) for t in self.first_ms[first : first + chunk])
            transport.write(b"".join(self.raw[first : first + chunk]))
            conn.frames_sent += len(self.raw[first : first + chunk])
            conn.trades_sent += sum(self.trades[first : first + chunk])
            await protocol._drain_helper()  # aiohttp's flow control: waits while paused


def _ws_text_frame(text: str) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 section 5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


# -- control over HTTP (for a server in its own process) ------------------------------------------


def _control_routes(app: web.Application, server: LocalFinnhub) -> None:
    """`/_control/...`: GET state, GET sent?id=N, POST drop, POST close, POST garbage?count=N,
    POST ping, POST autoplay {"tape": "ticks"|"bars", "day", "frames_per_s", "window_ms",
    "max_trades", "passes", "align_to"} -> {"frames", "trades", "symbols"}."""

    async def state(_: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "connections": [c.state() for c in server.connections.values()],
                "rejected": server.rejected,
                "rest_calls": len(server.rest.calls),
            }
        )

    async def sent(request: web.Request) -> web.StreamResponse:
        conn = server.connections.get(int(request.query.get("id", "0")))
        return web.json_response([] if conn is None else conn.sent_log)

    async def drop(_: web.Request) -> web.StreamResponse:
        return web.json_response({"dropped": await server.drop_all()})

    async def close(_: web.Request) -> web.StreamResponse:
        return web.json_response({"closed": await server.close_all()})

    async def garbage(request: web.Request) -> web.StreamResponse:
        count = int(request.query.get("count", "1"))
        return web.json_response({"sent": await server.send_garbage(count)})

    async def ping(_: web.Request) -> web.StreamResponse:
        return web.json_response({"sent": await server.send_ping()})

    async def autoplay(request: web.Request) -> web.StreamResponse:
        spec = await request.json()
        tape = build_tape(spec)
        if spec.get("minute_frames"):
            frames = tape.minute_frames()
        else:
            frames = tape.frames(
                window_ms=int(spec.get("window_ms", 100)),
                max_trades=int(spec.get("max_trades", 50)),
            )
        server.autoplay = AutoPlay.of(frames, spec.get("frames_per_s"))
        return web.json_response(
            {"frames": len(frames), "trades": len(tape), "symbols": tape.symbols}
        )

    app.router.add_get("/_control/state", state)
    app.router.add_get("/_control/sent", sent)
    app.router.add_post("/_control/drop", drop)
    app.router.add_post("/_control/close", close)
    app.router.add_post("/_control/garbage", garbage)
    app.router.add_post("/_control/ping", ping)
    app.router.add_post("/_control/autoplay", autoplay)


def build_tape(spec: dict[str, Any]) -> Tape:
    """The tape an autoplay spec names (the benchmark builds the same one to check counts)."""
    day = date.fromisoformat(spec["day"]) if spec.get("day") else None
    if spec.get("tape", "ticks") == "ticks":
        tape = Tape.lean_ticks(day=day)
    else:
        align = date.fromisoformat(spec["align_to"]) if spec.get("align_to") else None
        tape = Tape.lean_minute_bars(symbols=spec.get("symbols"), day=day, align_to=align)
    passes = int(spec.get("passes", 1))
    return tape.repeated(passes) if passes > 1 else tape


async def _serve_forever(args: argparse.Namespace) -> None:
    server = LocalFinnhub(
        token=args.token, host=args.host, port=args.port, ping_every_secs=args.ping_every
    )
    await server.start()
    print(
        json.dumps({"port": server.port, "ws_url": server.ws_url, "rest_url": server.rest_url}),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main() -> None:
    """Serve a local Finnhub until SIGINT/SIGTERM; the first stdout line says where."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--token", default="local-token", help="the API key clients must send")
    parser.add_argument("--ping-every", type=float, default=None, help="seconds between pings")
    asyncio.run(_serve_forever(parser.parse_args()))


if __name__ == "__main__":
    main()
