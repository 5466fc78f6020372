"""Minute price paths of the simulator, in integer cents: the regular session and the pre-market.

A monotone map pins a session path to its daily bar, which is thus the minute bars' aggregate.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fin_agent.adapters.simulator.day import OPENING_RANGE_BARS, SCAN_MINUTE

CentsBar = tuple[int, int, int, int, int]  # open, high, low, close, volume


@dataclass(frozen=True, slots=True, kw_only=True)
class DayCents:
    """A symbol-day's daily bar in cents, with the waypoints its minute path follows."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    points: tuple[tuple[int, float], ...]


def day_cents(
    open_price: float,
    close_price: float,
    points: Sequence[tuple[int, float]],
    bars: int,
    wick_high: float,
    wick_low: float,
    volume: int,
) -> DayCents:
    """Round a day to cents and place its high and low just beyond its most extreme waypoints."""
    open_c = max(1, round(open_price * 100))
    close_c = max(1, round(close_price * 100))
    full = (*points, (bars, math.log(close_c / open_c)))
    # The path is calm near the open and the close, so its extremes there reach less far.
    top = max(value + wick_high * max(0.25, _calm(t, bars)) for t, value in full)
    bottom = min(value - wick_low * max(0.25, _calm(t, bars)) for t, value in full)
    return DayCents(
        open=open_c,
        high=max(open_c, close_c, round(open_c * math.exp(top))),
        low=max(1, min(open_c, close_c, round(open_c * math.exp(bottom)))),
        close=close_c,
        volume=volume,
        points=full,
    )


def _calm(t: int, bars: int) -> float:
    """Noise scale at path point `t`: quieter in the opening range, pinned at the open and close."""
    return (0.4 if t <= OPENING_RANGE_BARS else 1.0) * max(0.0, min(1.0, t / 3, (bars - t) / 10))


