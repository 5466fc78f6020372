"""`ReplayMarketData`: the `MarketData` port over bars loaded from files, for backtests and demos.

Sessions, early closes, pre-market figures and (without a daily file) daily bars come from the data.
Minute bars that do not fit in memory stay in their files: the market keeps what every day needs
(sessions, closes, daily bars, which symbol-days have pre-market bars) and reads a day's minute
bars when the backtest reaches it, freeing the previous day's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from fin_agent.adapters.files.bar_files import (
    CHUNK_ROWS,
    RESIDENT_ROWS,
    BarFile,
    BarFileSpec,
    BarFilesPlan,
    BarKind,
    DroppedRow,
    plan_bar_files,
)
from fin_agent.adapters.files.bar_rows import PAIR_KEY
from fin_agent.adapters.files.columnar import (
    BarColumns,
    Decimals,
    Instants,
    columns_of,
    concat_columns,
)
from fin_agent.adapters.files.heap import release_freed
from fin_agent.adapters.files.minute_index import MinuteIndex
from fin_agent.adapters.files.stamps import EXCHANGE_TZ
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Bar, DailyBar, Premarket, Symbol, utc

__all__ = ["DayChunks", "ReplayLoad", "ReplayMarketData", "load_replay"]

_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_NO_KEYS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class DayChunks:
    """Minute bars of some days that are read together: the days (ordinals) and how to read
    them (bar files' chunks that share days)."""

    days: frozenset[int]
    read: Callable[[], BarColumns | None]


class ReplayMarketData:
    """Market data replayed from daily and/or intraday bars (bar start, UTC), read-only.

    The bars stay in columns; `Bar` and `DailyBar` objects are made only for what is asked
    (a day's watchlist, a scan's history), and their caches are cleared when the day changes.
    Daily bars come from the daily bars given, else are aggregated from the regular session.
    Minute bars are given whole (`intraday`, kept) or as `chunks` read one at a time: a day's
    chunks when that day is asked for (`names`: the symbols the chunks may hold).
    """

    def __init__(
        self,
        *,
        daily: BarColumns | Iterable[DailyBar] = (),
        intraday: BarColumns | Iterable[Bar] = (),
        chunks: Sequence[DayChunks] = (),
        names: Iterable[Symbol] = (),
    ) -> None:
        self._decimals = Decimals()
        self._instants = Instants()
        self._cache_day: date | None = None
        day_columns = daily if isinstance(daily, BarColumns) else _of_objects(list(daily))
        minute_columns = (
            intraday if isinstance(intraday, BarColumns) else _of_objects(list(intraday))
        )
        given = [c for c in (day_columns, minute_columns) if c is not None]
        self._names = tuple(sorted({n for c in given for n in c.names} | set(names)))
        self._code = {name: i for i, name in enumerate(self._names)}
        present = {n for c in given for n in c.names}
        self._closes: dict[date, datetime] = {}
        self._regular: set[date] = set()
        self._chunks = tuple(chunks)
        self._chunk_of = {day: n for n, chunk in enumerate(self._chunks) for day in chunk.days}
        self._loaded: tuple[int, MinuteIndex | None] | None = None
        self._resident: MinuteIndex | None = None
        self.chunk_reads = 0
        parts: list[BarColumns] = []
        keys: list[Any] = []
        premarket: list[Any] = []
        indexes: list[Callable[[], BarColumns | None]] = [c.read for c in self._chunks]
        if minute_columns is not None:
            indexes.insert(0, lambda: minute_columns)
        for read in indexes:
            columns = read()
            if columns is None or not len(columns):
                continue
            present.update(columns.names)
            index = MinuteIndex(columns.recoded(self._names), self._names)
            if columns is minute_columns:
                self._resident = index
            self._closes.update(index.closes)
            self._regular.update(index.regular_days)
            keys.append(index.keys)
            premarket.append(index.premarket_keys)
            if index.aggregated is not None:
                parts.append(index.aggregated)
            del index, columns
            if self._chunks:
                release_freed()
        self._symbols = sorted(present)
        self._intraday_keys = np.unique(np.concatenate(keys)) if keys else _NO_KEYS
        self._premarket_span = _spans(np.concatenate(premarket) if premarket else _NO_KEYS)
        aggregated = concat_columns(parts)
        self._open_keys, self._opens = _NO_KEYS, np.zeros(0)
        if aggregated is not None:
            order = np.argsort(aggregated.code * PAIR_KEY + aggregated.day)
            self._open_keys = (aggregated.code * PAIR_KEY + aggregated.day)[order]
            self._opens = aggregated.open[order]
        self._daily = self._index_daily(
            None if day_columns is None else day_columns.recoded(self._names), aggregated
        )
        self._windows: dict[int, tuple[int, list[DailyBar]]] = {}
        if self._chunks:
            release_freed()

    @property
    def loaded_days(self) -> tuple[date, ...]:
        """The days whose minute bars are in memory now: all of them when given whole, else
        those of the chunks read last (a backtest's current day)."""
        index = self._resident
        if index is None and self._loaded is not None:
            index = self._loaded[1]
        return tuple(sorted(index.days)) if index is not None else ()

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

    def _minutes(self, day: date) -> MinuteIndex | None:
        """The minute bars of `day`: all of them when kept, else its chunks (read now unless
        they are the ones read last; those are freed first)."""
        if self._resident is not None:
            return self._resident
        number = self._chunk_of.get(day.toordinal())
        if number is None:
            return None
        if self._loaded is not None and self._loaded[0] == number:
            return self._loaded[1]
        self._loaded = None
        release_freed()
        columns = self._chunks[number].read()
        self.chunk_reads += 1
        index = None
        if columns is not None and len(columns):
            index = MinuteIndex(columns.recoded(self._names), self._names)
        self._loaded = (number, index)
        return index

    def _day(self, day: date) -> None:
        """Start making objects for `day`: the previous day's Decimal and datetime caches go."""
        if day != self._cache_day:
            self._cache_day = day
            self._decimals = Decimals()
            self._instants = Instants()

    async def symbols(self) -> Sequence[Symbol]:
        """Return every symbol with daily or intraday data, sorted."""
        return list(self._symbols)

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Return up to `count` daily bars of sessions strictly before `before`, oldest first."""
        code = self._code.get(symbol)
        if code is None or count <= 0:
            return []
        self._day(before)
        lo, hi = int(self._daily_bounds[code]), int(self._daily_bounds[code + 1])
        cut = lo + int(np.searchsorted(self._daily.day[lo:hi], before.toordinal()))
        first = max(lo, cut - count)
        return self._window(code, first, cut)

    def _window(self, code: int, first: int, cut: int) -> list[DailyBar]:
        """Daily bars of rows first..cut, reusing those the symbol's last window made (a scan
        a day later asks for nearly the same bars); one window per symbol is kept."""
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
        self._day(day)
        key = code * PAIR_KEY + day.toordinal()
        span = self._premarket_span.get(code)
        if span and span[0] <= day.toordinal() <= span[1] and _holds(self._intraday_keys, key):
            index = self._minutes(day)
            limit = (as_of - _EPOCH_UTC) // timedelta(microseconds=1)
            found = None if index is None else index.premarket_last(key, limit)
            if found is not None:
                last = self._decimals.of([found[0]])[0]
                volume = found[1]
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
        if day not in self._regular:
            return []
        self._day(day)
        index = self._minutes(day)
        if index is None:
            return []
        wanted = [self._code[s] for s in set(symbols) if s in self._code]
        return index.session_bars(day, wanted, self._decimals, self._instants)

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
        key = code * PAIR_KEY + day.toordinal()
        at = int(np.searchsorted(self._open_keys, key))
        if at < len(self._open_keys) and self._open_keys[at] == key:
            return self._decimals.of([float(self._opens[at])])[0]
        return None


def _holds(keys: Any, key: int) -> bool:
    at = int(np.searchsorted(keys, key))
    return at < len(keys) and int(keys[at]) == key


def _spans(keys: Any) -> dict[int, tuple[int, int]]:
    """Per symbol code, the first and last day (ordinals) of the symbol-day `keys`."""
    keys = np.unique(keys)
    if not len(keys):
        return {}
    codes, days = keys // PAIR_KEY, keys % PAIR_KEY
    unique, firsts = np.unique(codes, return_index=True)
    lasts = np.append(firsts[1:], len(keys)) - 1
    return {
        code: (first, last)
        for code, first, last in zip(
            unique.tolist(), days[firsts].tolist(), days[lasts].tolist(), strict=True
        )
    }


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


def load_replay(
    paths: Sequence[Path],
    spec: BarFileSpec,
    *,
    resident_rows: int = RESIDENT_ROWS,
    chunk_rows: int = CHUNK_ROWS,
) -> ReplayLoad:
    """Read daily and/or intraday bar files under `spec` into a `ReplayMarketData`.

    Intraday files that are each one chunk (see `plan_bar_files`) are kept in memory; otherwise
    the market reads a day's minute bars when asked for it (the chunks of all intraday files
    that share days are read together). Raise `DataError` when no file is given or intraday
    files disagree on their interval.
    """
    if not paths:
        raise DataError("no bar files given: pass a daily file, an intraday file or both")
    plan = plan_bar_files(paths, spec, resident_rows=resident_rows, chunk_rows=chunk_rows)
    planned = plan.files
    intraday = [i for i, f in enumerate(planned) if f.decisions.kind is BarKind.INTRADAY]
    intervals = {planned[i].decisions.interval_secs for i in intraday}
    if len(intervals) > 1:
        listed = ", ".join(
            f"{planned[i].path.name}: {planned[i].decisions.interval_secs} s" for i in intraday
        )
        raise DataError(
            f"intraday files have different bar intervals ({listed}): pass one interval"
        )
    files: dict[int, BarFile] = {
        i: plan.read(i) for i, f in enumerate(planned) if f.decisions.kind is BarKind.DAILY
    }
    daily = concat_columns([f.columns for f in files.values() if f.columns])
    whole = all(len(planned[i].chunks) == 1 for i in intraday)
    if whole:
        files.update((i, plan.read(i)) for i in intraday)
        minutes = concat_columns([c for i in intraday if (c := files[i].columns) is not None])
        market = ReplayMarketData(
            daily=daily if daily is not None else (), intraday=minutes if minutes else ()
        )
    else:
        reads: dict[tuple[int, tuple[int, ...]], BarFile] = {}
        market = ReplayMarketData(
            daily=daily if daily is not None else (),
            chunks=_day_chunks(plan, intraday, reads),
            names=sorted({n for i in intraday for n in planned[i].names}),
        )
        for i in intraday:
            found = [f for (index, _), f in reads.items() if index == i]
            files[i] = BarFile(
                path=planned[i].path, kind=BarKind.INTRADAY,
                interval_secs=planned[i].decisions.interval_secs,
                bar_stamp=planned[i].decisions.bar_stamp,
                dropped=tuple(sorted((r for f in found for r in f.dropped), key=lambda r: r.row)),
                unadjusted_symbols=tuple(s for s in plan.missing if s in planned[i].names),
            )  # fmt: skip
    ordered = tuple(files[i] for i in range(len(planned)))
    return ReplayLoad(
        market_data=market,
        files=ordered,
        dropped=tuple(row for f in ordered for row in f.dropped),
        unadjusted_symbols=tuple(sorted({s for f in ordered for s in f.unadjusted_symbols})),
    )


def _day_chunks(
    plan: BarFilesPlan, intraday: Sequence[int], reads: dict[tuple[int, tuple[int, ...]], BarFile]
) -> list[DayChunks]:
    """The intraday files' chunks joined where they share a day (a day's bars are read, checked
    and deduplicated together), each group read into columns; `reads` keeps what each read
    found without its bars (its dropped rows), for the warning."""
    nodes = [(i, c) for i in intraday for c in range(len(plan.files[i].chunks))]
    parent = list(range(len(nodes)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    owner: dict[int, int] = {}
    for n, (i, c) in enumerate(nodes):
        for day in plan.files[i].chunk_days[c].tolist():
            if day in owner:
                parent[root(n)] = root(owner[day])
            else:
                owner[day] = n
    groups: dict[int, list[int]] = {}
    for n in range(len(nodes)):
        groups.setdefault(root(n), []).append(n)
    found: list[DayChunks] = []
    for members in groups.values():
        by_file: dict[int, list[int]] = {}
        for n in members:
            by_file.setdefault(nodes[n][0], []).append(nodes[n][1])
        parts = tuple((i, tuple(cs)) for i, cs in by_file.items())
        days = frozenset(d for n in members for d in plan.files[nodes[n][0]]
                         .chunk_days[nodes[n][1]].tolist())  # fmt: skip
        found.append(DayChunks(days=days, read=_reader(plan, parts, reads)))
    return found


def _reader(
    plan: BarFilesPlan,
    parts: tuple[tuple[int, tuple[int, ...]], ...],
    reads: dict[tuple[int, tuple[int, ...]], BarFile],
) -> Callable[[], BarColumns | None]:
    def read() -> BarColumns | None:
        columns: list[BarColumns] = []
        for part in parts:
            bar_file = plan.read(*part)
            if bar_file.columns is not None:
                columns.append(bar_file.columns)
            reads[part] = BarFile(path=bar_file.path, kind=bar_file.kind,
                                  dropped=bar_file.dropped)  # fmt: skip
        return concat_columns(columns)

    return read
