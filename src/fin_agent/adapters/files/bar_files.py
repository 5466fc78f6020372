"""Bar files (CSV, gzip CSV or Parquet) read into `DailyBar`s or `Bar`s under explicit conventions.

Stamps become aware UTC bar starts and prices `Decimal`s; rows a bar would refuse (missing values,
inconsistent OHLC, non-positive prices) are dropped and reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fin_agent.adapters.files.checks import MAX_VOLUME, DropReason, drop_reason
from fin_agent.adapters.files.columnar import BarColumns, Decimals, Instants, arrow_of, numpy_of
from fin_agent.adapters.files.columns import (
    PRICES,
    SYMBOL,
    TIME,
    VOLUME,
    as_floats,
    read_role_table,
)
from fin_agent.adapters.files.split_factors import SplitFactors, load_split_factors
from fin_agent.adapters.files.stamps import (
    EXCHANGE_TZ,
    BarStamp,
    Stamps,
    day_values,
    exchange_times,
    infer_bar_stamp,
    parse_stamps,
    to_instants,
)
from fin_agent.adapters.files.zones import check_session_zone
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.values import Bar, DailyBar, Symbol, symbol

__all__ = [
    "BarFile",
    "BarFileSpec",
    "BarKind",
    "BarStamp",
    "DropReason",
    "DroppedRow",
    "describe_dropped",
    "read_bar_file",
    "read_bar_files",
]

_PRICE_DECIMALS = 4
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class BarKind(StrEnum):
    """Whether a file holds one bar per session (daily) or bars within sessions (intraday)."""

    DAILY = "daily"
    INTRADAY = "intraday"


@dataclass(frozen=True, slots=True, kw_only=True)
class BarFileSpec:
    """The conventions of bar files that the files themselves do not state.

    `timezone` is the zone of naive stamps; `symbol` names the rows of files without a symbol
    column; with `factors_dir` (Lean factor files) prices are split-adjusted, else as traded.
    """

    timezone: str = "America/New_York"
    bar_stamp: BarStamp = BarStamp.AUTO
    symbol: str | None = None
    symbol_column: str | None = None
    factors_dir: Path | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"BarFileSpec.timezone {self.timezone!r} is not an IANA time zone: use for "
                "example America/New_York or UTC"
            ) from exc
        try:
            object.__setattr__(self, "bar_stamp", BarStamp(self.bar_stamp))
        except ValueError as exc:
            raise ConfigError(
                f"BarFileSpec.bar_stamp {self.bar_stamp!r} is not one of start, end or auto"
            ) from exc
        if self.symbol is not None:
            try:
                object.__setattr__(self, "symbol", symbol(self.symbol))
            except DataError as exc:
                raise ConfigError(f"BarFileSpec.symbol: {exc}") from exc

    @property
    def zone(self) -> ZoneInfo:
        """The zone naive stamps are read in."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True, kw_only=True)
class DroppedRow:
    """One row left out of a bar file: where it was (1-based data row), whose and why."""

    path: Path
    row: int
    symbol: str
    day: date | None
    reason: DropReason


@dataclass(frozen=True, slots=True, kw_only=True)
class BarFile:
    """One bar file read and normalised: its bars as columns, and the rows dropped.

    `daily` and `intraday` build the bar objects on demand; `unadjusted_symbols` lists symbols
    that had no factor file although `factors_dir` was set.
    """

    path: Path
    kind: BarKind
    columns: BarColumns | None = None
    interval_secs: int | None = None
    bar_stamp: BarStamp | None = None
    dropped: tuple[DroppedRow, ...] = ()
    unadjusted_symbols: tuple[Symbol, ...] = ()

    @property
    def daily(self) -> tuple[DailyBar, ...]:
        """The file's daily bars, by symbol then session (none in an intraday file)."""
        if self.columns is None or self.kind is not BarKind.DAILY:
            return ()
        return tuple(self.columns.daily_bars(slice(None), Decimals()))

    @property
    def intraday(self) -> tuple[Bar, ...]:
        """The file's intraday bars, by start then symbol (none in a daily file)."""
        if self.columns is None or self.kind is not BarKind.INTRADAY:
            return ()
        return tuple(self.columns.bars(slice(None), Decimals(), Instants()))


@dataclass(slots=True, kw_only=True)
class _Parsed:
    """A file's kept rows with placed stamps and float prices, before adjustment and checks:
    `code` indexes `names`; `day` is the exchange day (ordinal); intraday rows have `start_us`
    (UTC bar start) and `local_us` (µs since exchange midnight)."""

    path: Path
    kind: BarKind
    interval_secs: int | None
    bar_stamp: BarStamp | None
    rows: Ints
    names: list[Symbol]
    code: Ints
    day: Ints
    start_us: Ints | None
    local_us: Ints | None
    prices: dict[str, Floats]  # open, high, low, close, volume; NaN where missing
    dropped: list[DroppedRow]


