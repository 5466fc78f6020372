"""`BarAggregator`: trades in, exact 1-minute OHLCV bars out, one closed minute at a time.

A minute closes for every symbol at once when the feed's time passes its end: the feed's time is
the latest trade time seen minus `lateness_secs` (with 0, the first trade of a later minute, of
any symbol, closes it), or the clock when the caller says so with `flush(now)` (a quiet market).
Until then a minute stays open, so trades that arrive out of order within it still count, and open
and close follow the trades' timestamps (ties in arrival order). A trade of a minute already
closed is late: counted and dropped, never folded into a bar that was published.

Prices stay as they came (floats from the wire, `Decimal`s from domain `Trade`s) while a bar is
open and become `Decimal` once, when it closes: `Decimal(repr(float))` gives back the decimal
text the vendor sent, so OHLC is exact; volume is an integer sum.

Trade conditions: a trade whose codes include one of `exclude_conditions` is left out (counted).
Finnhub sends codes as strings ("1", "12", ...); its documentation points to a spreadsheet of
their meanings that this project has not verified, so the default keeps every trade. The Lean
recordings in ../shared/data carry AlgoSeek flags instead: a hex bit mask per trade (Lean's
`TradeConditionFlags`: 0x1 regular, 0x20 intermarket sweep, 0x40/0x80 opening/closing prints,
0x2000 extended hours, 0x1000000 official close, 0x4000000 official open, 0x20000000 trade-through
exempt, ...). Lean's AIG minute bars match all prints within 1 % of each day's volume; they leave
out the official open and close reports (0x4000000, 0x1000000) and book the closing cross in the
15:59 bar, which a bar of trade times cannot do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Bar, Symbol, Trade, require_utc
from fin_agent.ports.trade_feed import AggregatorStats as AggregatorStats
from fin_agent.ports.trade_feed import ClosedMinute as ClosedMinute
from fin_agent.ports.trade_feed import Price as Price
from fin_agent.ports.trade_feed import RawTick as RawTick

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class Tick(NamedTuple):
    """A `RawTick` with names, for code that builds ticks by hand (the hot path uses tuples)."""

    symbol: str
    price: Price
    at_ms: int
    size: int
    conditions: Sequence[str] = ()

    def trade(self) -> Trade:
        """This tick as a domain `Trade`."""
        return trade_of(self)


def trade_of(tick: RawTick) -> Trade:
    """A raw tick as a domain `Trade` (decimal price, aware UTC time)."""
    symbol_, price, at_ms, size, _ = tick
    return Trade(symbol=Symbol(symbol_), price=_decimal(price), size=size, at=EPOCH + at_ms * _MS)


def tick_of(trade: Trade, conditions: Sequence[str] = ()) -> Tick:
    """A domain `Trade` as a `Tick` (its time to whole milliseconds, rounded down)."""
    return Tick(trade.symbol, trade.price, (trade.at - EPOCH) // _MS, trade.size, conditions)


class _Open:
    """A bar being built (mutated in place: the hot path)."""

    __slots__ = ("close", "first_ms", "high", "last_ms", "low", "minute", "open", "volume")

    def __init__(self, minute: int, price: Price, at_ms: int, size: int) -> None:
        self.minute = minute
        self.open = self.high = self.low = self.close = price
        self.volume = size
        self.first_ms = self.last_ms = at_ms

    def update(self, price: Price, at_ms: int, size: int) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        if at_ms >= self.last_ms:
            self.close = price
            self.last_ms = at_ms
        elif at_ms < self.first_ms:
            self.open = price
            self.first_ms = at_ms
        self.volume += size


_NOTHING: tuple[ClosedMinute, ...] = ()
_MINUTE_MS = 60_000


class BarAggregator:
    """Turns trades into 1-minute bars stamped at their UTC start (see the module docstring)."""

    def __init__(
        self, *, lateness_secs: float = 2.0, exclude_conditions: Collection[str] = ()
    ) -> None:
        if lateness_secs < 0:
            raise ConfigError(f"bar lateness_secs must be 0 or more, got {lateness_secs}")
        self._lateness_ms = round(lateness_secs * 1000)
        self._exclude = frozenset(exclude_conditions)
        self._open: dict[str, _Open] = {}
        self._closed: dict[int, dict[str, _Open]] = {}  # minute -> symbol -> bar, not yet out
        self._sealed = -1  # every minute before this one is out; its trades are late
        self._max_ms = -1
        self._trades = 0
        self._excluded = 0
        self._late = 0
        self._bars = 0
        self._minutes = 0

    @property
    def stats(self) -> AggregatorStats:
        """Counts so far, and the end of the last closed minute."""
        return AggregatorStats(
            trades=self._trades,
            excluded=self._excluded,
            late=self._late,
            bars=self._bars,
            minutes=self._minutes,
            open_bars=len(self._open) + sum(len(bars) for bars in self._closed.values()),
            closed_through=_start_of(self._sealed) if self._sealed >= 0 else None,
        )

    def add(self, ticks: Sequence[RawTick]) -> Sequence[ClosedMinute]:
        """Aggregate `ticks`; return the minutes they closed (usually none), oldest first."""
        exclude = self._exclude
        minute_ms = _MINUTE_MS
        sealed_ms = self._sealed * minute_ms
        open_bars = self._open
        open_bar = open_bars.get
        max_ms = self._max_ms
        excluded = late = 0
        for symbol, price, at_ms, size, conditions in ticks:
            if exclude and conditions and not exclude.isdisjoint(conditions):
                excluded += 1
                continue
            if at_ms < sealed_ms:
                late += 1
                continue
            if at_ms > max_ms:
                max_ms = at_ms
            minute = at_ms // minute_ms
            bar = open_bar(symbol)
            if bar is not None and bar.minute == minute:  # the hot path: `_Open.update` inlined
                if price > bar.high:
                    bar.high = price
                elif price < bar.low:
                    bar.low = price
                if at_ms >= bar.last_ms:
                    bar.close = price
                    bar.last_ms = at_ms
                elif at_ms < bar.first_ms:
                    bar.open = price
                    bar.first_ms = at_ms
                bar.volume += size
            elif bar is None or minute > bar.minute:
                if bar is not None:
                    self._closed.setdefault(bar.minute, {})[symbol] = bar
                open_bars[symbol] = _Open(minute, price, at_ms, size)
            else:  # an earlier minute of this symbol, not closed yet: it still counts
                earlier = self._closed.setdefault(minute, {})
                old = earlier.get(symbol)
                if old is None:
                    earlier[symbol] = _Open(minute, price, at_ms, size)
                else:
                    old.update(price, at_ms, size)
        self._trades += len(ticks) - excluded - late
        self._excluded += excluded
        self._late += late
        self._max_ms = max_ms
        if (max_ms - self._lateness_ms) // _MINUTE_MS > self._sealed:
            return self._seal((max_ms - self._lateness_ms) // _MINUTE_MS)
        return _NOTHING

    def add_trades(self, trades: Iterable[Trade]) -> Sequence[ClosedMinute]:
        """`add` for domain `Trade`s (they carry no condition codes)."""
        return self.add([tick_of(trade) for trade in trades])

    def flush(self, now: datetime) -> Sequence[ClosedMinute]:
        """Close every minute that ended at or before `now` (aware UTC); return them."""
        require_utc(now, "flush time")
        limit = ((now - EPOCH) // _MS) // _MINUTE_MS
        return self._seal(limit) if limit > self._sealed else _NOTHING

    def close_all(self) -> Sequence[ClosedMinute]:
        """Close every minute with a trade, finished or not (end of a replay or of a session)."""
        minutes = [bar.minute for bar in self._open.values()] + list(self._closed)
        if not minutes:
            return _NOTHING
        return self._seal(max(minutes) + 1)

    def _seal(self, limit: int) -> Sequence[ClosedMinute]:
        """Close the minutes before `limit`: bars out, in minute order; later trades are late."""
        closed = self._closed
        for symbol, bar in list(self._open.items()):
            if bar.minute < limit:
                closed.setdefault(bar.minute, {})[symbol] = bar
                del self._open[symbol]
        self._sealed = limit
        ready = sorted(minute for minute in closed if minute < limit)
        out: list[ClosedMinute] = []
        for minute in ready:
            by_symbol = closed.pop(minute)
            start = _start_of(minute)
            bars = tuple(_bar(symbol, start, by_symbol[symbol]) for symbol in sorted(by_symbol))
            out.append(ClosedMinute(start=start, bars=bars))
        self._bars += sum(len(m.bars) for m in out)
        self._minutes += len(out)
        return out


def _start_of(minute: int) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def _decimal(price: Price) -> Decimal:
    return price if isinstance(price, Decimal) else Decimal(repr(price))


def _bar(symbol: str, start: datetime, bar: _Open) -> Bar:
    return Bar(
        symbol=Symbol(symbol),
        start=start,
        open=_decimal(bar.open),
        high=_decimal(bar.high),
        low=_decimal(bar.low),
        close=_decimal(bar.close),
        volume=bar.volume,
    )
