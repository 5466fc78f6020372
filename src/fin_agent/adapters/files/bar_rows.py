"""The rows of a bar file (or of some of its row groups) parsed, placed and checked.

Three steps, so that a file read in chunks decides once what holds for the whole file:
`read_rows` names the symbols and parses the stamps of a table (dropping rows without a usable
symbol or stamp); `place_rows` puts each row on its exchange day and bar start under the file's
`FileDecisions`; `build_file` split-adjusts, rounds and drops the rows a bar would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fin_agent.adapters.files.bar_spec import (
    BarFile,
    BarFileSpec,
    BarKind,
    DroppedRow,
    FileDecisions,
)
from fin_agent.adapters.files.checks import MAX_VOLUME, DropReason, drop_reason
from fin_agent.adapters.files.columnar import BarColumns, arrow_of, numpy_of
from fin_agent.adapters.files.columns import PRICES, SYMBOL, TIME, VOLUME, as_floats
from fin_agent.adapters.files.split_factors import SplitFactors
from fin_agent.adapters.files.stamps import (
    EXCHANGE_TZ,
    BarStamp,
    StampKind,
    Stamps,
    day_values,
    exchange_times,
    parse_stamps,
    to_instants,
)
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Symbol, symbol

__all__ = ["PAIR_KEY", "RawRows", "build_file", "micros", "place_rows", "read_rows"]

_PRICE_DECIMALS = 4
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
PAIR_KEY = 10_000_000  # (symbol code, day ordinal) as one integer: code * PAIR_KEY + ordinal
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(slots=True, kw_only=True)
class RawRows:
    """A table's rows with a symbol and a stamp: `code` indexes `names`, `rows` are 1-based file
    rows, `stamps` raw values of `kind`; `unique`/`inverse` the distinct stamps, with `dates`
    when they carry no time of day. `prices` (open..volume, NaN where missing) unless only the
    time and symbol were read."""

    path: Path
    names: list[Symbol]
    code: Ints
    rows: Ints
    kind: StampKind
    stamps: Ints
    unique: Ints
    inverse: Ints
    dates: list[date | None] | None
    prices: dict[str, Floats] | None
    dropped: list[DroppedRow]
    zone: Any
    _local: list[datetime] | None = field(default=None)

    def instants(self) -> list[datetime]:
        """The distinct stamps as aware UTC instants."""
        return [i for i in to_instants(Stamps(self.kind, self.unique.tolist()), self.zone) if i]

    def local(self) -> list[datetime]:
        """The distinct stamps as exchange wall-clock times (made once)."""
        if self._local is None:
            self._local = exchange_times(self.instants())
        return self._local


@dataclass(slots=True, kw_only=True)
class Placed:
    """Rows on their exchange day (ordinal); intraday rows with `start_us` (UTC bar start) and
    `local_us` (µs since exchange midnight), before adjustment and checks."""

    raw: RawRows
    decisions: FileDecisions
    day: Ints
    start_us: Ints | None
    local_us: Ints | None


def read_rows(
    path: Path, table: pa.Table, spec: BarFileSpec, row_numbers: Ints, *, prices: bool = True
) -> RawRows:
    """Name the symbols and parse the stamps of `table` (rows numbered `row_numbers`, 1-based);
    rows without a valid symbol or a stamp are dropped."""
    count = table.num_rows
    raw_names, name_index = _name_codes(table, spec, count)
    valid = _valid_symbols(raw_names)
    names = sorted(set(valid.values()))
    where = {name: i for i, name in enumerate(names)}
    # per raw name: its code, -1 missing, -2 not a symbol
    lookup = np.array(
        [where[valid[n]] if n in valid else (-1 if not n else -2) for n in raw_names] + [-1],
        dtype=np.int64,
    )
    codes = lookup[name_index]
    stamps = parse_stamps(path, table[TIME])
    stamp_missing = np.array([v is None for v in stamps.values], dtype=bool)
    raw = np.array([v or 0 for v in stamps.values], dtype=np.int64)
    bad = (codes < 0) | stamp_missing
    dropped: list[DroppedRow] = []
    bad_rows = np.flatnonzero(bad).tolist()
    bad_days = _days_of(stamps, [None if stamp_missing[i] else int(raw[i]) for i in bad_rows], spec)
    for index, bad_day in zip(bad_rows, bad_days, strict=True):
        name = raw_names[name_index[index]] if name_index[index] < len(raw_names) else None
        reason = (
            DropReason.MISSING_VALUE if not name or stamp_missing[index] else DropReason.BAD_SYMBOL
        )
        dropped.append(
            DroppedRow(
                path=path, row=int(row_numbers[index]), symbol=name or "", day=bad_day,
                reason=reason,
            )
        )  # fmt: skip
    keep = np.flatnonzero(~bad)
    floats = None
    if prices:
        floats = {role: _floats(as_floats(path, table, role))[keep] for role in (*PRICES, VOLUME)}
    kept_raw = raw[keep]
    unique, inverse = np.unique(kept_raw, return_inverse=True)
    return RawRows(
        path=path,
        names=names,
        code=codes[keep],
        rows=row_numbers[keep],
        kind=stamps.kind,
        stamps=kept_raw,
        unique=unique,
        inverse=inverse.reshape(-1),
        dates=day_values(Stamps(stamps.kind, unique.tolist())),
        prices=floats,
        dropped=dropped,
        zone=spec.zone,
    )


def place_rows(raw: RawRows, decisions: FileDecisions) -> Placed:
    """Each row's exchange day, and of an intraday file its bar start and clock time, under the
    file's `decisions` (a bar-end stamp moves back by the interval)."""
    inverse = raw.inverse
    if decisions.kind is BarKind.DAILY and raw.dates is not None:
        day = np.array([d.toordinal() if d else 0 for d in raw.dates], dtype=np.int64)[inverse]
        return Placed(raw=raw, decisions=decisions, day=day, start_us=None, local_us=None)
    local = raw.local()
    if decisions.kind is BarKind.DAILY:
        day = np.array([t.toordinal() for t in local], dtype=np.int64)[inverse]
        return Placed(raw=raw, decisions=decisions, day=day, start_us=None, local_us=None)
    instants = raw.instants()
    start_us = np.array([micros(i) for i in instants], dtype=np.int64)[inverse]
    if decisions.bar_stamp is BarStamp.END and decisions.interval_secs:
        shift = timedelta(seconds=decisions.interval_secs)
        local = exchange_times([i - shift for i in instants])
        start_us = start_us - decisions.interval_secs * 1_000_000
    day = np.array([t.toordinal() for t in local], dtype=np.int64)[inverse]
    local_us = np.array([_clock_us(t) for t in local], dtype=np.int64)[inverse]
    return Placed(raw=raw, decisions=decisions, day=day, start_us=start_us, local_us=local_us)


