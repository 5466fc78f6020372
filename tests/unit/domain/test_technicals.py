"""Indicators worked by hand, held to their properties, and checked against TA-Lib (a reference
implementation in C, a dev dependency) on generated series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from fin_agent.domain.technicals import (
    Series,
    bollinger,
    ema,
    last,
    macd,
    relative_volume,
    rsi,
    session_relative_volume,
    sma,
    vwap,
)
from fin_agent.domain.values import Bar, symbol

D = Decimal
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
TOLERANCE = 1e-6


def bar(minute: int, high: str, low: str, close: str, volume: int) -> Bar:
    return Bar(
        symbol=symbol("AAA"),
        start=OPEN + timedelta(minutes=minute),
        open=D(close),
        high=D(high),
        low=D(low),
        close=D(close),
        volume=volume,
    )


def floats(values: Series) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def same(ours: Series, reference: np.ndarray) -> None:
    mine = np.array(floats(ours))
    assert np.array_equal(np.isnan(mine), np.isnan(reference)), "warm-up differs"
    known = ~np.isnan(reference)
    assert np.allclose(mine[known], reference[known], rtol=0, atol=TOLERANCE)


def test_sma_by_hand() -> None:
    assert sma([D(1), D(2), D(3), D(4)], 3) == [None, None, D(2), D(3)]


def test_ema_is_seeded_with_the_sma_then_smoothed() -> None:
    # period 3: alpha 0.5; seed mean(1, 2, 3) = 2; then 2 + 0.5 * (6 - 2) = 4
    assert ema([D(1), D(2), D(3), D(6)], 3) == [None, None, D(2), D(4)]


def test_rsi_by_hand() -> None:
    # period 2: changes +1, -1, +2. seed gain (1 + 0) / 2 = 0.5, loss (0 + 1) / 2 = 0.5 -> RS 1, 50;
    # next: gain (0.5 + 2) / 2 = 1.25, loss 0.5 / 2 = 0.25 -> RS 5 -> 100 - 100 / 6 = 83.33...
    values = rsi([D(10), D(11), D(10), D(12)], 2)

    assert values[:2] == [None, None]
    assert values[2] == D(50)
    assert values[3] is not None
    assert round(values[3], 4) == D("83.3333")


def test_rsi_without_losses_is_100_and_flat_is_50() -> None:
    assert last(rsi([D(1), D(2), D(3)], 2)) == D(100)
    assert last(rsi([D(5), D(5), D(5)], 2)) == D(50)


def test_bollinger_by_hand() -> None:
    # 2, 4, 6: mean 4, population sd sqrt(8/3) = 1.63299...
    bands = bollinger([D(2), D(4), D(6)], 3, D(2))

    assert bands.middle[-1] == D(4)
    assert bands.upper[-1] is not None
    assert bands.lower[-1] is not None
    assert round(bands.upper[-1], 4) == D("7.2660")
    assert round(bands.lower[-1], 4) == D("0.7340")


def test_vwap_by_hand() -> None:
    # typical prices (11 + 9 + 10) / 3 = 10 on 100 shares, (13 + 11 + 12) / 3 = 12 on 300
    # -> (1000 + 3600) / 400 = 11.5
    bars = [bar(0, "11", "9", "10", 100), bar(1, "13", "11", "12", 300)]

    assert vwap(bars) == [D(10), D("11.5")]
    assert vwap([bar(0, "11", "9", "10", 0)]) == [None]


def test_relative_volume_by_hand() -> None:
    # 30 minutes of a 390-minute day at an ADV of 1,300,000: 100,000 usual; 250,000 traded -> 2.5
    bars = [bar(0, "11", "9", "10", 150_000), bar(1, "11", "9", "10", 100_000)]

    assert session_relative_volume(bars, D(1_300_000), 30, 390) == D("2.5")
    assert relative_volume(10, 0) is None
    assert session_relative_volume(bars, D(1), 0, 390) is None


def test_bad_periods_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="period must be at least 1, got 0"):
        sma([D(1)], 0)
    with pytest.raises(ValueError, match="fast < slow, got fast 26 and slow 12"):
        macd([D(1)], 26, 12)


prices = st.lists(
    st.decimals(min_value=D(1), max_value=D(500), places=2, allow_nan=False),
    min_size=1,
    max_size=80,
)
periods = st.integers(min_value=1, max_value=30)


@settings(max_examples=60)
@given(prices, periods)
def test_sma_and_ema_match_talib(values: list[Decimal], period: int) -> None:
    closes = np.array([float(v) for v in values])

    same(sma(values, period), talib.SMA(closes, period))
    same(ema(values, period), talib.EMA(closes, period))


@settings(max_examples=60)
@given(prices, st.integers(min_value=2, max_value=30))
def test_rsi_matches_talib_where_the_series_moved(values: list[Decimal], period: int) -> None:
    closes = np.array([float(v) for v in values])
    reference = talib.RSI(closes, period)
    ours = rsi(values, period)
    # TA-Lib says 0 for a window that has not moved at all, we say 50 (neutral): skip those.
    flat = [i for i in range(period, len(values)) if len(set(values[: i + 1])) == 1]
    for i in flat:
        reference[i] = float(ours[i] or 0)

    same(ours, reference)


@settings(max_examples=40)
@given(prices, st.integers(min_value=2, max_value=30), st.sampled_from([D(1), D(2), D("2.5")]))
def test_bollinger_matches_talib(values: list[Decimal], period: int, width: Decimal) -> None:
    closes = np.array([float(v) for v in values])
    upper, middle, lower = talib.BBANDS(closes, period, float(width), float(width))
    bands = bollinger(values, period, width)

    same(bands.middle, middle)
    same(bands.upper, upper)
    same(bands.lower, lower)


@settings(max_examples=40)
@given(st.lists(st.decimals(min_value=D(1), max_value=D(500), places=2), min_size=40, max_size=90))
def test_macd_is_the_difference_of_talib_emas_and_their_ema(values: list[Decimal]) -> None:
    closes = np.array([float(v) for v in values])
    line = talib.EMA(closes, 12) - talib.EMA(closes, 26)
    signal = np.full(len(values), np.nan)
    signal[25:] = talib.EMA(line[25:], 9)

    ours = macd(values)

    same(ours.line, line)
    same(ours.signal, signal)
    same(ours.histogram, line - signal)


@given(prices, periods)
def test_moving_averages_stay_within_the_window(values: list[Decimal], period: int) -> None:
    for i, (simple, exponential) in enumerate(
        zip(sma(values, period), ema(values, period), strict=True)
    ):
        seen = values[: i + 1]
        window = values[max(0, i - period + 1) : i + 1]
        if simple is not None:
            assert min(window) <= simple <= max(window)
        if exponential is not None:
            assert min(seen) <= exponential <= max(seen)


@given(prices, st.integers(min_value=1, max_value=20))
def test_rsi_stays_between_0_and_100(values: list[Decimal], period: int) -> None:
    assert all(D(0) <= v <= D(100) for v in rsi(values, period) if v is not None)


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=D(1), max_value=D(100), places=2),
            st.decimals(min_value=D(0), max_value=D(5), places=2),
            st.integers(min_value=0, max_value=10**6),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_vwap_lies_between_the_lowest_low_and_highest_high(
    rows: list[tuple[Decimal, Decimal, int]],
) -> None:
    bars = [
        bar(i, str(low + spread), str(low), str(low + spread / 2), v)
        for i, (low, spread, v) in enumerate(rows)
    ]
    for i, value in enumerate(vwap(bars)):
        if value is not None:
            seen = bars[: i + 1]
            assert min(b.low for b in seen) <= value <= max(b.high for b in seen)
