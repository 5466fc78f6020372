"""Whether naive intraday stamps fit the exchange's hours under the declared zone.

UTC stamps read as New York time look like a session from 13:30 to 21:00: every opening range is
empty and a backtest trades nothing. Such files are refused, naming the zone they do fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fin_agent.adapters.files.columnar import arrow_of, numpy_of
from fin_agent.adapters.files.stamps import EXCHANGE_TZ, StampKind, Stamps
from fin_agent.domain.errors import DataError

__all__ = ["CANDIDATE_ZONES", "check_session_zone", "fits_exchange_hours"]

# Zones bar files are commonly stamped in, tried when the declared one does not fit.
CANDIDATE_ZONES = (
    "America/New_York",
    "UTC",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
)
_EXTENDED_OPEN_MIN, _EXTENDED_CLOSE_MIN = 4 * 60, 20 * 60  # 04:00 and 20:00 (a bar end)
_OPENING_FROM_MIN, _OPENING_TO_MIN = 9 * 60 + 30, 10 * 60  # bars here on most days
_OUTSIDE_SHARE_MAX = 0.01
_OPENING_DAYS_SHARE_MIN = 0.5


def fits_exchange_hours(values: Any, zone: str, counts: Any = None) -> tuple[bool, bool]:
    """Whether naive microsecond stamps read in `zone` lie within 04:00-20:00 New York time, and
    whether they also reach the regular open (09:30-10:00) on at least half of their days.

    `counts`: how many rows each stamp stands for (distinct stamps of a file read in chunks)."""
    naive: Any = values.cast(pa.timestamp("us"))
    instants: Any = pc.assume_timezone(naive, zone, ambiguous="earliest", nonexistent="earliest")
    local: Any = instants.cast(pa.timestamp("us", tz=str(EXCHANGE_TZ)))

    def part(field: Any) -> Any:
        return numpy_of(pc.cast(field(local), pa.int64()), np.int64)[0]

    minutes = part(pc.hour) * 60 + part(pc.minute)
    seconds = part(pc.second)
    past_close = (minutes > _EXTENDED_CLOSE_MIN) | (
        (minutes == _EXTENDED_CLOSE_MIN) & (seconds > 0)
    )
    outside = (minutes < _EXTENDED_OPEN_MIN) | past_close
    weights = np.ones(len(values), dtype=np.int64) if counts is None else counts
    if int(weights[outside].sum()) > _OUTSIDE_SHARE_MAX * int(weights.sum()):
        return False, False
    days = part(pc.year) * 1000 + part(pc.day_of_year)
    opening = (minutes >= _OPENING_FROM_MIN) & (minutes < _OPENING_TO_MIN)
    all_days = len(np.unique(days))
    opening_days = len(np.unique(days[opening]))
    return True, opening_days >= _OPENING_DAYS_SHARE_MIN * all_days


def check_session_zone(
    path: Path,
    stamps: Stamps,
    zone: str,
    candidates: Sequence[str] = CANDIDATE_ZONES,
    counts: Sequence[int] | None = None,
) -> None:
    """Raise `DataError` when naive intraday `stamps` fall outside the exchange's hours in `zone`,
    or miss its open where another candidate zone fits both, naming the zones they fit (stamps
    with an offset or dates are not checked). `counts`: the rows each stamp stands for (none
    missing), when `stamps` are a file's distinct stamps."""
    if stamps.kind is not StampKind.NAIVE:
        return
    weights: Any = None
    if counts is not None:
        weights = np.array(counts, dtype=np.int64)
    present = np.array([v for v in stamps.values if v is not None], dtype=np.int64)
    values: Any = arrow_of(present, pa.int64())
    if len(values) == 0:
        return
    within, opens = fits_exchange_hours(values, zone, weights)
    if within and opens:
        return
    fitting = [
        name
        for name in candidates
        if name != zone and all(fits_exchange_hours(values, name, weights))
    ]
    if within and not fitting:
        return  # no bars at the open (a pre-market extract, a short file), but no better zone
    wall = values.cast(pa.timestamp("us"))
    span = f"{pc.min(wall).as_py():%Y-%m-%d %H:%M} .. {pc.max(wall).as_py():%Y-%m-%d %H:%M}"
    if fitting:
        hint = (
            f"they fit the exchange's hours read as {' or '.join(fitting)}: "
            f"pass --tz {fitting[0]} (replay.timezone)"
        )
    else:
        hint = "they fit none of " + ", ".join(candidates) + ": check the file's time stamps"
    raise DataError(
        f"{path}: naive time stamps ({span}) read as {zone} do not fit the exchange's hours "
        f"(04:00-20:00 New York time, with bars at the 09:30 open on most days); {hint}"
    )