def read_bar_file(path: Path, spec: BarFileSpec | None = None) -> BarFile:
    """Read one bar file; raise `DataError` naming the file when it cannot be used at all."""
    return read_bar_files([path], spec)[0]


def read_bar_files(paths: Sequence[Path], spec: BarFileSpec | None = None) -> tuple[BarFile, ...]:
    """Read bar files under one spec; split-adjusted prices are as traded on their last date."""
    spec = spec or BarFileSpec()
    parsed = [_parse(Path(path), spec) for path in paths]
    factors: dict[Symbol, SplitFactors] = {}
    all_symbols = {name for p in parsed for name in p.names}
    if spec.factors_dir is not None:
        factors = load_split_factors(spec.factors_dir, all_symbols)
    days = [int(p.day.max()) for p in parsed if len(p.day)]
    reference = date.fromordinal(max(days)) if days else None
    missing = tuple(sorted(all_symbols - set(factors))) if spec.factors_dir is not None else ()
    return tuple(_build(p, factors, reference, missing) for p in parsed)


def describe_dropped(rows: Sequence[DroppedRow], *, examples: int = 10) -> str:
    """Summarise dropped rows per file and rule: the count, how many symbols, and up to
    `examples` of them (one row each, with its day, else its row number), for a warning."""
    groups: dict[tuple[Path, DropReason], list[DroppedRow]] = {}
    for row in rows:
        groups.setdefault((row.path, row.reason), []).append(row)
    parts: list[str] = []
    for (path, reason), found in groups.items():
        first: dict[str, DroppedRow] = {}
        for row in found:
            first.setdefault(row.symbol, row)
        shown = ", ".join(
            f"{r.symbol or '(no symbol)'} {r.day if r.day is not None else f'row {r.row}'}"
            for r in list(first.values())[:examples]
        )
        more = f" and {len(first) - examples} more" if len(first) > examples else ""
        parts.append(
            f"{path.name}: {len(found)} row(s) of {len(first)} symbol(s) with {reason} "
            f"({shown}{more})"
        )
    return "; ".join(parts)


def _parse(path: Path, spec: BarFileSpec) -> _Parsed:
    table = read_role_table(path, symbol_column=spec.symbol_column, need_symbol=spec.symbol is None)
    count = table.num_rows
    if count == 0:
        raise DataError(f"{path} has no data rows: pass a file with bars")
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
            DroppedRow(path=path, row=index + 1, symbol=name or "", day=bad_day, reason=reason)
        )
    keep = np.flatnonzero(~bad)
    code = codes[keep]
    prices = {role: _floats(as_floats(path, table, role))[keep] for role in (*PRICES, VOLUME)}
    kept_raw = raw[keep]
    unique, inverse = np.unique(kept_raw, return_inverse=True)
    unique_stamps = Stamps(stamps.kind, unique.tolist())
    kind: BarKind = BarKind.DAILY
    start_us: Ints | None = None
    local_us: Ints | None = None
    interval: int | None = None
    stamp: BarStamp | None = None
    dates = day_values(unique_stamps)
    if dates is not None:
        day = np.array([d.toordinal() if d else 0 for d in dates], dtype=np.int64)[inverse]
    else:
        instants = [i for i in to_instants(unique_stamps, spec.zone) if i is not None]
        local = exchange_times(instants)
        day = np.array([t.toordinal() for t in local], dtype=np.int64)[inverse]
        pairs = code * 10_000_000 + day
        if len(pairs) and len(np.unique(pairs)) < len(pairs):
            check_session_zone(path, Stamps(stamps.kind, kept_raw.tolist()), spec.timezone)
            kind = BarKind.INTRADAY
            unique_us = np.array([_micros(i) for i in instants], dtype=np.int64)
            start_us = unique_us[inverse]
            interval = _interval_secs(code, start_us)
            if interval is None:
                raise DataError(f"{path}: cannot infer the bar interval: all stamps repeat")
            stamp = spec.bar_stamp
            if stamp is BarStamp.AUTO:
                stamp = infer_bar_stamp(path, local)
            if stamp is BarStamp.END:
                shift = timedelta(seconds=interval)
                local = exchange_times([i - shift for i in instants])
                start_us = start_us - interval * 1_000_000
                day = np.array([t.toordinal() for t in local], dtype=np.int64)[inverse]
            local_us = np.array([_clock_us(t) for t in local], dtype=np.int64)[inverse]
    return _Parsed(
        path=path,
        kind=kind,
        interval_secs=interval,
        bar_stamp=stamp,
        rows=keep + 1,
        names=names,
        code=code,
        day=day,
        start_us=start_us,
        local_us=local_us,
        prices=prices,
        dropped=dropped,
    )


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


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH_UTC) // timedelta(microseconds=1)


