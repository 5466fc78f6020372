"""Bar files (CSV, gzip CSV or Parquet) read into `DailyBar`s or `Bar`s under explicit conventions.

Stamps become aware UTC bar starts and prices `Decimal`s; rows a bar would refuse (missing values,
inconsistent OHLC, non-positive prices) are dropped and reported, never fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc

from fin_agent.adapters.files.checks import (
    DropReason,
    decimals,
    drop_reason,
    floats,
    good_rows,
    ints,
)
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
    BarStamp,
    Stamps,
    day_values,
    exchange_times,
    infer_bar_stamp,
    infer_interval_secs,
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
    """One bar file read and normalised: its daily or its intraday bars, and the rows dropped.

    `unadjusted_symbols` lists symbols that had no factor file although `factors_dir` was set.
    """

    path: Path
    kind: BarKind
    daily: tuple[DailyBar, ...] = ()
    intraday: tuple[Bar, ...] = ()
    interval_secs: int | None = None
    bar_stamp: BarStamp | None = None
    dropped: tuple[DroppedRow, ...] = ()
    unadjusted_symbols: tuple[Symbol, ...] = ()


@dataclass(slots=True, kw_only=True)
class _Parsed:
    """A file's rows with placed stamps and float prices, before adjustment and validation."""

    path: Path
    kind: BarKind
    interval_secs: int | None
    bar_stamp: BarStamp | None
    rows: list[int]
    symbols: list[Symbol]
    days: list[date]
    starts: list[datetime] | None
    prices: dict[str, Any]  # float64 Arrow arrays: open, high, low, close, volume
    dropped: list[DroppedRow]


def read_bar_file(path: Path, spec: BarFileSpec | None = None) -> BarFile:
    """Read one bar file; raise `DataError` naming the file when it cannot be used at all."""
    return read_bar_files([path], spec)[0]


