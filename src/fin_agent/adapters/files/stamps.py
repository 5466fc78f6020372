"""Time stamps of bar files: parsing, time zones, daily or intraday, interval and stamp convention.

Naive stamps are read in the file's stated zone; everything leaves here as aware UTC or a date.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from fin_agent.domain.errors import DataError

EXCHANGE_TZ = ZoneInfo("America/New_York")
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: the wall-clock origin
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_DAY_US = 86_400_000_000
_US = 1_000_000
_OPEN, _CLOSE = time(9, 30), time(16, 0)
_EXT_OPEN, _EXT_CLOSE = time(4, 0), time(20, 0)


class BarStamp(StrEnum):
    """Which instant of a bar its stamp marks: its start, its end, or inferred from the data."""

    START = "start"
    END = "end"
    AUTO = "auto"


class StampKind(StrEnum):
    """How a time column was stored: dates, naive wall-clock times, or instants (UTC)."""

    DATE = "date"
    NAIVE = "naive"
    INSTANT = "instant"


@dataclass(frozen=True, slots=True)
class Stamps:
    """A parsed time column: days since 1970 (dates) or microseconds since 1970 (the others)."""

    kind: StampKind
    values: list[int | None]


def parse_stamps(path: Path, column: Any) -> Stamps:
    """Parse a time column of any common type; raise `DataError` showing a value it cannot read."""
    kind = column.type
    if pa.types.is_date(kind):
        return Stamps(StampKind.DATE, pc.cast(column, pa.date32()).cast(pa.int32()).to_pylist())
    if pa.types.is_timestamp(kind):
        zoned = kind.tz is not None
        target = pa.timestamp("us", tz="UTC" if zoned else None)
        values = pc.cast(column, target).cast(pa.int64()).to_pylist()
        return Stamps(StampKind.INSTANT if zoned else StampKind.NAIVE, values)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_text(path, pc.cast(column, pa.string()))
    if pa.types.is_integer(kind):
        return _parse_integers(path, column)
    raise DataError(f"{path}: the time column holds {kind}: use ISO 8601 text or dates")


def _parse_text(path: Path, column: Any) -> Stamps:
    column = pc.utf8_trim_whitespace(column)
    attempts: list[tuple[StampKind, pa.DataType]] = [
        (StampKind.DATE, pa.date32()),
        (StampKind.NAIVE, pa.timestamp("us")),
        (StampKind.INSTANT, pa.timestamp("us", tz="UTC")),
    ]
    for stamp_kind, target in attempts:
        try:
            parsed = pc.cast(column, target)
        except pa.ArrowException:
            continue
        width = pa.int32() if stamp_kind is StampKind.DATE else pa.int64()
        return Stamps(stamp_kind, parsed.cast(width).to_pylist())
    for fmt in ("%Y%m%d %H%M%S", "%Y%m%d %H:%M:%S"):
        try:
            parsed = pc.strptime(column, format=fmt, unit="us")
        except pa.ArrowException:
            continue
        return Stamps(StampKind.NAIVE, parsed.cast(pa.int64()).to_pylist())
    sample = next((v for v in column.to_pylist() if v), "")
    raise DataError(
        f"{path}: cannot read time stamps like {sample!r}: use ISO 8601 "
        "('2019-02-11 09:31:00', with an offset such as '-05:00' if known) or yyyymmdd HHMMSS"
    )


def _parse_integers(path: Path, column: Any) -> Stamps:
    values: list[int | None] = column.to_pylist()
    present = [v for v in values if v is not None]
    if present and min(present) >= 19_000_101 and max(present) <= 21_001_231:
        days: list[int | None] = []
        for v in values:
            if v is None:
                days.append(None)
                continue
            try:
                day = date(v // 10_000, v // 100 % 100, v % 100)
            except ValueError as exc:
                raise DataError(f"{path}: {v} is not a yyyymmdd date") from exc
            days.append((day - _EPOCH_DAY).days)
        return Stamps(StampKind.DATE, days)
    if present and min(present) >= 10**9 and max(present) < 10**10:
        return Stamps(StampKind.INSTANT, [None if v is None else v * _US for v in values])
    if present and min(present) >= 10**12 and max(present) < 10**13:
        return Stamps(StampKind.INSTANT, [None if v is None else v * 1000 for v in values])
    sample = present[0] if present else None
    raise DataError(
        f"{path}: cannot read integer time stamps like {sample}: use yyyymmdd dates, "
        "Unix seconds or milliseconds, or ISO 8601 text"
    )


def day_values(stamps: Stamps) -> list[date | None] | None:
    """Return the stamps as dates when they carry no time of day, else None."""
    if stamps.kind is StampKind.DATE:
        return [None if v is None else _EPOCH_DAY + timedelta(days=v) for v in stamps.values]
    if all(v is None or v % _DAY_US == 0 for v in stamps.values):
        return [
            None if v is None else _EPOCH_DAY + timedelta(days=v // _DAY_US) for v in stamps.values
        ]
    if stamps.kind is StampKind.INSTANT:
        instants = [
            None if v is None else _EPOCH_UTC + timedelta(microseconds=v) for v in stamps.values
        ]
        local = exchange_times([i for i in instants if i is not None])
        if all(t.time() == time(0) for t in local):
            days = iter(t.date() for t in local)
            return [None if i is None else next(days) for i in instants]
    return None


def to_instants(stamps: Stamps, zone: ZoneInfo) -> list[datetime | None]:
    """Return the stamps as aware UTC datetimes, reading naive ones as wall-clock time in `zone`.

    A wall-clock time repeated when daylight saving ends is read as its first occurrence.
    """
    cache: dict[int, datetime] = {}
    out: list[datetime | None] = []
    naive = stamps.kind is StampKind.NAIVE
    for value in stamps.values:
        if value is None:
            out.append(None)
            continue
        found = cache.get(value)
        if found is None:
            if naive:
                wall = _EPOCH + timedelta(microseconds=value)
                found = wall.replace(tzinfo=zone).astimezone(UTC)
            else:
                found = _EPOCH_UTC + timedelta(microseconds=value)
            cache[value] = found
        out.append(found)
    return out


def exchange_times(instants: Sequence[datetime]) -> list[datetime]:
    """Return each instant as New York wall-clock time (cached: bars share their stamps)."""
    cache: dict[datetime, datetime] = {}
    out: list[datetime] = []
    for instant in instants:
        local = cache.get(instant)
        if local is None:
            local = cache[instant] = instant.astimezone(EXCHANGE_TZ)
        out.append(local)
    return out


def infer_interval_secs(symbols: Sequence[str], instants: Sequence[datetime]) -> int | None:
    """Return the most common spacing between a symbol's consecutive bars, in seconds."""
    by_symbol: dict[str, list[datetime]] = {}
    for name, instant in zip(symbols, instants, strict=True):
        by_symbol.setdefault(name, []).append(instant)
    spacings: Counter[int] = Counter()
    for series in by_symbol.values():
        series.sort()
        spacings.update(int((b - a).total_seconds()) for a, b in pairwise(series) if b > a)
    if not spacings:
        return None
    top = max(spacings.values())
    return min(secs for secs, count in spacings.items() if count == top)


def infer_bar_stamp(path: Path, local_times: Sequence[datetime]) -> BarStamp:
    """Tell bar-start from bar-end stamps by the session edges the data contains.

    Regular-hours data stamped at its end has 16:00 and no 09:30, stamped at its start the reverse;
    extended-hours data likewise with 20:00 and 04:00.
    """
    clock = {t.time() for t in local_times}
    first, last = min(clock), max(clock)
    if first >= _OPEN and last <= _CLOSE:
        opening, closing = _OPEN, _CLOSE
    else:
        opening, closing = _EXT_OPEN, _EXT_CLOSE
    if closing in clock and opening not in clock:
        return BarStamp.END
    if opening in clock and closing not in clock:
        return BarStamp.START
    raise DataError(
        f"{path}: cannot tell whether time stamps mark the start or the end of each bar (exchange "
        f"times run from {first:%H:%M:%S} to {last:%H:%M:%S}, with "
        f"{'both' if opening in clock else 'neither'} {opening:%H:%M} and {closing:%H:%M}): "
        "pass bar_stamp=start or bar_stamp=end, and check the time zone of naive stamps"
    )
