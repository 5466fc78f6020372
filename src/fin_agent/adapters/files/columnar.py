"""`BarColumns`: bars held as columns (numpy arrays), made into `Bar`/`DailyBar` objects only when
asked for: a backtest builds objects for the bars a day trades, not for every row of its files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fin_agent.domain.values import Bar, DailyBar, Symbol

__all__ = [
    "BarColumns",
    "Decimals",
    "Instants",
    "arrow_of",
    "columns_of",
    "concat_columns",
    "numpy_of",
]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Decimals:
    """Floats rounded to 4 dp as Decimals by their shortest repr (170.7701, not
    170.77010000001), each value made once."""

    def __init__(self) -> None:
        self._cache: dict[float, Decimal] = {}

    def of(self, values: Sequence[float]) -> list[Decimal]:
        """The Decimal of each float."""
        cache = self._cache
        out: list[Decimal] = []
        for value in values:
            found = cache.get(value)
            if found is None:
                found = cache[value] = Decimal(repr(value))
            out.append(found)
        return out


class Instants:
    """Microseconds since 1970 as aware UTC datetimes, each made once."""

    def __init__(self) -> None:
        self._cache: dict[int, datetime] = {}

    def of(self, values: Sequence[int]) -> list[datetime]:
        """The datetime of each stamp."""
        cache = self._cache
        out: list[datetime] = []
        for value in values:
            found = cache.get(value)
            if found is None:
                found = cache[value] = _EPOCH_UTC + timedelta(microseconds=value)
            out.append(found)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BarColumns:
    """Bars as columns: `code` indexes `names`; `day` is the exchange day (proleptic ordinal);
    intraday bars also have `start_us` (UTC bar start, µs since 1970) and `local_us` (µs since
    exchange midnight). Prices are floats rounded to 4 dp. `objects`: the bars these columns
    were made from, returned as they were (exact Decimals) instead of being rebuilt."""

    names: tuple[Symbol, ...]
    code: Ints
    day: Ints
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Ints
    start_us: Ints | None = None
    local_us: Ints | None = None
    interval_secs: int = 60
    objects: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return len(self.code)

    @property
    def intraday(self) -> bool:
        """Whether these are bars within sessions (else one bar per session)."""
        return self.start_us is not None

    def times(self) -> tuple[Ints, Ints]:
        """`start_us` and `local_us` of intraday columns; TypeError for daily ones."""
        if self.start_us is None or self.local_us is None:
            raise TypeError("daily columns have no bar times")
        return self.start_us, self.local_us

    def take(self, rows: Any) -> BarColumns:
        """The columns of `rows` (an index array or a boolean mask), same names."""
        pick = _pick(self.objects, rows)
        return BarColumns(
            names=self.names,
            code=self.code[rows],
            day=self.day[rows],
            open=self.open[rows],
            high=self.high[rows],
            low=self.low[rows],
            close=self.close[rows],
            volume=self.volume[rows],
            start_us=None if self.start_us is None else self.start_us[rows],
            local_us=None if self.local_us is None else self.local_us[rows],
            interval_secs=self.interval_secs,
            objects=pick,
        )

    def recoded(self, names: Sequence[Symbol]) -> BarColumns:
        """The same bars with codes into `names` (which holds every name of these)."""
        where = {name: i for i, name in enumerate(names)}
        table = np.array([where[name] for name in self.names] or [0], dtype=np.int64)
        return _replace_codes(self, tuple(names), table[self.code] if len(self) else self.code)

    def daily_bars(self, rows: Any, decimals: Decimals) -> list[DailyBar]:
        """`DailyBar`s of `rows` (a slice or an index array)."""
        if self.objects is not None:
            return list(_pick(self.objects, rows) or ())
        names = self.names
        opens, highs, lows, closes = (
            decimals.of(column[rows].tolist())
            for column in (self.open, self.high, self.low, self.close)
        )
        return [
            DailyBar(symbol=names[c], session=date.fromordinal(d), open=o, high=h, low=lo,
                     close=cl, volume=v)
            for c, d, o, h, lo, cl, v in zip(
                self.code[rows].tolist(), self.day[rows].tolist(), opens, highs, lows, closes,
                self.volume[rows].tolist(), strict=True,
            )
        ]  # fmt: skip

    def bars(self, rows: Any, decimals: Decimals, instants: Instants) -> list[Bar]:
        """Intraday `Bar`s of `rows` (a slice or an index array)."""
        if self.objects is not None:
            return list(_pick(self.objects, rows) or ())
        start_us, _ = self.times()
        names, interval = self.names, self.interval_secs
        opens, highs, lows, closes = (
            decimals.of(column[rows].tolist())
            for column in (self.open, self.high, self.low, self.close)
        )
        starts = instants.of(start_us[rows].tolist())
        return [
            Bar(symbol=names[c], start=s, open=o, high=h, low=lo, close=cl, volume=v,
                interval_secs=interval)
            for c, s, o, h, lo, cl, v in zip(
                self.code[rows].tolist(), starts, opens, highs, lows, closes,
                self.volume[rows].tolist(), strict=True,
            )
        ]  # fmt: skip


def _pick(objects: tuple[Any, ...] | None, rows: Any) -> tuple[Any, ...] | None:
    if objects is None:
        return None
    if isinstance(rows, slice):
        return objects[rows]
    index = np.asarray(rows)
    if index.dtype == np.bool_:
        index = np.flatnonzero(index)
    return tuple(objects[i] for i in index.tolist())


def _replace_codes(columns: BarColumns, names: tuple[Symbol, ...], code: Ints) -> BarColumns:
    return BarColumns(
        names=names,
        code=code,
        day=columns.day,
        open=columns.open,
        high=columns.high,
        low=columns.low,
        close=columns.close,
        volume=columns.volume,
        start_us=columns.start_us,
        local_us=columns.local_us,
        interval_secs=columns.interval_secs,
        objects=columns.objects,
    )


def concat_columns(parts: Sequence[BarColumns]) -> BarColumns | None:
    """One set of columns from several (codes into the union of their names), or None."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    names = tuple(sorted({name for p in parts for name in p.names}))
    parts = [p.recoded(names) for p in parts]
    intraday = parts[0].intraday

    def joined(field: str) -> Any:
        return np.concatenate([getattr(p, field) for p in parts])

    objects = None
    if all(p.objects is not None for p in parts):
        objects = tuple(o for p in parts for o in (p.objects or ()))
    return BarColumns(
        names=names,
        code=joined("code"),
        day=joined("day"),
        open=joined("open"),
        high=joined("high"),
        low=joined("low"),
        close=joined("close"),
        volume=joined("volume"),
        start_us=joined("start_us") if intraday else None,
        local_us=joined("local_us") if intraday else None,
        interval_secs=parts[0].interval_secs,
        objects=objects,
    )


