"""Indicators: Wilder's ATR against hand-worked numbers, average volume, and the opening range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fin_agent.domain.indicators import (
    RangeWindow,
    average_volume,
    opening_range,
    true_ranges,
    wilder_atr,
)
from fin_agent.domain.values import Bar, DailyBar, symbol

AAA = symbol("AAA")
SESSION_OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # 09:30 ET in winter


def daily(day: int, o: str, h: str, low: str, c: str, volume: int = 1_000) -> DailyBar:
    return DailyBar(
        symbol=AAA,
        session=date(2023, 12, 1) + timedelta(days=day),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(low),
        close=Decimal(c),
        volume=volume,
    )


def minute(offset_min: int, h: str, low: str) -> Bar:
    high, lo = Decimal(h), Decimal(low)
    return Bar(
        symbol=AAA,
        start=SESSION_OPEN + timedelta(minutes=offset_min),
        open=lo,
        high=high,
        low=lo,
        close=high,
        volume=100,
    )


# True range = max(h - l, |h - prev close|, |l - prev close|)
SERIES = (
    daily(0, "10.0", "10.5", "9.5", "10.0"),  # no previous close: no true range
    daily(1, "10.2", "11.0", "10.0", "10.8"),  # max(1.0, |11.0-10.0|=1.0, |10.0-10.0|=0) = 1.0
    daily(2, "10.9", "11.4", "10.6", "10.7"),  # max(0.8, |11.4-10.8|=0.6, |10.6-10.8|=0.2) = 0.8
    daily(3, "12.0", "12.5", "11.9", "12.0"),  # gap up: max(0.6, |12.5-10.7|=1.8, 1.2) = 1.8
    daily(4, "11.4", "11.5", "10.5", "11.0"),  # gap down: max(1.0, 0.5, |10.5-12.0|=1.5) = 1.5
    daily(5, "11.0", "11.6", "10.9", "11.5"),  # max(0.7, |11.6-11.0|=0.6, 0.1) = 0.7
)


def test_true_ranges_use_the_previous_close_on_gaps() -> None:
    assert true_ranges(SERIES) == [
        Decimal("1.0"),
        Decimal("0.8"),
        Decimal("1.8"),
        Decimal("1.5"),
        Decimal("0.7"),
    ]


def test_wilder_atr_seeds_with_the_simple_mean_of_the_first_period_ranges() -> None:
    # 4 bars -> 3 true ranges: (1.0 + 0.8 + 1.8) / 3 = 3.6 / 3 = 1.2
    assert wilder_atr(SERIES[:4], period=3) == Decimal("1.2")


def test_wilder_atr_smooths_each_later_range() -> None:
    # seed 1.2; next TR 1.5: (1.2 * 2 + 1.5) / 3 = 3.9 / 3 = 1.3
    assert wilder_atr(SERIES[:5], period=3) == Decimal("1.3")
    # then TR 0.7: (1.3 * 2 + 0.7) / 3 = 3.3 / 3 = 1.1
    assert wilder_atr(SERIES, period=3) == Decimal("1.1")


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_wilder_atr_is_none_with_fewer_than_period_plus_one_bars(count: int) -> None:
    assert wilder_atr(SERIES[:count], period=3) is None


def test_wilder_atr_refuses_a_period_below_one() -> None:
    with pytest.raises(ValueError, match=r"^ATR period must be at least 1$"):
        wilder_atr(SERIES, period=0)


def test_average_volume_is_the_mean_of_the_last_period_bars() -> None:
    bars = [daily(i, "10", "10", "10", "10", volume=v) for i, v in enumerate([100, 200, 300, 400])]

    assert average_volume(bars, period=2) == Decimal(350)  # (300 + 400) / 2


def test_average_volume_uses_the_bars_present_when_history_is_shorter() -> None:
    bars = [daily(i, "10", "10", "10", "10", volume=v) for i, v in enumerate([1, 2])]

    assert average_volume(bars, period=20) == Decimal("1.5")


def test_average_volume_is_none_without_bars() -> None:
    assert average_volume([], period=20) is None


def test_opening_range_tolerates_missing_minutes_and_ignores_bars_outside() -> None:
    bars = [
        minute(-1, "99.00", "1.00"),  # pre-market 09:29: outside
        minute(0, "10.40", "10.20"),
        minute(1, "10.50", "10.30"),
        # 09:32 missing (sparse feed)
        minute(3, "10.45", "10.10"),
        minute(4, "10.35", "10.25"),
        minute(5, "50.00", "5.00"),  # 09:35 starts at the range's end: outside
    ]

    opening = opening_range(bars, RangeWindow.of(SESSION_OPEN, 5))

    assert opening is not None
    assert opening.high == Decimal("10.50")
    assert opening.low == Decimal("10.10")
    assert opening.bar_count == 4
    assert opening.ends_at == SESSION_OPEN + timedelta(minutes=5)


def test_opening_range_is_none_when_no_bar_starts_inside_it() -> None:
    bars = [minute(-1, "10.00", "9.00"), minute(5, "10.00", "9.00")]

    assert opening_range(bars, RangeWindow.of(SESSION_OPEN, 5)) is None
