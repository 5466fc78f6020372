"""Indicators of the gap strategy: Wilder's ATR, average daily volume and the opening range."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fin_agent.domain.values import Bar, DailyBar


def true_ranges(bars: Sequence[DailyBar]) -> list[Decimal]:
    """True range of every bar after the first: max(h - l, |h - prev close|, |l - prev close|)."""
    ranges: list[Decimal] = []
    for prev, bar in itertools.pairwise(bars):
        ranges.append(
            max(bar.high - bar.low, abs(bar.high - prev.close), abs(bar.low - prev.close))
        )
    return ranges


def wilder_atr(bars: Sequence[DailyBar], period: int = 14) -> Decimal | None:
    """Wilder's average true range over `bars` (oldest first), or None with fewer than period+1.

    The first ATR is the mean of the first `period` true ranges; each later one is
    `(previous * (period - 1) + true_range) / period`.
    """
    if period < 1:
        raise ValueError("ATR period must be at least 1")
    ranges = true_ranges(bars)
    if len(ranges) < period:
        return None
    atr = sum(ranges[:period], Decimal(0)) / period
    for tr in ranges[period:]:
        atr = (atr * (period - 1) + tr) / period
    return atr


def average_volume(bars: Sequence[DailyBar], period: int = 20) -> Decimal | None:
    """Mean volume of the last `period` bars (fewer if the history is shorter); None if empty."""
    recent = bars[-period:]
    if not recent:
        return None
    return Decimal(sum(b.volume for b in recent)) / len(recent)


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeWindow:
    """The opening range's minutes: the bars starting in [starts_at, ends_at).

    The one definition of which bars make the range: the day collecting them and the range
    computed from them both ask `contains`.
    """

    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, session_open: datetime, minutes: int) -> RangeWindow:
        """The first `minutes` minutes of a session opening at `session_open`."""
        return cls(starts_at=session_open, ends_at=session_open + timedelta(minutes=minutes))

    def contains(self, bar: Bar) -> bool:
        """True when `bar` starts inside the window (the window's end is excluded)."""
        return self.starts_at <= bar.start < self.ends_at


@dataclass(frozen=True, slots=True, kw_only=True)
class OpeningRange:
    """High and low of the first minutes of a session, and how many bars made them."""

    high: Decimal
    low: Decimal
    bar_count: int
    ends_at: datetime


def opening_range(bars: Sequence[Bar], window: RangeWindow) -> OpeningRange | None:
    """The range of the bars inside `window`, or None if none.

    Missing minutes (a sparse feed) are tolerated: the range is built from the bars present.
    """
    inside = [b for b in bars if window.contains(b)]
    if not inside:
        return None
    return OpeningRange(
        high=max(b.high for b in inside),
        low=min(b.low for b in inside),
        bar_count=len(inside),
        ends_at=window.ends_at,
    )