def columns_of(bars: Sequence[Bar] | Sequence[DailyBar], exchange_tz: Any) -> BarColumns:
    """Columns of bar objects (the objects kept, returned as they are)."""
    names = tuple(sorted({b.symbol for b in bars}))
    where = {name: i for i, name in enumerate(names)}
    intraday = any(isinstance(b, Bar) for b in bars)
    starts: list[int] = []
    locals_: list[int] = []
    days: list[int] = []
    for b in bars:
        if isinstance(b, Bar):
            starts.append((b.start - _EPOCH_UTC) // timedelta(microseconds=1))
            local = b.start.astimezone(exchange_tz)
            days.append(local.date().toordinal())
            clock = local.time()
            locals_.append(
                ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000
                + clock.microsecond
            )
        else:
            days.append(b.session.toordinal())

    def floats(values: list[Decimal]) -> Floats:
        return np.array([float(v) for v in values], dtype=np.float64)

    return BarColumns(
        names=names,
        code=np.array([where[b.symbol] for b in bars], dtype=np.int64),
        day=np.array(days, dtype=np.int64),
        open=floats([b.open for b in bars]),
        high=floats([b.high for b in bars]),
        low=floats([b.low for b in bars]),
        close=floats([b.close for b in bars]),
        volume=np.array([b.volume for b in bars], dtype=np.int64),
        start_us=np.array(starts, dtype=np.int64) if intraday else None,
        local_us=np.array(locals_, dtype=np.int64) if intraday else None,
        interval_secs=next((b.interval_secs for b in bars if isinstance(b, Bar)), 60),
        objects=tuple(bars),
    )


def ordinal_of_epoch_day(days: Ints) -> Ints:
    """Days since 1970 as proleptic ordinals."""
    return days + _EPOCH_ORDINAL


# Arrow <-> numpy through the buffers: pyarrow's own conversions (to_numpy, pa.array, pa.scalar)
# import pandas, which costs more than reading a bar file.


def numpy_of(column: Any, dtype: Any) -> tuple[Any, Any]:
    """A fixed-width Arrow array (or chunked array) of `dtype` as numpy values and a validity
    mask (the values under a null are unspecified)."""
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    count, offset = len(array), array.offset
    buffers = array.buffers()
    if count == 0 or buffers[1] is None:
        return np.zeros(count, dtype=dtype), np.ones(count, dtype=bool)
    values = np.frombuffer(buffers[1], dtype=dtype, count=offset + count)[offset:]
    if buffers[0] is None or array.null_count == 0:
        return values, np.ones(count, dtype=bool)
    bits = np.unpackbits(np.frombuffer(buffers[0], dtype=np.uint8), bitorder="little")
    return values, bits[offset : offset + count].astype(bool)


def arrow_of(values: Any, kind: Any) -> Any:
    """A numpy array as an Arrow array of type `kind` (no nulls)."""
    data: Any = np.ascontiguousarray(values)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])
