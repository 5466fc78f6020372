"""Decoding Finnhub WebSocket frames into ticks: strict about shapes, never raising.

A trade frame is `{"type":"trade","data":[{"s":"AAPL","p":187.3,"t":1700000000000,"v":100,
"c":["1"]}, ...]}`. Every trade is checked (symbol a string, price a finite positive number, `t` a
positive integer of milliseconds, `v` a whole non-negative number, `c` a list when present); the
good ones of a frame are kept, the bad ones counted, and a frame that is not JSON, not an object,
or a trade frame without a `data` list is counted as malformed. `ping` frames are counted and
dropped; `error` frames are counted and their message kept for the log. Trades of symbols not
watched (in flight while an unsubscribe travels) are counted and dropped. A `news` frame
(`{"type":"news","data":[...]}`, the `subscribe-news` stream) leaves its items in `news`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any

from fin_agent.adapters.live.bar_aggregator import RawTick, trade_of
from fin_agent.domain.values import Trade

_loads = json.loads
_join = "".join
_MAX_PRICE = 1e9  # USD: anything above is garbage, not a stock
_MAX_MS = 10**13  # the year 2286: a larger `t` is not milliseconds since the epoch
_MAX_SIZE = 10**12
_EMPTY: list[RawTick] = []  # never mutated: returned for frames without trades
SAMPLE_CHARS = 200


class TradeBatch:
    """The trades of one frame, in the order they came, and when the frame arrived.

    `ticks` keep the wire's float prices (cheap); `trades()` makes domain `Trade`s of them.
    `received_at` is `time.perf_counter()` on arrival, for latency figures. Read-only by
    convention (a plain slotted class: one is made per frame).
    """

    __slots__ = ("received_at", "ticks")

    def __init__(self, ticks: Sequence[RawTick], received_at: float | None = None) -> None:
        self.ticks = ticks
        self.received_at = time.perf_counter() if received_at is None else received_at

    def trades(self) -> tuple[Trade, ...]:
        """The batch as domain `Trade` values (decimal prices, aware UTC times)."""
        return tuple(trade_of(tick) for tick in self.ticks)

    def __len__(self) -> int:
        return len(self.ticks)

    def __repr__(self) -> str:
        return f"TradeBatch({len(self.ticks)} trades, received_at={self.received_at})"


@dataclass(slots=True)
class DecodeCounters:
    """What the decoder has seen, by kind (mutable: the feed's hot path bumps them)."""

    frames: int = 0
    trades: int = 0
    malformed: int = 0
    malformed_trades: int = 0
    ignored_trades: int = 0
    pings: int = 0
    server_errors: int = 0
    other: int = 0
    news_frames: int = 0


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the last frame was (partly) rejected, and a short sample of it for the log."""

    reason: str
    sample: str


class FrameDecoder:
    """Decodes frames into ticks of watched symbols and counts everything else."""

    def __init__(self) -> None:
        self.counters = DecodeCounters()
        self.problem: Problem | None = None  # set by the last decode that found one
        self.server_error: str | None = None  # the message of the last `error` frame
        self.news: list[Any] | None = None  # the items of the last frame when it was news

    def decode(self, message: str | bytes, watched: Set[str]) -> list[RawTick]:
        """The good trades of `message` whose symbol is in `watched`; `[]` for anything else.

        After a call, `problem` is not None when the frame was malformed or had bad trades.
        """
        counters = self.counters
        counters.frames += 1
        self.problem = None
        try:
            frame = _loads(message)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            return self._malformed(message, "not JSON")
        except RecursionError:  # nesting deeper than the parser's stack
            return self._malformed(message, "JSON nested too deep")
        if type(frame) is not dict:
            return self._malformed(message, "not a JSON object")
        kind = frame.get("type")
        if kind == "trade":
            data = frame.get("data")
            if type(data) is not list:
                return self._malformed(message, "a trade frame without a data list")
            return self._trades(message, data, watched)
        if kind == "news":
            data = frame.get("data")
            if type(data) is not list:
                return self._malformed(message, "a news frame without a data list")
            counters.news_frames += 1
            self.news = data
        elif kind == "ping":
            counters.pings += 1
        elif kind == "error":
            counters.server_errors += 1
            self.server_error = str(frame.get("msg", ""))[:SAMPLE_CHARS]
        elif type(kind) is str:
            counters.other += 1  # other streams this feed does not subscribe to
        else:
            return self._malformed(message, "no type")
        return _EMPTY

    def _trades(self, message: str | bytes, data: list[Any], watched: Set[str]) -> list[RawTick]:
        ticks: list[RawTick] = []
        append = ticks.append
        join, max_price, max_ms, max_size = _join, _MAX_PRICE, _MAX_MS, _MAX_SIZE
        bad = ignored = 0
        for item in data:
            try:
                symbol = item["s"]
                price = item["p"]
                at_ms = item["t"]
                size = item["v"]
                conditions = item.get("c")
            except (KeyError, TypeError, AttributeError, IndexError):
                bad += 1
                continue
            if not (  # the fast path: the shapes Finnhub sends
                type(price) is float
                and type(at_ms) is int
                and type(size) is int
                and type(symbol) is str
                and 0.0 < price < max_price
                and 0 < at_ms < max_ms
                and 0 <= size < max_size
            ):
                fixed = _normalised(symbol, price, at_ms, size)
                if fixed is None:
                    bad += 1
                    continue
                symbol, price, at_ms, size = fixed
            if conditions:
                if type(conditions) is not list:
                    bad += 1
                    continue
                try:
                    join(conditions)  # raises unless every code is a string
                except TypeError:
                    bad += 1
                    continue
            else:
                conditions = ()
            if symbol not in watched:
                ignored += 1
                continue
            append((symbol, price, at_ms, size, conditions))
        counters = self.counters
        counters.trades += len(ticks)
        if ignored:
            counters.ignored_trades += ignored
        if bad:
            counters.malformed_trades += bad
            counters.malformed += 1
            self.problem = Problem(f"{bad} of {len(data)} trades malformed", _sample(message))
        return ticks

    def _malformed(self, message: str | bytes, reason: str) -> list[RawTick]:
        self.counters.malformed += 1
        self.problem = Problem(reason, _sample(message))
        return _EMPTY


def _normalised(
    symbol: Any, price: Any, at_ms: Any, size: Any
) -> tuple[str, float, int, int] | None:
    """A trade whose numbers came as other JSON number types, made regular; None if it is bad."""
    if type(price) is int:
        price = float(price)
    if type(size) is float and size.is_integer():
        size = int(size)
    if (
        type(price) is float
        and type(at_ms) is int
        and type(size) is int
        and type(symbol) is str
        and 0.0 < price < _MAX_PRICE
        and 0 < at_ms < _MAX_MS
        and 0 <= size < _MAX_SIZE
    ):
        return symbol, price, at_ms, size
    return None


def _sample(message: str | bytes) -> str:
    text = message if isinstance(message, str) else message[:SAMPLE_CHARS].decode(errors="replace")
    return text[:SAMPLE_CHARS]