def micros(instant: datetime) -> int:
    """An instant as µs since 1970."""
    return (instant - _EPOCH_UTC) // timedelta(microseconds=1)


def _days_of(stamps: Stamps, values: Sequence[int | None], spec: BarFileSpec) -> list[date | None]:
    """The exchange days of some rows' raw stamps (None where a row has none), for the dropped
    rows' warning: a row dropped before its bar was placed still shows its day."""
    if not values:
        return []
    some = Stamps(stamps.kind, list(values))
    dates = day_values(some)
    if dates is not None:
        return dates
    instants = to_instants(some, spec.zone)
    return [None if i is None else i.astimezone(EXCHANGE_TZ).date() for i in instants]


def _name_codes(table: pa.Table, spec: BarFileSpec, count: int) -> tuple[list[str | None], Ints]:
    """The distinct raw names (upper case, trimmed) and each row's index into them (a missing
    name indexes one past the end)."""
    if SYMBOL not in table.column_names:
        return [spec.symbol], np.zeros(count, dtype=np.int64)
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table[SYMBOL], pa.string())))
    encoded: Any = pc.dictionary_encode(text.combine_chunks())
    raw_names: list[str | None] = encoded.dictionary.to_pylist()
    values, valid = numpy_of(pc.cast(encoded.indices, pa.int64()), np.int64)
    return raw_names, np.where(valid, values, len(raw_names))


def _floats(column: Any) -> Floats:
    """A float64 Arrow column as numpy, NaN for null."""
    values, valid = numpy_of(column, np.float64)
    return np.where(valid, values, np.nan)


def _clock_us(local: datetime) -> int:
    return ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond


def _valid_symbols(names: Sequence[str | None]) -> dict[str, Symbol]:
    valid: dict[str, Symbol] = {}
    for name in set(names):
        if name:
            try:
                valid[name] = symbol(name)
            except DataError:
                continue
    return valid


