"""`ReplayMarketData`: the `MarketData` port over bars loaded from files, for backtests and demos.

Sessions, early closes, pre-market figures and (without a daily file) daily bars come from the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from fin_agent.adapters.files.bar_files import (
    BarFile,
    BarFileSpec,
    BarKind,
    DroppedRow,
    read_bar_files,
)
from fin_agent.adapters.files.columnar import (
    BarColumns,
    Decimals,
    Instants,
    columns_of,
    concat_columns,
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
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)


_US = 1_000_000
_PREMARKET_OPEN_US = (4 * 3600) * _US
_REGULAR_OPEN_US = (9 * 3600 + 30 * 60) * _US
_EARLY_CLOSE_US = 13 * 3600 * _US
_NORMAL_CLOSE_US = 16 * 3600 * _US
_LATE_MORNING_US = (12 * 3600 + 30 * 60) * _US
_KEY = 10_000_000  # (symbol code, day ordinal) as one integer: code * _KEY + ordinal


class ReplayMarketData:
    """Market data replayed from daily and/or intraday bars (bar start, UTC), read-only.

    The bars stay in columns; `Bar` and `DailyBar` objects are made only for what is asked
    (a day's watchlist, a scan's history). Daily bars come from the daily bars given, else are
    aggregated from the regular session.
    """

    def __init__(
        self,
        *,
        daily: BarColumns | Iterable[DailyBar] = (),
        intraday: BarColumns | Iterable[Bar] = (),
    ) -> None:
        self._decimals = Decimals()
        self._instants = Instants()
        day_columns = daily if isinstance(daily, BarColumns) else _of_objects(list(daily))
        minute_columns = (
            intraday if isinstance(intraday, BarColumns) else _of_objects(list(intraday))
        )
        names = sorted({n for c in (day_columns, minute_columns) if c is not None for n in c.names})
        self._names = tuple(names)
        self._code = {name: i for i, name in enumerate(names)}
        self._closes: dict[date, datetime] = {}
        self._regular: dict[date, Any] = {}
        self._premarket: dict[int, tuple[int, int]] = {}
        self._premarket_span: dict[int, tuple[int, int]] = {}
        self._intraday_days: set[int] = set()
        self._first_open: dict[int, float] = {}
        self._minutes: BarColumns | None = None
        aggregated = None
        if minute_columns is not None:
            aggregated = self._index_intraday(minute_columns.recoded(self._names))
        self._daily = self._index_daily(
            None if day_columns is None else day_columns.recoded(self._names), aggregated
        )
        self._windows: dict[int, tuple[int, list[DailyBar]]] = {}

    def _index_daily(self, given: BarColumns | None, aggregated: BarColumns | None) -> BarColumns:
        if given is not None:
            order = np.lexsort((given.day, given.code))
            given = given.take(order)
            same = (given.code[1:] == given.code[:-1]) & (given.day[1:] == given.day[:-1])
            if same.any():
                at = int(np.flatnonzero(same)[0])
                name, day = self._names[int(given.code[at])], date.fromordinal(int(given.day[at]))
                raise DataError(f"two daily bars of {name} on {day}: pass each file once")
        if aggregated is not None and given is not None:
            aggregated = aggregated.take(~np.isin(aggregated.code, given.code))
        found = concat_columns([c for c in (given, aggregated) if c is not None])
        if found is None:
            found = _empty(self._names)
        found = found.recoded(self._names)
        found = found.take(np.lexsort((found.day, found.code)))
        codes = np.arange(len(self._names) + 1)
        self._daily_bounds = np.searchsorted(found.code, codes)
        return found

    def _index_intraday(self, bars: BarColumns) -> BarColumns | None:
        """Sessions, closes, pre-market series and first opens; the daily bars aggregated."""
        bars = bars.take(np.lexsort((bars.code, bars.times()[0])))
        start, local = bars.times()
        same = (bars.code[1:] == bars.code[:-1]) & (start[1:] == start[:-1])
        if same.any():
            at = int(np.flatnonzero(same)[0])
            first = self._instants.of([int(start[at])])[0]
            raise DataError(
                f"two bars of {self._names[int(bars.code[at])]} start at {first}: "
                "pass each file once"
            )
        self._minutes = bars
        keys = bars.code * _KEY + bars.day
        self._intraday_days = set(np.unique(keys).tolist())
        days, firsts = np.unique(bars.day, return_index=True)
        lasts = [*firsts[1:].tolist(), len(bars)]
        regular_rows: list[Any] = []
        for ordinal, lo, hi in zip(days.tolist(), firsts.tolist(), lasts, strict=True):
            day = date.fromordinal(ordinal)
            close_us = _session_close_us(local[lo:hi], bars.volume[lo:hi])
            close_at = time(close_us // (3600 * _US), close_us // (60 * _US) % 60)
            self._closes[day] = datetime.combine(day, close_at, EXCHANGE_TZ).astimezone(UTC)
            clock = local[lo:hi]
            found = lo + np.flatnonzero((clock >= _REGULAR_OPEN_US) & (clock < close_us))
            if len(found):
                self._regular[day] = found
                regular_rows.append(found)
        pre = np.flatnonzero((local >= _PREMARKET_OPEN_US) & (local < _REGULAR_OPEN_US))
        self._index_premarket(bars, pre[np.lexsort((start[pre], keys[pre]))])
        if not regular_rows:
            return None
        return self._aggregate(bars, np.concatenate(regular_rows))

    def _index_premarket(self, bars: BarColumns, rows: Any) -> None:
        """Each symbol-day's pre-market rows (by start), with running volume totals."""
        keys = bars.code[rows] * _KEY + bars.day[rows]
        self._pm_closes = bars.close[rows]
        self._pm_ends = bars.times()[0][rows] + bars.interval_secs * _US
        volumes = bars.volume[rows]
        running = np.cumsum(volumes)
        unique, firsts = np.unique(keys, return_index=True)
        before = np.zeros(len(rows), dtype=np.int64)
        if len(rows):
            group = np.searchsorted(unique, keys)
            offsets = running[firsts] - volumes[firsts]
            before = offsets[group]
        self._pm_volumes = running - before
        lasts = [*firsts[1:].tolist(), len(rows)] if len(firsts) else []
        for key, lo, hi in zip(unique.tolist(), firsts.tolist(), lasts, strict=True):
            self._premarket[key] = (lo, hi)
            code, ordinal = divmod(key, _KEY)
            first, last = self._premarket_span.get(code, (ordinal, ordinal))
            self._premarket_span[code] = (min(first, ordinal), max(last, ordinal))

    def _aggregate(self, bars: BarColumns, rows: Any) -> BarColumns:
        """One daily bar per symbol-day from its regular-session bars."""
        rows = rows[np.lexsort((bars.times()[0][rows], bars.day[rows], bars.code[rows]))]
        keys = bars.code[rows] * _KEY + bars.day[rows]
        unique, firsts = np.unique(keys, return_index=True)
        lasts = np.append(firsts[1:], len(rows)) - 1
        opens = bars.open[rows][firsts]
        for key, value in zip(unique.tolist(), opens.tolist(), strict=True):
            self._first_open[key] = value
        return BarColumns(
            names=bars.names,
            code=unique // _KEY,
            day=unique % _KEY,
            open=opens,
            high=np.maximum.reduceat(bars.high[rows], firsts),
            low=np.minimum.reduceat(bars.low[rows], firsts),
            close=bars.close[rows][lasts],
            volume=np.add.reduceat(bars.volume[rows], firsts),
        )

    async def symbols(self) -> Sequence[Symbol]:
        """Return every symbol with daily or intraday data, sorted."""
        return list(self._names)

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Return up to `count` daily bars of sessions strictly before `before`, oldest first."""
        code = self._code.get(symbol)
        if code is None or count <= 0:
            return []
        lo, hi = int(self._daily_bounds[code]), int(self._daily_bounds[code + 1])
        cut = lo + int(np.searchsorted(self._daily.day[lo:hi], before.toordinal()))
        first = max(lo, cut - count)
        return self._window(code, first, cut)

    def _window(self, code: int, first: int, cut: int) -> list[DailyBar]:
        """Daily bars of rows first..cut, reusing those the symbol's last window made (a scan
        a day later asks for nearly the same bars)."""
        kept = self._windows.get(code)
        made: list[DailyBar]
        if kept is not None and kept[0] <= first < kept[0] + len(kept[1]):
            reuse = kept[1][first - kept[0] : cut - kept[0]]
            after = first + len(reuse)
            made = reuse + self._daily.daily_bars(slice(after, cut), self._decimals)
        else:
            made = self._daily.daily_bars(slice(first, cut), self._decimals)
        self._windows[code] = (first, made)
        return list(made)

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """Return the pre-market last price and volume of bars ending by `until`, or None.

        Pre-market data covers a symbol from its first to its last day with pre-market bars: outside
        that span `last` is the day's open and `volume` None (unknown); inside it, with no bar
        ended by `until`, `last` is the previous close and `volume` 0 (a quiet pre-market).
        """
        as_of = utc(until)
        code = self._code.get(symbol)
        if code is None:
            return None
        key = code * _KEY + day.toordinal()
        span = self._premarket_span.get(code)
        if span and span[0] <= day.toordinal() <= span[1] and key in self._intraday_days:
            found = self._premarket.get(key)
            count = 0
            if found is not None:
                lo, hi = found
                limit = (as_of - _EPOCH_UTC) // timedelta(microseconds=1)
                count = int(np.searchsorted(self._pm_ends[lo:hi], limit, side="right"))
            if found is not None and count:
                row = found[0] + count - 1
                price = float(self._pm_closes[row])
                last = self._decimals.of([price])[0]
                volume = int(self._pm_volumes[row])
            else:
                previous = await self.daily_bars(symbol, day, 1)
                if not previous:
                    return None
                last, volume = previous[0].close, 0
            return Premarket(symbol=symbol, last=last, volume=volume, as_of=as_of)
        opening = self._day_open(code, day)
        if opening is None:
            return None
        return Premarket(symbol=symbol, last=opening, volume=None, as_of=as_of)

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        """Return the regular-session bars of `day` of `symbols`, ordered by (start, symbol)."""
        rows = self._regular.get(day)
        if rows is None or self._minutes is None:
            return []
        wanted = [self._code[s] for s in set(symbols) if s in self._code]
        chosen = rows[np.isin(self._minutes.code[rows], wanted)]
        return self._minutes.bars(chosen, self._decimals, self._instants)

    def sessions(self) -> list[date]:
        """Return the days with regular-session intraday bars, or with daily bars if none."""
        if self._closes:
            return sorted(self._regular)
        return [date.fromordinal(d) for d in np.unique(self._daily.day).tolist()]

    def session_close(self, day: date) -> datetime | None:
        """Return when the regular session of `day` closed in the intraday data (13:00 ET on an
        early close), or None without intraday data that day."""
        return self._closes.get(day)

    def _day_open(self, code: int, day: date) -> Decimal | None:
        lo, hi = int(self._daily_bounds[code]), int(self._daily_bounds[code + 1])
        days = self._daily.day[lo:hi]
        index = int(np.searchsorted(days, day.toordinal()))
        if index < len(days) and days[index] == day.toordinal():
            if self._daily.objects is not None:
                opened: Decimal = self._daily.objects[lo + index].open
                return opened
            return self._decimals.of([float(self._daily.open[lo + index])])[0]
        found = self._first_open.get(code * _KEY + day.toordinal())
        return None if found is None else self._decimals.of([found])[0]


def _session_close_us(local: Any, volume: Any) -> int:
    """13:00 when the data shows the day closing early, else 16:00 (µs since midnight)."""
    morning = int(volume[(local >= _REGULAR_OPEN_US) & (local < _EARLY_CLOSE_US)].sum())
    afternoon = int(volume[(local >= _EARLY_CLOSE_US) & (local < _NORMAL_CLOSE_US)].sum())
    reaches_close = bool(((local >= _LATE_MORNING_US) & (local < _EARLY_CLOSE_US)).any())
    if reaches_close and afternoon < _EARLY_CLOSE_VOLUME_SHARE * morning:
        return _EARLY_CLOSE_US
    return _NORMAL_CLOSE_US


def _of_objects(bars: list[Any]) -> BarColumns | None:
    return columns_of(bars, EXCHANGE_TZ) if bars else None


def _empty(names: tuple[Symbol, ...]) -> BarColumns:
    nothing = np.zeros(0, dtype=np.int64)
    return BarColumns(
        names=names, code=nothing, day=nothing, open=nothing.astype(np.float64),
        high=nothing.astype(np.float64), low=nothing.astype(np.float64),
        close=nothing.astype(np.float64), volume=nothing,
    )  # fmt: skip


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
    daily = concat_columns([f.columns for f in files if f.columns and not f.columns.intraday])
    intraday = concat_columns([f.columns for f in files if f.columns and f.columns.intraday])
    market_data = ReplayMarketData(
        daily=daily if daily is not None else (), intraday=intraday if intraday is not None else ()
    )
    return ReplayLoad(
        market_data=market_data,
        files=files,
        dropped=tuple(row for f in files for row in f.dropped),
        unadjusted_symbols=tuple(sorted({s for f in files for s in f.unadjusted_symbols})),
    )
