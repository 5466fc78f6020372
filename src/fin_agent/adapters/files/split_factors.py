"""Split factors from QuantConnect Lean factor files, to make prices before a split comparable.

A Lean factor file (`<symbol>.csv`, no header) has rows `yyyymmdd,price_factor,split_factor,
ref_price`; a row's factors apply to the dates after the previous row's date up to its own.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path

from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Symbol

# A ratio this close to a fraction with a small denominator is that split (0.0357143 / 0.25 -> 1/7).
_SNAP_DENOMINATOR = 1000
_SNAP_TOLERANCE = 1e-5


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitFactors:
    """The cumulative split factors of one symbol, by the last date each applies to."""

    symbol: Symbol
    dates: tuple[date, ...]
    factors: tuple[float, ...]

    def factor_on(self, day: date) -> float:
        """Return the split factor of `day`: that of the first row dated on or after it."""
        index = bisect.bisect_left(self.dates, day)
        if index == len(self.dates):
            return 1.0
        return self.factors[index]

    def ratio(self, day: date, reference: date) -> float:
        """Return what multiplies a price of `day` to express it in the shares of `reference`.

        Volumes are divided by it. A ratio within 1e-5 of a simple fraction is snapped to it.
        """
        raw = self.factor_on(day) / self.factor_on(reference)
        snapped = Fraction(raw).limit_denominator(_SNAP_DENOMINATOR)
        if abs(float(snapped) - raw) <= _SNAP_TOLERANCE * raw:
            return float(snapped)
        return raw


def read_factor_file(path: Path, symbol: Symbol) -> SplitFactors:
    """Read one Lean factor file; raise `DataError` naming the file and line if it is malformed."""
    rows: list[tuple[date, float]] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for line_no, fields in enumerate(csv.reader(handle), start=1):
                if not fields or not "".join(fields).strip():
                    continue
                try:
                    day = datetime.strptime(fields[0].strip(), "%Y%m%d").date()  # noqa: DTZ007
                    factor = float(fields[2])
                except (IndexError, ValueError) as exc:
                    raise DataError(
                        f"{path}, line {line_no}: expected yyyymmdd,price_factor,split_factor,"
                        f"ref_price, got {','.join(fields)!r} ({exc})"
                    ) from exc
                if factor <= 0:
                    raise DataError(f"{path}, line {line_no}: split factor must be positive")
                rows.append((day, factor))
    except OSError as exc:
        raise DataError(f"cannot read factor file {path}: {exc}") from exc
    rows.sort()
    return SplitFactors(
        symbol=symbol, dates=tuple(d for d, _ in rows), factors=tuple(f for _, f in rows)
    )


def load_split_factors(folder: Path, symbols: Iterable[Symbol]) -> dict[Symbol, SplitFactors]:
    """Read the factor files of `symbols` from `folder`; symbols without a file are left out."""
    if not folder.is_dir():
        raise DataError(
            f"factor folder {folder} does not exist: pass the folder of Lean factor files"
        )
    found: dict[Symbol, SplitFactors] = {}
    for name in sorted(set(symbols)):
        path = folder / f"{name.lower()}.csv"
        if path.is_file():
            found[name] = read_factor_file(path, name)
    return found
