"""What happens on a simulated session: which symbols gap, by how much, and each symbol's day shape.

Price-free, drawn from RNGs seeded by (seed, day) or (seed, symbol, day): any day, in any order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from fin_agent.adapters.simulator.universe import Profile
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Symbol

OPENING_RANGE_BARS = 5
SCAN_MINUTE = 300  # 09:00 ET counted in minutes from the 04:00 ET pre-market start
LISTING_VOL = 1.6  # an IPO swings more on its first day
MIN_SESSION_BARS = 150  # the day shapes place their swings up to 40 bars before the close


class Regime(StrEnum):
    """The intraday story of one symbol-day."""

    GO = "go"  # breaks the opening-range high and trends on
    FADE = "fade"  # pokes above the opening range, then falls through its low
    CHOP = "chop"  # breaks out, then swings inside a band into the close
    FAIL = "fail"  # does not take out the opening-range high before the entry deadline
    DRIFT = "drift"  # an ordinary day without a gap


@dataclass(frozen=True, slots=True, kw_only=True)
class GapEvent:
    """An overnight gap: its size as a log return, whether news explains it, pre-market volume."""

    gap_log: float
    catalyst: bool
    pm_volume: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPlan:
    """The market-wide draw of one session: the gappers and the quiet symbols that make news."""

    gaps: Mapping[Symbol, GapEvent]
    news_only: frozenset[Symbol]


@dataclass(frozen=True, slots=True, kw_only=True)
class DayMove:
    """The gist of a symbol-day, cheap to draw: regime, overnight gap, intended open-to-close move.

    Log returns; gappers add their opening-range width, its share below the open, and their run.
    """

    regime: Regime
    gap_log: float
    close_log: float
    range_log: float = 0.0
    below_open: float = 0.0
    extent_log: float = 0.0
    sign: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DayDraws:
    """One symbol-day in full: waypoints (bar index, log price vs the open), noise, volume, news."""

    move: DayMove
    points: tuple[tuple[int, float], ...]
    noise: float
    wick_high: float
    wick_low: float
    volume_mult: float
    halt: tuple[int, int] | None
    pm_volume: int
    headlines: int
    catalyst: bool


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def plan_day(seed: int, day: date, eligible: Sequence[Symbol]) -> DayPlan:
    """Choose the day's gappers among `eligible` (2-6 per 40 symbols, mostly up) and their gaps."""
    rng = random.Random(f"{seed}:*:{day.isoformat()}")
    ordered = sorted(eligible)
    low = max(1, round(2 * len(ordered) / 40))
    high = max(low, round(6 * len(ordered) / 40))
    count = min(rng.randint(low, high), len(ordered))
    chosen = rng.sample(ordered, count)
    gaps: dict[Symbol, GapEvent] = {}
    for name in chosen:
        up = rng.random() < 0.75
        # Rarely a gap beyond the default 40 % cap, so that rule has something to reject.
        pct = rng.uniform(40.0, 60.0) if rng.random() < 0.04 else _log_uniform(rng, 2.0, 30.0)
        catalyst = rng.random() < (0.7 if up else 0.5)
        thin = rng.random() < 0.1
        volume = _log_uniform(rng, 5_000, 45_000) if thin else _log_uniform(rng, 50_000, 2_000_000)
        gaps[name] = GapEvent(
            gap_log=math.log1p(pct / 100) if up else math.log1p(-pct / 100),
            catalyst=catalyst,
            pm_volume=int(volume),
        )
    news_only = frozenset(n for n in ordered if n not in gaps and rng.random() < 0.05)
    return DayPlan(gaps=gaps, news_only=news_only)


def draw_move(
    seed: int, profile: Profile, day: date, event: GapEvent | None, listing: bool
) -> DayMove:
    """Draw the gist of a symbol-day: its regime, overnight gap and intended open-to-close move."""
    rng = random.Random(f"{seed}:{profile.symbol}:{day.isoformat()}")
    if event is None:
        sigma = profile.daily_vol * (LISTING_VOL if listing else 1.0)
        gap = 0.0 if listing else max(-0.015, min(0.015, rng.gauss(0.0, sigma * 0.25)))
        return DayMove(regime=Regime.DRIFT, gap_log=gap, close_log=rng.gauss(0.0, sigma))
    orr = rng.uniform(0.015, 0.045)
    below = rng.uniform(0.25, 0.75)
    low, high = -below * orr, (1 - below) * orr
    regime = rng.choices((Regime.GO, Regime.FADE, Regime.CHOP, Regime.FAIL), (35, 25, 25, 15))[0]
    extent = 0.0
    if regime is Regime.GO:
        extent = rng.uniform(0.8, 5.0) * orr
        close = high + extent * (1 - rng.uniform(0.0, 0.45))
    elif regime is Regime.FADE:
        extent = rng.uniform(0.4, 2.0) * orr
        close = low - extent + rng.uniform(0.0, 1.2) * orr
    elif regime is Regime.CHOP:
        close = high + rng.uniform(-0.5, 0.8) * orr
    else:
        close = low + rng.uniform(-1.0, 1.5) * orr
    sign = 1 if event.gap_log > 0 else -1
    return DayMove(
        regime=regime,
        gap_log=event.gap_log,
        close_log=sign * close,
        range_log=orr,
        below_open=below,
        extent_log=extent,
        sign=sign,
    )