def build_file(
    placed: Placed,
    factors: Mapping[Symbol, SplitFactors],
    reference: date | None,
    unadjusted: tuple[Symbol, ...],
) -> BarFile:
    """The placed rows split-adjusted to `reference`, rounded, checked and deduplicated (the
    first of rows with one symbol and stamp is kept), as a `BarFile`."""
    raw = placed.raw
    if raw.prices is None:
        raise TypeError("rows read without prices cannot be built into bars")
    columns: dict[str, Floats] = dict(raw.prices)
    if factors and reference is not None and len(raw.code):
        pairs = raw.code * PAIR_KEY + placed.day
        unique, inverse = np.unique(pairs, return_inverse=True)
        ratios = [
            factors[name].ratio(date.fromordinal(int(key % PAIR_KEY)), reference)
            if (name := raw.names[int(key // PAIR_KEY)]) in factors
            else 1.0
            for key in unique.tolist()
        ]
        ratio = np.array(ratios, dtype=np.float64)[inverse.reshape(-1)]
        columns = {role: values * ratio for role, values in columns.items()}
        columns[VOLUME] = raw.prices[VOLUME] / ratio
    for role in PRICES:  # Arrow's rounding, as before the columns
        columns[role] = _rounded(columns[role], _PRICE_DECIMALS)
    columns[VOLUME] = _rounded(columns[VOLUME], 0)
    good = _good_rows(columns)
    dropped = list(raw.dropped)
    for index in np.flatnonzero(~good).tolist():
        row = {role: float(values[index]) for role, values in columns.items()}
        dropped.append(_dropped(placed, index, drop_reason(row)))
    keep = np.flatnonzero(good)
    when = placed.day if placed.start_us is None else placed.start_us
    code, when = raw.code[keep], when[keep]
    order = np.lexsort((when, code))  # stable: a repeated stamp's first row comes first
    repeated = np.zeros(len(order), dtype=bool)
    repeated[1:] = (code[order][1:] == code[order][:-1]) & (when[order][1:] == when[order][:-1])
    for at in np.sort(order[repeated]).tolist():
        dropped.append(_dropped(placed, int(keep[at]), DropReason.DUPLICATE))
    chosen = order[~repeated]
    if placed.start_us is not None:  # intraday by (start, symbol), daily by (symbol, session)
        chosen = chosen[np.lexsort((code[chosen], when[chosen]))]
    rows = keep[chosen]
    present = np.unique(raw.code[rows])
    remap = np.full(len(raw.names) + 1, -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    names = tuple(raw.names[i] for i in present.tolist())
    decisions = placed.decisions
    bars = BarColumns(
        names=names,
        code=remap[raw.code[rows]],
        day=placed.day[rows],
        open=columns["open"][rows],
        high=columns["high"][rows],
        low=columns["low"][rows],
        close=columns["close"][rows],
        volume=columns[VOLUME][rows].astype(np.int64),
        start_us=None if placed.start_us is None else placed.start_us[rows],
        local_us=None if placed.local_us is None else placed.local_us[rows],
        interval_secs=decisions.interval_secs or 60,
    )
    dropped.sort(key=lambda r: r.row)
    return BarFile(
        path=raw.path,
        kind=decisions.kind,
        columns=bars,
        interval_secs=decisions.interval_secs,
        bar_stamp=decisions.bar_stamp,
        dropped=tuple(dropped),
        unadjusted_symbols=tuple(s for s in unadjusted if s in set(raw.names)),
    )


def _rounded(values: Floats, digits: int) -> Floats:
    rounded = pc.round(arrow_of(values, pa.float64()), digits)
    found: Floats = numpy_of(rounded, np.float64)[0].copy()
    return found


def _good_rows(columns: Mapping[str, Floats]) -> Any:
    """True where a row makes a valid bar: every value finite, prices positive, high and low
    bounding the others, the volume a count below `MAX_VOLUME`."""
    open_, high, low, close, volume = (columns[role] for role in (*PRICES, VOLUME))
    with np.errstate(invalid="ignore"):
        good = np.isfinite(open_) & np.isfinite(high) & np.isfinite(low) & np.isfinite(close)
        good &= np.isfinite(volume) & (volume < MAX_VOLUME) & (volume >= 0)
        good &= np.minimum(np.minimum(open_, high), np.minimum(low, close)) > 0
        good &= high >= np.maximum(np.maximum(open_, close), low)
        good &= low <= np.minimum(open_, close)
    return good


def _dropped(placed: Placed, index: int, reason: DropReason) -> DroppedRow:
    raw = placed.raw
    return DroppedRow(
        path=raw.path,
        row=int(raw.rows[index]),
        symbol=raw.names[int(raw.code[index])],
        day=date.fromordinal(int(placed.day[index])),
        reason=reason,
    )
