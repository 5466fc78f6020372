"""Row checks and value conversion of bar files, done on Arrow columns before any bar is built.

A row passes when every value is present and finite, prices are positive, high/low bound open
and close, and the volume is a count of shares below `MAX_VOLUME`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from fin_agent.adapters.files.columns import PRICES, VOLUME

MAX_VOLUME = 1e15  # the domain's bound: above it a volume is a unit error, not shares


class DropReason(StrEnum):
    """Why a row of a bar file was left out."""

    MISSING_VALUE = "missing value"
    BAD_SYMBOL = "bad symbol"
    NON_POSITIVE_PRICE = "non-positive price"
    INCONSISTENT_OHLC = "inconsistent OHLC"
    NEGATIVE_VOLUME = "negative volume"
    NOT_FINITE = "infinite or out-of-range value"
    DUPLICATE = "duplicate stamp"


def good_rows(table: pa.Table) -> Any:
    """Return a boolean Arrow array, true where a row makes a valid bar."""
    open_, high, low, close, volume = (table[role].combine_chunks() for role in (*PRICES, VOLUME))
    zero: Any = pa.scalar(0.0)
    checks = [
        pc.and_(pc.is_valid(table[r]), pc.invert(pc.is_nan(table[r]))) for r in table.column_names
    ]
    checks += [pc.is_finite(column) for column in (open_, high, low, close, volume)]
    checks.append(pc.less(volume, pa.scalar(MAX_VOLUME)))
    lowest = pc.min_element_wise(open_, high, low, close, skip_nulls=False)
    checks.append(pc.greater(lowest, zero))
    checks.append(pc.greater_equal(high, pc.max_element_wise(open_, close, low, skip_nulls=False)))
    checks.append(pc.less_equal(low, pc.min_element_wise(open_, close, skip_nulls=False)))
    checks.append(pc.greater_equal(volume, zero))
    good = checks[0]
    for check in checks[1:]:
        good = pc.and_(good, check)
    return pc.fill_null(good, pa.scalar(False))


def ints(values: Any) -> list[int]:
    """An Arrow integer array without nulls as a list of ints."""
    return cast(list[int], values.to_pylist())


def drop_reason(row: Mapping[str, float | None]) -> DropReason:
    """Name the first check a row (open..volume, after rounding) fails."""
    values = [row[role] for role in (*PRICES, VOLUME)]
    present = [v for v in values if v is not None and not math.isnan(v)]
    if len(present) < len(values):
        return DropReason.MISSING_VALUE
    open_, high, low, close, volume = present
    if not all(math.isfinite(v) for v in present) or volume >= MAX_VOLUME:
        return DropReason.NOT_FINITE
    if min(open_, high, low, close) <= 0:
        return DropReason.NON_POSITIVE_PRICE
    if volume < 0:
        return DropReason.NEGATIVE_VOLUME
    return DropReason.INCONSISTENT_OHLC


def floats(values: Any) -> list[float]:
    """An Arrow float array without nulls as a list of floats."""
    return cast(list[float], values.to_pylist())


def decimals(values: Sequence[float]) -> list[Decimal]:
    """Floats rounded to 4 dp as Decimals by their shortest repr (170.7701, not 170.77010000001)."""
    cache: dict[float, Decimal] = {}
    out: list[Decimal] = []
    for value in values:
        found = cache.get(value)
        if found is None:
            found = cache[value] = Decimal(repr(value))
        out.append(found)
    return out
