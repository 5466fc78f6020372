"""What a bar file says as a whole, gathered chunk by chunk (a Parquet file is read a few row
groups at a time): daily or intraday, the bar interval, whether stamps mark a bar's start or end,
and whether naive stamps fit the exchange's hours, each decided over every row of the file.

A chunk's rows are reduced to what those decisions need (its distinct stamps with their counts,
the spacings between a symbol's bars, whether a symbol has two rows on one day), never kept.
The spacing from a symbol's last bar in one chunk to its first in the next is not counted (in a
file of one row group per day, the overnight gap): the interval is the most common spacing
within chunks, the same as over the whole file unless chunks hold a bar or two per symbol.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fin_agent.adapters.files.bar_rows import PAIR_KEY, RawRows, micros
from fin_agent.adapters.files.bar_spec import BarFileSpec, BarKind, FileDecisions
from fin_agent.adapters.files.columns import parquet_row_counts
from fin_agent.adapters.files.stamps import (
    BarStamp,
    StampKind,
    Stamps,
    exchange_times,
    infer_bar_stamp,
    to_instants,
)
from fin_agent.adapters.files.zones import check_session_zone
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Symbol

__all__ = ["Chunk", "FileSurvey", "chunks_of"]

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """Rows of a bar file read together: some consecutive Parquet row groups (`row_groups`
    None: the whole file), `first_row` the 0-based file row of the first."""

    row_groups: tuple[int, ...] | None
    first_row: int


def chunks_of(path: Path, *, resident_rows: int, chunk_rows: int) -> tuple[Chunk, ...]:
    """How to read `path`: whole (a CSV file, or a Parquet file of at most `resident_rows` rows),
    else consecutive row groups of up to `chunk_rows` rows together (a larger group alone)."""
    counts = parquet_row_counts(path)
    if counts is None or len(counts) <= 1 or sum(counts) <= resident_rows:
        return (Chunk(row_groups=None, first_row=0),)
    chunks: list[Chunk] = []
    groups: list[int] = []
    first = rows = 0
    for index, count in enumerate(counts):
        if groups and rows + count > chunk_rows:
            chunks.append(Chunk(row_groups=tuple(groups), first_row=first))
            first, groups, rows = first + rows, [], 0
        groups.append(index)
        rows += count
    chunks.append(Chunk(row_groups=tuple(groups), first_row=first))
    return tuple(chunks)


class FileSurvey:
    """The decisions of one file, from its chunks' rows added one chunk at a time."""

    def __init__(self, path: Path, spec: BarFileSpec) -> None:
        self._path = path
        self._spec = spec
        self._kinds: set[StampKind] = set()
        self._timed = False
        self._repeated = False
        self._pairs: list[Ints] = []
        self._spacings: Counter[int] = Counter()
        self._unique: list[Ints] = []
        self._counts: list[Ints] = []
        self._codes: dict[Symbol, int] = {}

    @property
    def names(self) -> set[Symbol]:
        """Every valid symbol of the rows added so far."""
        return set(self._codes)

    def add(self, raw: RawRows) -> None:
        """Take in one chunk's rows."""
        self._kinds.add(raw.kind)
        for name in raw.names:
            self._codes.setdefault(name, len(self._codes))
        self._unique.append(raw.unique)
        self._counts.append(np.bincount(raw.inverse, minlength=len(raw.unique)))
        if raw.kind is StampKind.DATE:
            return
        self._timed |= raw.dates is None
        table = np.array([self._codes[n] for n in raw.names] or [0], dtype=np.int64)
        code = table[raw.code] if len(raw.code) else raw.code
        local = raw.local()
        day = np.array([t.toordinal() for t in local], dtype=np.int64)[raw.inverse]
        pairs = code * PAIR_KEY + day
        distinct = np.unique(pairs)
        if len(distinct) < len(pairs):
            self._repeated = True
        if not self._repeated:
            self._pairs.append(distinct)
        starts = np.array([micros(i) for i in raw.instants()], dtype=np.int64)[raw.inverse]
        self._spacings.update(_spacings(code, starts))

    def decide(self) -> FileDecisions:
        """The file's kind, interval and bar stamp; `DataError` when its chunks store stamps in
        different forms, its naive stamps do not fit the exchange's hours under the declared
        zone, or the interval or the stamp convention cannot be told."""
        path = self._path
        if len(self._kinds) > 1:
            forms = ", ".join(sorted(self._kinds))
            raise DataError(
                f"{path}: its row groups hold time stamps in different forms ({forms}): write "
                "one form (dates for daily bars, date and time for intraday bars) throughout"
            )
        if not self._timed:
            return FileDecisions(kind=BarKind.DAILY)
        if not self._repeated:
            joined = np.concatenate(self._pairs) if self._pairs else np.zeros(0, dtype=np.int64)
            if len(np.unique(joined)) == len(joined):
                return FileDecisions(kind=BarKind.DAILY)
        (kind,) = self._kinds
        stamps, counts = self._distinct()
        check_session_zone(path, Stamps(kind, stamps.tolist()), self._spec.timezone,
                           counts=counts.tolist())  # fmt: skip
        if not self._spacings:
            raise DataError(f"{path}: cannot infer the bar interval: all stamps repeat")
        top = max(self._spacings.values())
        interval = min(secs for secs, count in self._spacings.items() if count == top)
        stamp = self._spec.bar_stamp
        if stamp is BarStamp.AUTO:
            instants = [i for i in to_instants(Stamps(kind, stamps.tolist()), self._spec.zone) if i]
            stamp = infer_bar_stamp(path, exchange_times(instants))
        return FileDecisions(kind=BarKind.INTRADAY, interval_secs=interval, bar_stamp=stamp)

    def chunk_days(self, decisions: FileDecisions) -> list[Ints]:
        """Each chunk's exchange days (ordinals, sorted) under the file's `decisions`."""
        (kind,) = self._kinds or {StampKind.DATE}
        shift = timedelta(0)
        if decisions.bar_stamp is BarStamp.END and decisions.interval_secs:
            shift = timedelta(seconds=decisions.interval_secs)
        found: list[Ints] = []
        for unique in self._unique:
            stamps = Stamps(kind, unique.tolist())
            if kind is StampKind.DATE or not self._timed:
                epoch_days = unique if kind is StampKind.DATE else unique // 86_400_000_000
                days = epoch_days + 719_163  # date(1970, 1, 1).toordinal()
            else:
                instants = [i - shift for i in to_instants(stamps, self._spec.zone) if i]
                days = np.array([t.toordinal() for t in exchange_times(instants)], dtype=np.int64)
            found.append(np.unique(np.asarray(days, dtype=np.int64)))
        return found

    def _distinct(self) -> tuple[Ints, Ints]:
        """The file's distinct stamps and how many rows have each."""
        joined = np.concatenate(self._unique)
        unique, inverse = np.unique(joined, return_inverse=True)
        counts = np.bincount(inverse.reshape(-1), weights=np.concatenate(self._counts))
        return unique, counts.astype(np.int64)


def _spacings(code: Ints, start_us: Ints) -> Counter[int]:
    """How often each spacing (seconds) between a symbol's consecutive bars occurs."""
    order = np.lexsort((start_us, code))
    codes, starts = code[order], start_us[order]
    spacing = np.diff(starts)
    usable = (codes[1:] == codes[:-1]) & (spacing > 0)
    values, counts = np.unique(spacing[usable] // 1_000_000, return_counts=True)
    return Counter(dict(zip(values.tolist(), counts.tolist(), strict=True)))