def _clock_us(local: datetime) -> int:
    return ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond


def _interval_secs(code: Ints, start_us: Ints) -> int | None:
    """The most common spacing between a symbol's consecutive bars, in seconds (the smallest of
    equally common ones)."""
    order = np.lexsort((start_us, code))
    codes, starts = code[order], start_us[order]
    spacing = np.diff(starts)
    usable = (codes[1:] == codes[:-1]) & (spacing > 0)
    secs = spacing[usable] // 1_000_000
    if not len(secs):
        return None
    values, counts = np.unique(secs, return_counts=True)
    return int(values[counts == counts.max()].min())


def _valid_symbols(names: Sequence[str | None]) -> dict[str, Symbol]:
    valid: dict[str, Symbol] = {}
    for name in set(names):
        if name:
            try:
                valid[name] = symbol(name)
            except DataError:
                continue
    return valid


def _build(
    parsed: _Parsed,
    factors: Mapping[Symbol, SplitFactors],
    reference: date | None,
    unadjusted: tuple[Symbol, ...],
) -> BarFile:
    columns: dict[str, Floats] = dict(parsed.prices)
    if factors and reference is not None and len(parsed.code):
        pairs = parsed.code * 10_000_000 + parsed.day
        unique, inverse = np.unique(pairs, return_inverse=True)
        ratios = [
            factors[name].ratio(date.fromordinal(int(key % 10_000_000)), reference)
            if (name := parsed.names[int(key // 10_000_000)]) in factors
            else 1.0
            for key in unique.tolist()
        ]
        ratio = np.array(ratios, dtype=np.float64)[inverse]
        columns = {role: values * ratio for role, values in columns.items()}
        columns[VOLUME] = parsed.prices[VOLUME] / ratio
    for role in PRICES:  # Arrow's rounding, as before the columns
        columns[role] = _rounded(columns[role], _PRICE_DECIMALS)
    columns[VOLUME] = _rounded(columns[VOLUME], 0)
    good = _good_rows(columns)
    dropped = list(parsed.dropped)
    for index in np.flatnonzero(~good).tolist():
        row = {role: float(values[index]) for role, values in columns.items()}
        dropped.append(_dropped(parsed, index, drop_reason(row)))
    keep = np.flatnonzero(good)
    when = parsed.day if parsed.start_us is None else parsed.start_us
    code, when = parsed.code[keep], when[keep]
    order = np.lexsort((when, code))  # stable: a repeated stamp's first row comes first
    repeated = np.zeros(len(order), dtype=bool)
    repeated[1:] = (code[order][1:] == code[order][:-1]) & (when[order][1:] == when[order][:-1])
    for at in np.sort(order[repeated]).tolist():
        dropped.append(_dropped(parsed, int(keep[at]), DropReason.DUPLICATE))
    chosen = order[~repeated]
    if parsed.start_us is not None:  # intraday by (start, symbol), daily by (symbol, session)
        chosen = chosen[np.lexsort((code[chosen], when[chosen]))]
    rows = keep[chosen]
    present = np.unique(parsed.code[rows])
    remap = np.full(len(parsed.names) + 1, -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    names = tuple(parsed.names[i] for i in present.tolist())
    bars = BarColumns(
        names=names,
        code=remap[parsed.code[rows]],
        day=parsed.day[rows],
        open=columns["open"][rows],
        high=columns["high"][rows],
        low=columns["low"][rows],
        close=columns["close"][rows],
        volume=columns[VOLUME][rows].astype(np.int64),
        start_us=None if parsed.start_us is None else parsed.start_us[rows],
        local_us=None if parsed.local_us is None else parsed.local_us[rows],
        interval_secs=parsed.interval_secs or 60,
    )
    dropped.sort(key=lambda r: r.row)
    return BarFile(
        path=parsed.path,
        kind=parsed.kind,
        columns=bars,
        interval_secs=parsed.interval_secs,
        bar_stamp=parsed.bar_stamp,
        dropped=tuple(dropped),
        unadjusted_symbols=tuple(s for s in unadjusted if s in set(parsed.names)),
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


def _dropped(parsed: _Parsed, index: int, reason: DropReason) -> DroppedRow:
    return DroppedRow(
        path=parsed.path,
        row=int(parsed.rows[index]),
        symbol=parsed.names[int(parsed.code[index])],
        day=date.fromordinal(int(parsed.day[index])),
        reason=reason,
    )