def _gapper_points(rng: random.Random, bars: int, move: DayMove) -> list[tuple[int, float]]:
    """Waypoints of a gapper's day, drawn for a gap-up and mirrored for a gap-down."""
    orr, extent = move.range_log, move.extent_log
    low, high = -move.below_open * orr, (1 - move.below_open) * orr
    first, second = sorted(rng.sample(range(1, OPENING_RANGE_BARS), 2))
    a, b = (high, low) if rng.random() < 0.5 else (low, high)
    inside = low + rng.uniform(0.35, 0.8) * orr
    points = [(0, 0.0), (first, a), (second, b), (OPENING_RANGE_BARS, inside)]
    if move.regime is Regime.GO:
        breakout = rng.randint(7, 45)
        peak = rng.randint(breakout + 20, bars - 40)
        points += [
            (breakout, high + rng.uniform(0.3, 0.7) * orr),
            ((breakout + peak) // 2, high + rng.uniform(0.35, 0.7) * extent),
            (peak, high + extent),
        ]
    elif move.regime is Regime.FADE:
        breakout = rng.randint(6, 40)
        points += [
            (breakout, high + rng.uniform(0.25, 0.8) * orr),
            (breakout + rng.randint(10, 90), low - extent),
        ]
    elif move.regime is Regime.CHOP:
        at = rng.randint(6, 50)
        points.append((at, high + rng.uniform(0.2, 0.9) * orr))
        up = False
        while (at := at + rng.randint(25, 70)) < bars - 15:
            swing = high + rng.uniform(0.1, 1.0) * orr if up else high - rng.uniform(0.1, 0.6) * orr
            points.append((at, swing))
            up = not up
    else:
        points += [
            (rng.randint(12, 40), low - rng.uniform(0.0, 0.8) * orr),
            (60, high - rng.uniform(0.3, 0.8) * orr),
        ]
        if rng.random() < 0.5:  # a rally after the entry deadline, too late to trade
            points.append((rng.randint(90, bars - 30), high + rng.uniform(-0.5, 2.0) * orr))
    return [(at, move.sign * value) for at, value in points]


def _drift_points(
    rng: random.Random, bars: int, sigma: float, close: float
) -> list[tuple[int, float]]:
    """A random walk through a few waypoints, bent so that it heads for the intended close."""
    times = sorted(rng.sample(range(OPENING_RANGE_BARS, bars - 5), rng.randint(3, 7)))
    walk, level, last = [], 0.0, 0
    for at in times:
        level += rng.gauss(0.0, sigma * math.sqrt((at - last) / bars))
        walk.append((at, level))
        last = at
    end = level + rng.gauss(0.0, sigma * math.sqrt((bars - last) / bars))
    return [(0, 0.0)] + [(at, value + (close - end) * at / bars) for at, value in walk]


def draw_day(
    seed: int,
    profile: Profile,
    day: date,
    bars: int,
    event: GapEvent | None,
    news_only: bool,
    listing: bool,
) -> DayDraws:
    """Draw one symbol-day in full: its move, then the waypoints, noise, volume, halt and news."""
    if bars < MIN_SESSION_BARS:
        raise DataError(
            f"the session of {day} lasts {bars} minutes: the simulator needs at least "
            f"{MIN_SESSION_BARS}, so give it a calendar with regular or 13:00 early closes"
        )
    move = draw_move(seed, profile, day, event, listing)
    rng = random.Random(f"{seed}:{profile.symbol}:{day.isoformat()}:shape")
    if event is None:
        sigma = profile.daily_vol * (LISTING_VOL if listing else 1.0)
        points = _drift_points(rng, bars, sigma, move.close_log)
        noise = sigma * 0.08
        volume_mult = rng.lognormvariate(-0.06, 0.35) * (3.0 if listing else 1.0)
        pm_volume = int(_log_uniform(rng, 500, 30_000))
        headlines, catalyst = (1 if news_only else 0), False
    else:
        points = _gapper_points(rng, bars, move)
        noise, pm_volume, catalyst = move.range_log * 0.1, event.pm_volume, event.catalyst
        thin = event.pm_volume < 50_000
        volume_mult = rng.uniform(1.2, 3.0) if thin else rng.uniform(3.0, 10.0)
        headlines = rng.randint(1, 3) if event.catalyst else 0
    halt = None
    if rng.random() < (0.1 if event is not None else 0.01):
        start = rng.randint(20, bars - 40)
        halt = (start, start + rng.randint(4, 12))
    return DayDraws(
        move=move,
        points=tuple(points),
        noise=noise,
        wick_high=noise * rng.uniform(1.0, 2.5),
        wick_low=noise * rng.uniform(1.0, 2.5),
        volume_mult=volume_mult,
        halt=halt,
        pm_volume=pm_volume,
        headlines=headlines,
        catalyst=catalyst,
    )