def read_bar_files(paths: Sequence[Path], spec: BarFileSpec | None = None) -> tuple[BarFile, ...]:
    """Read bar files under one spec; split-adjusted prices are as traded on their last date."""
    spec = spec or BarFileSpec()
    parsed = [_parse(Path(path), spec) for path in paths]
    factors: dict[Symbol, SplitFactors] = {}
    all_symbols = {name for p in parsed for name in p.symbols}
    if spec.factors_dir is not None:
        factors = load_split_factors(spec.factors_dir, all_symbols)
    days = [max(p.days) for p in parsed if p.days]
    reference = max(days) if days else None
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
    if SYMBOL in table.column_names:
        text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table[SYMBOL], pa.string())))
        names: list[str | None] = text.to_pylist()
    else:
        names = [spec.symbol] * count
    valid = _valid_symbols(names)
    stamps = parse_stamps(path, table[TIME])
    dropped: list[DroppedRow] = []
    keep: list[int] = []
    for index, (name, raw) in enumerate(zip(names, stamps.values, strict=True)):
        reason = None
        if not name or raw is None:
            reason = DropReason.MISSING_VALUE
        elif name not in valid:
            reason = DropReason.BAD_SYMBOL
        if reason is None:
            keep.append(index)
        else:
            dropped.append(
                DroppedRow(path=path, row=index + 1, symbol=name or "", day=None, reason=reason)
            )
    symbols = [valid[names[i] or ""] for i in keep]
    prices = {role: as_floats(path, table, role).take(keep) for role in (*PRICES, VOLUME)}
    kept_stamps = Stamps(stamps.kind, [stamps.values[i] for i in keep])
    kind, starts = BarKind.DAILY, None
    interval: int | None = None
    stamp: BarStamp | None = None
    dates = day_values(kept_stamps)
    if dates is not None:
        days = [d for d in dates if d is not None]
    else:
        instants = [i for i in to_instants(kept_stamps, spec.zone) if i is not None]
        local = exchange_times(instants)
        days = [t.date() for t in local]
        per_day = Counter(zip(symbols, days, strict=True))
        if per_day and max(per_day.values()) > 1:
            check_session_zone(path, kept_stamps, spec.timezone)
            kind, starts = BarKind.INTRADAY, instants
            interval = infer_interval_secs(symbols, instants)
            if interval is None:
                raise DataError(f"{path}: cannot infer the bar interval: all stamps repeat")
            stamp = spec.bar_stamp
            if stamp is BarStamp.AUTO:
                stamp = infer_bar_stamp(path, local)
            if stamp is BarStamp.END:
                shift = timedelta(seconds=interval)
                starts = [i - shift for i in instants]
                days = [t.date() for t in exchange_times(starts)]
    return _Parsed(
        path=path,
        kind=kind,
        interval_secs=interval,
        bar_stamp=stamp,
        rows=[i + 1 for i in keep],
        symbols=symbols,
        days=days,
        starts=starts,
        prices=prices,
        dropped=dropped,
    )


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
    columns: dict[str, Any] = dict(parsed.prices)
    if factors and reference is not None:
        ratios = [
            factors[name].ratio(day, reference) if name in factors else 1.0
            for name, day in zip(parsed.symbols, parsed.days, strict=True)
        ]
        ratio = pa.array(ratios, pa.float64())
        columns = {role: pc.multiply(values, ratio) for role, values in columns.items()}
        columns[VOLUME] = pc.divide(parsed.prices[VOLUME], ratio)
    for role in PRICES:
        columns[role] = pc.round(columns[role], _PRICE_DECIMALS)
    columns[VOLUME] = pc.round(columns[VOLUME], 0)
    table = pa.table(columns)
    good = good_rows(table)
    dropped = list(parsed.dropped)
    for index in ints(pc.indices_nonzero(pc.invert(good))):
        row = {role: table[role][index].as_py() for role in table.column_names}
        dropped.append(_dropped(parsed, index, drop_reason(row)))
    keep = ints(pc.indices_nonzero(good))
    table = table.filter(good)
    opens, highs, lows, closes = (decimals(floats(table[role])) for role in PRICES)
    volumes = ints(pc.cast(table[VOLUME], pa.int64()))
    daily: list[DailyBar] = []
    intraday: list[Bar] = []
    seen: set[tuple[Symbol, date | datetime]] = set()
    for at, index in enumerate(keep):
        name = parsed.symbols[index]
        key: tuple[Symbol, date | datetime] = (
            name,
            parsed.days[index] if parsed.starts is None else parsed.starts[index],
        )
        if key in seen:
            dropped.append(_dropped(parsed, index, DropReason.DUPLICATE))
            continue
        seen.add(key)
        if parsed.starts is None:
            daily.append(
                DailyBar(
                    symbol=name,
                    session=parsed.days[index],
                    open=opens[at],
                    high=highs[at],
                    low=lows[at],
                    close=closes[at],
                    volume=volumes[at],
                )
            )
        else:
            intraday.append(
                Bar(
                    symbol=name,
                    start=parsed.starts[index],
                    open=opens[at],
                    high=highs[at],
                    low=lows[at],
                    close=closes[at],
                    volume=volumes[at],
                    interval_secs=parsed.interval_secs or 60,
                )
            )
    daily.sort(key=lambda b: (b.symbol, b.session))
    intraday.sort(key=lambda b: (b.start, b.symbol))
    dropped.sort(key=lambda r: r.row)
    return BarFile(
        path=parsed.path,
        kind=parsed.kind,
        daily=tuple(daily),
        intraday=tuple(intraday),
        interval_secs=parsed.interval_secs,
        bar_stamp=parsed.bar_stamp,
        dropped=tuple(dropped),
        unadjusted_symbols=tuple(s for s in unadjusted if s in set(parsed.symbols)),
    )


def _dropped(parsed: _Parsed, index: int, reason: DropReason) -> DroppedRow:
    return DroppedRow(
        path=parsed.path,
        row=parsed.rows[index],
        symbol=parsed.symbols[index],
        day=parsed.days[index],
        reason=reason,
    )
