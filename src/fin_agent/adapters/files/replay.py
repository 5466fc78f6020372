"""`ReplayMarketData`: the `MarketData` port over bars loaded from files, for backtests and demos.

Sessions, early closes, pre-market figures and (without a daily file) daily bars come from the data.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from itertools import accumulate
from pathlib import Path

from fin_agent.adapters.files.bar_files import (
    BarFile,
    BarFileSpec,
    BarKind,
    DroppedRow,
    read_bar_files,
)
from fin_agent.adapters.files.stamps import EXCHANGE_TZ
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Bar, DailyBar, Premarket, Symbol, utc

__all__ = ["ReplayLoad", "ReplayMarketData", "load_replay"]

_PREMARKET_OPEN = time(4, 0)
_REGULAR_OPEN = time(9, 30)
_EARLY_CLOSE = time(13, 0)
_NORMAL_CLOSE = time(16, 0)
# A day that trades up to 13:00 and whose 13:00-16:00 volume is under this share of its 09:30-13:00
# volume closed at 13:00: after an early close only thin after-hours trades remain (GOOG 2015-12-24:
# about 1 %). A day whose data stops before 12:30 is a truncated capture, not an early close.
_EARLY_CLOSE_VOLUME_SHARE = 0.05
_LATE_MORNING = time(12, 30)


@dataclass(frozen=True, slots=True)
class _PremarketSeries:
    """One symbol-day's pre-market bars: bar ends, closes and running volume totals."""

    ends: tuple[datetime, ...]
    closes: tuple[Decimal, ...]
    volumes: tuple[int, ...]


