"""The common indicators: SMA, EMA, Wilder's RSI, MACD, Bollinger bands, VWAP, relative volume.

Each takes a series oldest first and returns one value per input, None until it has warmed up, so
its output lines up with the bars. The seeding follows TA-Lib (an EMA starts from the SMA of its
first `period` values; RSI from the mean gain and loss of its first `period` changes; Bollinger
bands use the population standard deviation), so values can be checked against it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fin_agent.domain.values import Bar

ZERO = Decimal(0)
HUNDRED = Decimal(100)
THREE = Decimal(3)

Series = list[Decimal | None]
"""An indicator's values, aligned with its input: None while it warms up."""


def _check(period: int) -> None:
    if period < 1:
        raise ValueError(f"an indicator period must be at least 1, got {period}")


def sma(values: Sequence[Decimal], period: int) -> Series:
    """Simple moving average of the last `period` values."""
    _check(period)
    out: Series = []
    total = ZERO
    for i, value in enumerate(values):
        total += value
        if i >= period:
            total -= values[i - period]
        out.append(total / period if i >= period - 1 else None)
    return out


def ema(values: Sequence[Decimal], period: int) -> Series:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first SMA."""
    _check(period)
    alpha = Decimal(2) / (period + 1)
    out: Series = [None] * min(len(values), period - 1)
    if len(values) < period:
        return out
    current = sum(values[:period], ZERO) / period
    out.append(current)
    for value in values[period:]:
        current = current + alpha * (value - current)
        out.append(current)
    return out


def rsi(closes: Sequence[Decimal], period: int = 14) -> Series:
    """Wilder's relative strength index (0..100) of `closes`.

    The first value (at index `period`) uses the mean gain and loss of the first `period` changes;
    each later one smooths them as `(previous * (period - 1) + change) / period`. With no loss the
    RSI is 100; a series that has not moved at all is 50.
    """
    _check(period)
    out: Series = [None] * min(len(closes), period)
    if len(closes) <= period:
        return out
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gain = sum((max(c, ZERO) for c in changes[:period]), ZERO) / period
    loss = sum((max(-c, ZERO) for c in changes[:period]), ZERO) / period
    out.append(_rsi_of(gain, loss))
    for change in changes[period:]:
        gain = (gain * (period - 1) + max(change, ZERO)) / period
        loss = (loss * (period - 1) + max(-change, ZERO)) / period
        out.append(_rsi_of(gain, loss))
    return out


def _rsi_of(gain: Decimal, loss: Decimal) -> Decimal:
    if loss == 0:
        return HUNDRED if gain > 0 else Decimal(50)
    return HUNDRED - HUNDRED / (1 + gain / loss)


@dataclass(frozen=True, slots=True, kw_only=True)
class Macd:
    """MACD line (fast EMA - slow EMA), its signal (an EMA of the line) and their difference."""

    line: Series
    signal: Series
    histogram: Series


def macd(closes: Sequence[Decimal], fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD of `closes`: the line from the first bar both EMAs have, the signal `signal` values
    of the line later."""
    if not fast < slow:
        raise ValueError(f"MACD needs fast < slow, got fast {fast} and slow {slow}")
    fast_ema, slow_ema = ema(closes, fast), ema(closes, slow)
    line: Series = [
        f - s if f is not None and s is not None else None
        for f, s in zip(fast_ema, slow_ema, strict=True)
    ]
    known = [v for v in line if v is not None]
    lead = len(line) - len(known)
    signal_line: Series = [None] * lead
    signal_line += ema(known, signal)
    histogram: Series = [
        m - s if m is not None and s is not None else None
        for m, s in zip(line, signal_line, strict=True)
    ]
    return Macd(line=line, signal=signal_line, histogram=histogram)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bands:
    """Bollinger bands: the SMA and `width` population standard deviations either side."""

    middle: Series
    upper: Series
    lower: Series


def bollinger(closes: Sequence[Decimal], period: int = 20, width: Decimal = Decimal(2)) -> Bands:
    """Bollinger bands of `closes` over `period` values."""
    middle = sma(closes, period)
    upper: Series = []
    lower: Series = []
    for i, mean in enumerate(middle):
        if mean is None:
            upper.append(None)
            lower.append(None)
            continue
        window = closes[i - period + 1 : i + 1]
        deviation = (sum(((v - mean) ** 2 for v in window), ZERO) / period).sqrt()
        upper.append(mean + width * deviation)
        lower.append(mean - width * deviation)
    return Bands(middle=middle, upper=upper, lower=lower)


def vwap(bars: Sequence[Bar]) -> Series:
    """Volume-weighted average of the typical price (high + low + close) / 3, cumulated over
    `bars` (one symbol's bars of one session, oldest first); None until some volume traded."""
    out: Series = []
    weighted = ZERO
    volume = 0
    for bar in bars:
        weighted += (bar.high + bar.low + bar.close) / THREE * bar.volume
        volume += bar.volume
        out.append(weighted / volume if volume else None)
    return out


def relative_volume(volume: Decimal | int, usual: Decimal | int) -> Decimal | None:
    """`volume` as a multiple of the `usual` volume for the same span; None without a usual."""
    if usual <= 0:
        return None
    return Decimal(volume) / Decimal(usual)


def session_relative_volume(
    bars: Sequence[Bar], adv: Decimal, elapsed_minutes: int, session_minutes: int
) -> Decimal | None:
    """The session's volume so far (`bars`) against the average daily volume's share of the
    elapsed minutes: 2 means trading twice as fast as a usual day (an even pace assumed)."""
    if elapsed_minutes <= 0 or session_minutes <= 0:
        return None
    usual = adv * elapsed_minutes / session_minutes
    return relative_volume(sum(b.volume for b in bars), usual)


def last(series: Series) -> Decimal | None:
    """The latest value of an indicator (None while it warms up or on no input)."""
    return series[-1] if series else None