def _interpolate(points: Sequence[tuple[int, float]], bars: int) -> list[float]:
    path = [0.0] * (bars + 1)
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        step = (v1 - v0) / (t1 - t0)
        for t in range(t0, t1 + 1):
            path[t] = v0 + step * (t - t0)
    return path


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` that add up to `total` exactly."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    out: list[int] = []
    running, given = 0.0, 0
    for weight in weights:
        running += weight
        upto = round(total * running / whole)
        out.append(upto - given)
        given = upto
    out[-1] += total - given
    return out


def session_cents(
    rng: random.Random,
    day: DayCents,
    bars: int,
    noise: float,
    halt: tuple[int, int] | None,
) -> list[CentsBar]:
    """Build the day's minute bars: waypoints plus noise, pinned to the daily bar's extremes."""
    path = _interpolate(day.points, bars)
    wander = 0.0
    keep = math.exp(-1 / 12)
    spread = math.sqrt(1 - keep * keep)
    for t in range(1, bars):
        wander = keep * wander + spread * rng.gauss(0.0, 1.0)
        path[t] += noise * _calm(t, bars) * wander
    if halt is not None:
        for t in range(halt[0] + 1, halt[1] + 1):
            path[t] = path[halt[0]]
    prices = [day.open * math.exp(x) for x in path]
    prices[0], prices[-1] = float(day.open), float(day.close)

    halted = range(halt[0], halt[1]) if halt is not None else range(0)
    raw: list[tuple[float, float, float, float]] = []
    weights: list[float] = []
    for t in range(bars):
        o, c = prices[t], prices[t + 1]
        if t in halted:
            raw.append((o, o, o, o))
            weights.append(0.0)
            continue
        up = abs(rng.gauss(0.0, noise * 0.4))
        down = abs(rng.gauss(0.0, noise * 0.4))
        raw.append((o, max(o, c) * (1 + up), min(o, c) * (1 - down), c))
        shape = 1 + 2.2 * math.exp(-t / 30) + 1.2 * math.exp(-(bars - 1 - t) / 25)
        move = abs(c - o) / (o * noise) if noise > 0 else 0.0
        weights.append(shape * (1 + min(3.0, 0.4 * move)) * rng.lognormvariate(0.0, 0.35))
    volumes = _split(day.volume, weights)

    pin = _pin(raw, day)
    return [
        (round(pin(o)), round(pin(h)), round(pin(lo)), round(pin(c)), vol)
        for (o, h, lo, c), vol in zip(raw, volumes, strict=True)
    ]


def _pin(raw: list[tuple[float, float, float, float]], day: DayCents) -> Callable[[float], float]:
    """A monotone map stretching the path beyond the open/close band onto the day's high and low.

    Monotone, so bar OHLC stay consistent and the order of events (breakouts, stops) is kept.
    """
    hi_edge, lo_edge = float(max(day.open, day.close)), float(min(day.open, day.close))
    peak = max(range(len(raw)), key=lambda t: raw[t][1])
    if raw[peak][1] <= hi_edge and day.high > hi_edge:  # force a high the path never made
        o, _, lo, c = raw[peak]
        raw[peak] = (o, hi_edge + 0.5, lo, c)
    trough = min(range(len(raw)), key=lambda t: raw[t][2])
    if raw[trough][2] >= lo_edge and day.low < lo_edge:
        o, h, _, c = raw[trough]
        raw[trough] = (o, h, lo_edge - 0.5, c)
    top, bottom = raw[peak][1], raw[trough][2]
    up = (day.high - hi_edge) / (top - hi_edge) if top > hi_edge else 0.0
    down = (lo_edge - day.low) / (lo_edge - bottom) if bottom < lo_edge else 0.0

    def pin(price: float) -> float:
        if price > hi_edge:
            return float(day.high) if price >= top else hi_edge + (price - hi_edge) * up
        if price < lo_edge:
            return float(day.low) if price <= bottom else lo_edge - (lo_edge - price) * down
        return price

    return pin


def premarket_cents(
    rng: random.Random,
    prev_close: int,
    open_c: int,
    minutes: int,
    jump: int | None,
    gap_log: float,
    volume_by_scan: int,
) -> tuple[list[int], list[int]]:
    """Minute closes and volumes from 04:00 ET to the open: flat until a gapper's jump, then busy.

    `volume_by_scan` is the volume traded before 09:00 ET; later minutes add in proportion.
    """
    start_log = math.log(prev_close)
    end_log = math.log(open_c)
    noise = max(0.002, 0.06 * abs(gap_log))
    after = start_log + gap_log * rng.uniform(0.75, 1.05)
    prices: list[int] = []
    weights: list[float] = []
    wander = 0.0
    for t in range(minutes):
        to_open = (minutes - t) / 10
        if jump is None or t >= jump:
            begin, at = (start_log, 0) if jump is None else (after, jump)
            level = begin + (end_log - begin) * (t - at) / max(1, minutes - at)
            wander = 0.9 * wander + rng.gauss(0.0, noise * 0.45)
            busy = jump is not None
            trades = rng.random() < (0.9 if busy else 0.08)
            shape = (1 + 3 * math.exp(-(t - at) / 20) if busy else 1.0) + math.exp(-to_open * 0.5)
        else:
            level, shape = start_log, 0.2
            wander = 0.9 * wander + rng.gauss(0.0, 0.001)
            trades = rng.random() < 0.05
        prices.append(max(1, round(math.exp(level + wander * min(1.0, to_open)))))
        weights.append(shape * rng.lognormvariate(0.0, 0.5) if trades else 0.0)
    scan = min(SCAN_MINUTE, minutes)
    if scan > 0 and not any(weights[:scan]):
        weights[rng.randrange(scan)] = 1.0
    early = sum(weights[:scan])
    total = round(volume_by_scan * sum(weights) / early) if early > 0 else 0
    return prices, _split(total, weights)
