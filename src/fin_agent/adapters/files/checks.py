"""Why a row of a bar file is left out (the columnar path filters rows; this names the rule).

A row passes when every value is present and finite, prices are positive, high/low bound open
and close, and the volume is a count of shares below `MAX_VOLUME`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum

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
