"""Bar files (CSV, gzip CSV or Parquet) read into `DailyBar`s or `Bar`s under explicit conventions.

Stamps become aware UTC bar starts and prices `Decimal`s; rows a bar would refuse (missing values,
inconsistent OHLC, non-positive prices) are dropped and reported, never fatal. A large Parquet file
can be read in chunks of row groups (`plan_bar_files`): what holds for the whole file (daily or
intraday, interval, bar stamp, zone, the split reference day) is decided over all its rows first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from fin_agent.adapters.files.bar_rows import RawRows, build_file, place_rows, read_rows
from fin_agent.adapters.files.bar_spec import (
    BarFile,
    BarFileSpec,
    BarKind,
    DroppedRow,
    FileDecisions,
)
from fin_agent.adapters.files.checks import DropReason
from fin_agent.adapters.files.columns import SYMBOL, TIME, read_role_table
from fin_agent.adapters.files.split_factors import SplitFactors, load_split_factors
from fin_agent.adapters.files.stamps import BarStamp
from fin_agent.adapters.files.survey import Chunk, FileSurvey, chunks_of
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Symbol

__all__ = [
    "BarFile",
    "BarFileSpec",
    "BarFilesPlan",
    "BarKind",
    "BarStamp",
    "DropReason",
    "DroppedRow",
    "PlannedFile",
    "describe_dropped",
    "plan_bar_files",
    "read_bar_file",
    "read_bar_files",
]

# A Parquet file of at most this many rows is read whole; a larger one a few row groups at a time
# (groups merged up to CHUNK_ROWS): one row group per day keeps a backtest's memory to a day's bars.
RESIDENT_ROWS = 2_000_000
CHUNK_ROWS = 250_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedFile:
    """A bar file surveyed: what holds for all of it, its chunks and each chunk's exchange days
    (ordinals), and the symbols of its rows."""

    path: Path
    decisions: FileDecisions
    chunks: tuple[Chunk, ...]
    chunk_days: tuple[np.ndarray, ...]
    names: frozenset[Symbol]


@dataclass(slots=True, kw_only=True)
class BarFilesPlan:
    """Bar files surveyed under one spec, ready to be read whole or a few chunks at a time.

    Prices are split-adjusted to `reference`, the latest day of all the files."""

    spec: BarFileSpec
    files: tuple[PlannedFile, ...]
    factors: Mapping[Symbol, SplitFactors]
    reference: date | None
    missing: tuple[Symbol, ...]
    _read: dict[int, RawRows] = field(default_factory=dict)

    def read(self, index: int, chunks: Sequence[int] | None = None) -> BarFile:
        """File `index` (of `files`) read, all of it or only `chunks` (indices into its chunks)
        together: the rows of those chunks parsed, adjusted, checked and deduplicated."""
        planned = self.files[index]
        wanted = range(len(planned.chunks)) if chunks is None else chunks
        raw = self._read.pop(index, None) if len(wanted) == len(planned.chunks) else None
        if raw is None:
            raw = _read_chunks(planned.path, self.spec, [planned.chunks[i] for i in wanted])
        placed = place_rows(raw, planned.decisions)
        return build_file(placed, self.factors, self.reference, self.missing)


def plan_bar_files(
    paths: Sequence[Path],
    spec: BarFileSpec,
    *,
    resident_rows: int = RESIDENT_ROWS,
    chunk_rows: int = CHUNK_ROWS,
) -> BarFilesPlan:
    """Survey bar files: read whole (a CSV file, a small Parquet file) or chunk by chunk (the
    time and symbol columns only), decide what holds for each file, load the split factors."""
    files: list[PlannedFile] = []
    kept: dict[int, RawRows] = {}
    for index, path in enumerate(Path(p) for p in paths):
        chunks = chunks_of(path, resident_rows=resident_rows, chunk_rows=chunk_rows)
        survey = FileSurvey(path, spec)
        whole = len(chunks) == 1
        total = 0
        for chunk in chunks:
            raw = _read_chunks(path, spec, [chunk], prices=whole)
            total += len(raw.rows) + len(raw.dropped)
            survey.add(raw)
            if whole:
                kept[index] = raw
        if total == 0:
            raise DataError(f"{path} has no data rows: pass a file with bars")
        decisions = survey.decide()
        files.append(
            PlannedFile(path=path, decisions=decisions, chunks=chunks,
                        chunk_days=tuple(survey.chunk_days(decisions)),
                        names=frozenset(survey.names))
        )  # fmt: skip
    all_symbols = {name for f in files for name in f.names}
    factors: dict[Symbol, SplitFactors] = {}
    if spec.factors_dir is not None:
        factors = load_split_factors(spec.factors_dir, all_symbols)
    days = [int(d.max()) for f in files for d in f.chunk_days if len(d)]
    reference = date.fromordinal(max(days)) if days else None
    missing = tuple(sorted(all_symbols - set(factors))) if spec.factors_dir is not None else ()
    return BarFilesPlan(
        spec=spec, files=tuple(files), factors=factors, reference=reference, missing=missing,
        _read=kept,
    )  # fmt: skip


def read_bar_file(path: Path, spec: BarFileSpec | None = None) -> BarFile:
    """Read one bar file; raise `DataError` naming the file when it cannot be used at all."""
    return read_bar_files([path], spec)[0]


def read_bar_files(paths: Sequence[Path], spec: BarFileSpec | None = None) -> tuple[BarFile, ...]:
    """Read bar files under one spec; split-adjusted prices are as traded on their last date."""
    plan = plan_bar_files(paths, spec or BarFileSpec())
    return tuple(plan.read(i) for i in range(len(plan.files)))


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


def _read_chunks(
    path: Path, spec: BarFileSpec, chunks: Sequence[Chunk], *, prices: bool = True
) -> RawRows:
    """The rows of some chunks of `path` read together, numbered as rows of the file."""
    tables: list[pa.Table] = []
    numbers: list[np.ndarray] = []
    for chunk in chunks:
        table = read_role_table(
            path, symbol_column=spec.symbol_column, need_symbol=spec.symbol is None,
            row_groups=chunk.row_groups, roles=None if prices else (TIME, SYMBOL),
        )  # fmt: skip
        tables.append(table)
        numbers.append(np.arange(1, table.num_rows + 1, dtype=np.int64) + chunk.first_row)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return read_rows(path, table, spec, np.concatenate(numbers), prices=prices)