class ReplayMarketData:
    """Market data replayed from daily and/or intraday bars (bar start, UTC), read-only.

    Daily bars come from the daily bars given, else are aggregated from the regular session.
    """

    def __init__(self, *, daily: Iterable[DailyBar] = (), intraday: Iterable[Bar] = ()) -> None:
        self._daily: dict[Symbol, list[DailyBar]] = {}
        self._regular: dict[date, list[Bar]] = {}
        self._closes: dict[date, datetime] = {}
        self._premarket: dict[tuple[Symbol, date], _PremarketSeries] = {}
        self._first_open: dict[tuple[Symbol, date], Decimal] = {}
        self._intraday_days: set[tuple[Symbol, date]] = set()
        self._premarket_span: dict[Symbol, tuple[date, date]] = {}
        self._index_daily(daily)
        self._index_intraday(intraday)
        self._daily_days = {name: [b.session for b in bars] for name, bars in self._daily.items()}

    def _index_daily(self, bars: Iterable[DailyBar]) -> None:
        by_symbol: dict[Symbol, dict[date, DailyBar]] = {}
        for bar in bars:
            series = by_symbol.setdefault(bar.symbol, {})
            if bar.session in series:
                raise DataError(
                    f"two daily bars of {bar.symbol} on {bar.session}: pass each file once"
                )
            series[bar.session] = bar
        for name, series in by_symbol.items():
            self._daily[name] = [series[day] for day in sorted(series)]

    def _index_intraday(self, bars: Iterable[Bar]) -> None:
        by_day: dict[date, list[tuple[time, Bar]]] = {}
        local_cache: dict[datetime, datetime] = {}
        seen: set[tuple[Symbol, datetime]] = set()
        for bar in bars:
            key = (bar.symbol, bar.start)
            if key in seen:
                raise DataError(
                    f"two bars of {bar.symbol} start at {bar.start}: pass each file once"
                )
            seen.add(key)
            local = local_cache.get(bar.start)
            if local is None:
                local = local_cache[bar.start] = bar.start.astimezone(EXCHANGE_TZ)
            by_day.setdefault(local.date(), []).append((local.time(), bar))
        aggregated: dict[Symbol, list[DailyBar]] = {}
        for day in sorted(by_day):
            items = sorted(by_day[day], key=lambda item: (item[1].start, item[1].symbol))
            close_at = _session_close(items)
            self._closes[day] = datetime.combine(day, close_at, EXCHANGE_TZ).astimezone(UTC)
            regular = [bar for at, bar in items if _REGULAR_OPEN <= at < close_at]
            premarket: dict[Symbol, list[Bar]] = {}
            for at, bar in items:
                self._intraday_days.add((bar.symbol, day))
                if _PREMARKET_OPEN <= at < _REGULAR_OPEN:
                    premarket.setdefault(bar.symbol, []).append(bar)
            for name, series in premarket.items():
                first, _ = self._premarket_span.get(name, (day, day))
                self._premarket_span[name] = (first, day)
                self._premarket[(name, day)] = _PremarketSeries(
                    ends=tuple(b.end for b in series),
                    closes=tuple(b.close for b in series),
                    volumes=tuple(accumulate(b.volume for b in series)),
                )
            if regular:
                self._regular[day] = regular
            for daily_bar in _aggregate(day, regular):
                self._first_open[(daily_bar.symbol, day)] = daily_bar.open
                aggregated.setdefault(daily_bar.symbol, []).append(daily_bar)
        for name, days in aggregated.items():
            self._daily.setdefault(name, days)

    async def symbols(self) -> Sequence[Symbol]:
        """Return every symbol with daily or intraday data, sorted."""
        names = set(self._daily) | {name for name, _ in self._intraday_days}
        return sorted(names)

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Return up to `count` daily bars of sessions strictly before `before`, oldest first."""
        series = self._daily.get(symbol, [])
        cut = bisect.bisect_left(self._daily_days.get(symbol, []), before)
        return series[max(0, cut - count) : cut]

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """Return the pre-market last price and volume of bars ending by `until`, or None.

        Pre-market data covers a symbol from its first to its last day with pre-market bars: outside
        that span `last` is the day's open and `volume` None (unknown); inside it, with no bar
        ended by `until`, `last` is the previous close and `volume` 0 (a quiet pre-market).
        """
        as_of = utc(until)
        span = self._premarket_span.get(symbol)
        if span and span[0] <= day <= span[1] and (symbol, day) in self._intraday_days:
            series = self._premarket.get((symbol, day))
            count = bisect.bisect_right(series.ends, as_of) if series else 0
            if series and count:
                last, volume = series.closes[count - 1], series.volumes[count - 1]
            else:
                previous = await self.daily_bars(symbol, day, 1)
                if not previous:
                    return None
                last, volume = previous[0].close, 0
            return Premarket(symbol=symbol, last=last, volume=volume, as_of=as_of)
        opening = self._day_open(symbol, day)
        if opening is None:
            return None
        return Premarket(symbol=symbol, last=opening, volume=None, as_of=as_of)

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        """Return the regular-session bars of `day` of `symbols`, ordered by (start, symbol)."""
        wanted = set(symbols)
        return [bar for bar in self._regular.get(day, []) if bar.symbol in wanted]

    def sessions(self) -> list[date]:
        """Return the days with regular-session intraday bars, or with daily bars if none."""
        if self._closes:
            return sorted(self._regular)
        return sorted({bar.session for series in self._daily.values() for bar in series})

    def session_close(self, day: date) -> datetime | None:
        """Return when the regular session of `day` closed in the intraday data (13:00 ET on an
        early close), or None without intraday data that day."""
        return self._closes.get(day)

    def _day_open(self, symbol: Symbol, day: date) -> Decimal | None:
        days = self._daily_days.get(symbol, [])
        index = bisect.bisect_left(days, day)
        if index < len(days) and days[index] == day:
            return self._daily[symbol][index].open
        return self._first_open.get((symbol, day))


def _session_close(items: Sequence[tuple[time, Bar]]) -> time:
    """Return 13:00 when the data shows the day closing early, else 16:00."""
    morning = sum(bar.volume for at, bar in items if _REGULAR_OPEN <= at < _EARLY_CLOSE)
    afternoon = sum(bar.volume for at, bar in items if _EARLY_CLOSE <= at < _NORMAL_CLOSE)
    reaches_close = any(_LATE_MORNING <= at < _EARLY_CLOSE for at, _ in items)
    if reaches_close and afternoon < _EARLY_CLOSE_VOLUME_SHARE * morning:
        return _EARLY_CLOSE
    return _NORMAL_CLOSE


def _aggregate(day: date, bars: Sequence[Bar]) -> list[DailyBar]:
    """Return one daily bar per symbol from its regular-session bars (ordered by start)."""
    by_symbol: dict[Symbol, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    return [
        DailyBar(
            symbol=name,
            session=day,
            open=series[0].open,
            high=max(b.high for b in series),
            low=min(b.low for b in series),
            close=series[-1].close,
            volume=sum(b.volume for b in series),
        )
        for name, series in by_symbol.items()
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayLoad:
    """What `load_replay` built: the market data, each file as read, and every row dropped."""

    market_data: ReplayMarketData
    files: tuple[BarFile, ...]
    dropped: tuple[DroppedRow, ...]
    unadjusted_symbols: tuple[Symbol, ...]


def load_replay(paths: Sequence[Path], spec: BarFileSpec) -> ReplayLoad:
    """Read daily and/or intraday bar files under `spec` into a `ReplayMarketData`.

    Raise `DataError` when no file is given or intraday files disagree on their interval.
    """
    if not paths:
        raise DataError("no bar files given: pass a daily file, an intraday file or both")
    files = read_bar_files(paths, spec)
    intervals = {f.interval_secs for f in files if f.kind is BarKind.INTRADAY}
    if len(intervals) > 1:
        listed = ", ".join(f"{f.path.name}: {f.interval_secs} s" for f in files if f.interval_secs)
        raise DataError(
            f"intraday files have different bar intervals ({listed}): pass one interval"
        )
    market_data = ReplayMarketData(
        daily=[bar for f in files for bar in f.daily],
        intraday=[bar for f in files for bar in f.intraday],
    )
    return ReplayLoad(
        market_data=market_data,
        files=files,
        dropped=tuple(row for f in files for row in f.dropped),
        unadjusted_symbols=tuple(sorted({s for f in files for s in f.unadjusted_symbols})),
    )
