"""The default gap-and-go rules written again on backtrader, sharing no code with fin_agent.

The bench's independent check (bench/backtest.py): pandas reads the bar files, a plain-Python scan
picks each day's candidates (DESIGN.md section 2: gap band, price band, pre-market volume, history,
ADV, split guard, rank), and a backtrader `Strategy` walks the candidates' minute bars, planning
from the opening range and filling by the bar rules of DESIGN.md section 2.4 with the risk limits.
Backtrader's own broker fills stop orders on the next bar and cannot refuse an entry at its
trigger, so the strategy keeps its own book. Its trades must equal fin_agent's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import backtrader as bt  # type: ignore[import-untyped]
import pandas as pd  # type: ignore[import-untyped]

NY = ZoneInfo("America/New_York")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
SPLITS = sorted(
    {Fraction(1, n) for n in (2, 3, 4, 5, 7, 8, 10, 15, 20)}
    | {Fraction(2, 3), Fraction(3, 4), Fraction(4, 5)}
    | {Fraction(n) for n in (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50)}
)
SPLIT_TOLERANCE = Decimal("0.0025")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The strategy's figures (config.yaml's defaults)."""

    gap_min_pct: Decimal = Decimal(4)
    gap_max_pct: Decimal = Decimal(40)
    price_min: Decimal = Decimal(2)
    price_max: Decimal = Decimal(500)
    pm_volume_min: int = 50_000
    adv_min: Decimal = Decimal(500_000)
    min_history_bars: int = 15
    atr_period: int = 14
    adv_period: int = 20
    top_n: int = 5
    heavy_volume_pct: Decimal = Decimal(25)
    scan_at: time = time(9, 0)
    range_minutes: int = 5
    entry_offset: Decimal = CENT
    entry_deadline: time = time(10, 30)
    atr_stop_multiple: Decimal = Decimal("0.5")
    reward_risk: Decimal = Decimal(2)
    risk_per_trade_pct: Decimal = Decimal(1)
    max_position_pct: Decimal = Decimal(25)
    flatten_before_close_minutes: int = 5
    max_open_positions: int = 3
    max_gross_exposure_pct: Decimal = Decimal(100)
    daily_loss_limit_pct: Decimal = Decimal(2)

    @property
    def history_bars(self) -> int:
        return max(self.min_history_bars, self.adv_period, 3 * self.atr_period + 1)


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip, in the fields both implementations report."""

    day: date
    symbol: str
    qty: int
    entry: Decimal
    exit: Decimal
    reason: str
    entry_at: datetime
    exit_at: datetime


@dataclass(frozen=True, slots=True)
class Pick:
    symbol: str
    rank: int
    atr: Decimal


def _dec(value: float) -> Decimal:
    return Decimal(repr(round(value, 4)))


def read_bars(path: Path) -> pd.DataFrame:
    """A bar file (CSV, gzip CSV, Parquet) with columns symbol, datetime, open..volume."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def to_utc_starts(stamps: pd.Series, tz: str, stamp: str, interval_secs: int) -> pd.Series:
    """Bar-start instants in UTC from naive (in `tz`) or zoned stamps marking a bar's `stamp`."""
    parsed = pd.to_datetime(stamps)
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    parsed = parsed.dt.tz_convert("UTC")
    if stamp == "end":
        parsed = parsed - pd.Timedelta(seconds=interval_secs)
    return parsed


@dataclass(slots=True)
class Market:
    """The data as the scan sees it: daily bars per symbol, minute bars per symbol-day."""

    daily: dict[str, list[tuple[date, Decimal, Decimal, Decimal, Decimal, int]]]
    minutes: dict[tuple[str, date], list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, int]]]
    pm_span: dict[str, tuple[date, date]] = field(default_factory=dict)

    def sessions(self) -> list[date]:
        days = set()
        for (_, day), bars in self.minutes.items():
            if any(time(9, 30) <= b[0].astimezone(NY).time() < time(16, 0) for b in bars):
                days.add(day)
        return sorted(days)


def load(daily_path: Path, minute_path: Path, *, tz: str, stamp: str) -> Market:
    """Read a daily and a 1-minute bar file into a `Market`."""
    daily: dict[str, list[Any]] = {}
    frame = read_bars(daily_path)
    days = pd.to_datetime(frame["datetime"]).dt.date
    for row in zip(
        frame["symbol"], days, frame["open"], frame["high"], frame["low"], frame["close"],
        frame["volume"], strict=True,
    ):  # fmt: skip
        name, day, o, h, low, c, v = row
        daily.setdefault(str(name), []).append(
            (day, _dec(o), _dec(h), _dec(low), _dec(c), round(v))
        )
    for series in daily.values():
        series.sort()
    frame = read_bars(minute_path)
    starts = to_utc_starts(frame["datetime"], tz, stamp, 60)
    local_days = starts.dt.tz_convert(NY).dt.date
    minutes: dict[tuple[str, date], list[Any]] = {}
    for row in zip(
        frame["symbol"], starts, local_days, frame["open"], frame["high"], frame["low"],
        frame["close"], frame["volume"], strict=True,
    ):  # fmt: skip
        name, start, day, o, h, low, c, v = row
        minutes.setdefault((str(name), day), []).append(
            (start.to_pydatetime(), _dec(o), _dec(h), _dec(low), _dec(c), round(v))
        )
    market = Market(daily=daily, minutes=minutes)
    for (name, day), bars in sorted(minutes.items()):
        bars.sort()
        if any(time(4, 0) <= b[0].astimezone(NY).time() < time(9, 30) for b in bars):
            first, _ = market.pm_span.get(name, (day, day))
            market.pm_span[name] = (first, day)
    return market


def _atr(bars: list[Any], period: int) -> Decimal | None:
    ranges = [max(b[2] - b[3], abs(b[2] - a[4]), abs(b[3] - a[4])) for a, b in pairwise(bars)]
    if len(ranges) < period:
        return None
    atr = sum(ranges[:period], Decimal(0)) / period
    for tr in ranges[period:]:
        atr = (atr * (period - 1) + tr) / period
    return atr


def _premarket(market: Market, name: str, day: date, prev_close: Decimal) -> Any:
    """(last, volume) at scan time: from pre-market bars inside the symbol's pre-market span,
    else the day's open with volume None; None without any."""
    bars = market.minutes.get((name, day))
    span = market.pm_span.get(name)
    if bars and span and span[0] <= day <= span[1]:
        scan_at = datetime.combine(day, time(9, 0), NY)
        last, volume = prev_close, 0
        for start, _, _, _, c, v in bars:
            local = start.astimezone(NY)
            if time(4, 0) <= local.time() < time(9, 30) and start + timedelta(minutes=1) <= scan_at:
                last, volume = c, volume + v
        return last, volume
    for row in market.daily.get(name, ()):
        if row[0] == day:
            return row[1], None
    regular = [b for b in bars or () if time(9, 30) <= b[0].astimezone(NY).time() < time(16, 0)]
    return (regular[0][1], None) if regular else None


def scan(market: Market, day: date, rules: Rules) -> list[Pick]:
    """The day's candidates, ranked (long gaps: the default direction)."""
    names = set(market.daily) | {n for n, _ in market.minutes}
    passed: list[tuple[Decimal, Decimal, str, Decimal]] = []
    for name in sorted(names):
        history = [b for b in market.daily.get(name, ()) if b[0] < day][-rules.history_bars :]
        if not history:
            continue
        prev_close = history[-1][4]
        pm = _premarket(market, name, day, prev_close)
        if pm is None:
            continue
        last, volume = pm
        gap = HUNDRED * (last - prev_close) / prev_close
        recent = history[-rules.adv_period :]
        adv = Decimal(sum(b[5] for b in recent)) / len(recent)
        ratio = last / prev_close
        split = any(
            abs(ratio - Decimal(s.numerator) / Decimal(s.denominator))
            <= Decimal(s.numerator) / Decimal(s.denominator) * SPLIT_TOLERANCE
            for s in SPLITS
        )
        heavy = (
            volume is not None
            and adv > 0
            and Decimal(volume) * HUNDRED >= adv * rules.heavy_volume_pct
        )
        if split and not heavy:
            continue
        if not (gap > 0 and rules.gap_min_pct <= gap <= rules.gap_max_pct):
            continue
        if not rules.price_min <= last <= rules.price_max:
            continue
        if volume is not None and volume < rules.pm_volume_min:
            continue
        atr = _atr(history, rules.atr_period)
        if len(history) < rules.min_history_bars or atr is None or adv < rules.adv_min:
            continue
        passed.append((-gap, -Decimal(volume or 0), name, atr))
    passed.sort()
    return [Pick(p[2], i, p[3]) for i, p in enumerate(passed[: rules.top_n], start=1)]


@dataclass(slots=True)
class _Plan:
    symbol: str
    rank: int
    entry: Decimal
    stop: Decimal
    target: Decimal
    qty: int
    state: str = "planned"  # planned, done


@dataclass(slots=True)
class _Position:
    plan: _Plan
    price: Decimal
    at: datetime
    filled_in: datetime
    closing: bool = False


class GapStrategy(bt.Strategy):  # type: ignore[misc]
    """Walks the minute bars, minute by minute: plans, risk and fills for the day's candidates."""

    params = (("days", None), ("rules", None), ("equity", None), ("trades", None))

    def __init__(self) -> None:
        self.rules: Rules = self.p.rules
        self.picks: dict[date, list[Pick]] = self.p.days
        self.equity: Decimal = self.p.equity
        self.trades: list[Trade] = self.p.trades
        self.lengths = [0] * len(self.datas)
        self.day: date | None = None

    def prenext(self) -> None:
        self.next()  # feeds start on the days their symbol is a candidate, not all at once

    def next(self) -> None:
        bars = []
        for i, data in enumerate(self.datas):
            if len(data) != self.lengths[i]:
                self.lengths[i] = len(data)
                # backtrader keeps times as float days: round back to the whole second
                raw = data.datetime.datetime(0) + timedelta(milliseconds=500)
                start = raw.replace(microsecond=0, tzinfo=UTC)
                bars.append(
                    (data._name, start, _dec(data.open[0]), _dec(data.high[0]),
                     _dec(data.low[0]), _dec(data.close[0]))
                )  # fmt: skip
        if not bars:
            return
        minute = bars[0][1]
        day = minute.astimezone(NY).date()
        if day != self.day:
            if self.day is not None:
                self._finish()
            self._begin(day)
        self._minute(minute, sorted((b for b in bars if b[1] == minute), key=lambda b: b[0]))

    def stop(self) -> None:
        if self.day is not None:
            self._finish()

    def _begin(self, day: date) -> None:
        self.day = day
        opens = datetime.combine(day, time(9, 30), NY).astimezone(UTC)
        self.opens, self.closes = opens, datetime.combine(day, time(16, 0), NY).astimezone(UTC)
        self.range_end = opens + timedelta(minutes=self.rules.range_minutes)
        deadline = datetime.combine(day, self.rules.entry_deadline, NY).astimezone(UTC)
        self.until = min(deadline, self.closes)
        self.flatten_at = self.closes - timedelta(minutes=self.rules.flatten_before_close_minutes)
        self.start_equity = self.equity
        self.candidates = {p.symbol: p for p in self.picks.get(day, [])}
        self.range: dict[str, list[tuple[Decimal, Decimal]]] = {}
        self.plans: dict[str, _Plan] = {}
        self.planned = self.flattened = self.reducing = False
        self.open: dict[str, _Position] = {}
        self.realised = Decimal(0)
        self.last_close: dict[str, Decimal] = {}

    def _plan(self) -> None:
        self.planned = True
        rules = self.rules
        for name, pick in self.candidates.items():
            spans = self.range.get(name)
            if not spans:
                continue
            high, low = max(h for h, _ in spans), min(lo for _, lo in spans)
            entry = high + rules.entry_offset
            by_atr = (entry - rules.atr_stop_multiple * pick.atr).quantize(CENT, ROUND_CEILING)
            stop = (
                max(low - rules.entry_offset, by_atr)
                if by_atr < entry
                else low - rules.entry_offset
            )
            target = entry + rules.reward_risk * (entry - stop)
            if min(entry, stop, target) <= 0 or entry - stop <= 0:
                continue
            by_risk = math.floor(
                self.start_equity * rules.risk_per_trade_pct / HUNDRED / (entry - stop)
            )
            by_cap = math.floor(self.start_equity * rules.max_position_pct / HUNDRED / entry)
            qty = max(0, min(by_risk, by_cap))
            if qty > 0:
                self.plans[name] = _Plan(name, pick.rank, entry, stop, target, qty)

    def _minute(self, minute: datetime, bars: list[Any]) -> None:
        if not self.opens <= minute < self.closes:
            return
        for name, start, _, high, low, close in bars:
            if start < self.range_end and name in self.candidates:
                self.range.setdefault(name, []).append((high, low))
            self.last_close[name] = close
        if minute >= self.range_end and not self.planned:
            self._plan()
        if minute >= self.flatten_at and not self.flattened:
            self.flattened = True
            for held in self.open.values():
                held.closing = True
        if minute >= self.until:
            for plan in self.plans.values():
                if plan.state == "planned":
                    plan.state = "done"
        orders = self._enter(minute, bars)
        fills: list[tuple[str, _Plan, Decimal, datetime, str]] = []
        for name, start, o, high, low, _ in bars:
            end = start + timedelta(minutes=1)
            position: _Position | None = self.open.get(name)
            if position is not None and position.closing:
                fills.append(("exit", position.plan, o, start, "flatten"))
                position = None
            elif position is not None and position.filled_in < start:
                plan = position.plan
                if low <= plan.stop:
                    fills.append(("exit", plan, min(plan.stop, o), end, "stop"))
                elif high >= plan.target:
                    fills.append(("exit", plan, max(plan.target, o), end, "target"))
            for plan in [p for p in orders if p.symbol == name]:
                if high >= plan.entry:
                    orders.remove(plan)
                    fills.append(("entry", plan, max(plan.entry, o), end, start.isoformat()))
                    if low <= plan.stop:
                        fills.append(("exit", plan, plan.stop, end, "stop"))
        self._settle(fills)

    def _enter(self, minute: datetime, bars: list[Any]) -> list[_Plan]:
        rules = self.rules
        fired = sorted(
            (
                plan
                for name, start, _, high, _, _ in bars
                if (plan := self.plans.get(name)) is not None
                and plan.state == "planned"
                and self.range_end <= start < self.until
                and high >= plan.entry
            ),
            key=lambda p: p.rank,
        )
        placed: list[_Plan] = []
        for plan in fired:
            exposure = sum((p.price * p.plan.qty for p in self.open.values()), Decimal(0))
            pending = sum((p.entry * p.qty for p in placed), Decimal(0))
            cap = self.start_equity * rules.max_gross_exposure_pct / HUNDRED
            if self.reducing:
                plan.state = "done"
                continue
            if len(self.open) + len(placed) >= rules.max_open_positions:
                continue  # stays armed
            if exposure + pending + plan.entry * plan.qty > cap:
                continue  # stays armed
            plan.state = "done"
            placed.append(plan)
        return placed

    def _settle(self, fills: Iterable[tuple[str, _Plan, Decimal, datetime, str]]) -> None:
        for kind, plan, price, at, reason in fills:
            if kind == "entry":
                start = datetime.fromisoformat(reason)
                self.open[plan.symbol] = _Position(plan, price, at, filled_in=start)
                continue
            self._close(plan.symbol, price, at, reason)

    def _close(self, name: str, price: Decimal, at: datetime, reason: str) -> None:
        position = self.open.pop(name)
        assert self.day is not None
        self.trades.append(
            Trade(self.day, name, position.plan.qty, position.price, price, reason, position.at, at)
        )
        pnl = (price - position.price) * position.plan.qty
        self.realised += pnl
        self.equity += pnl
        limit = self.start_equity * self.rules.daily_loss_limit_pct / HUNDRED
        if self.realised <= -limit:
            self.reducing = True

    def _finish(self) -> None:
        if not self.planned:
            self._plan()
        for name in list(self.open):
            price = self.last_close.get(name, self.open[name].plan.entry)
            self._close(name, price, self.closes, "flatten")


def backtest(market: Market, days: list[date], rules: Rules, equity: Decimal) -> list[Trade]:
    """Scan each day, then run every symbol's regular-session bars through backtrader (one feed
    per symbol, as backtrader is used); the strategy trades the day's candidates."""
    picks = {day: scan(market, day, rules) for day in days}
    wanted = set(days)
    frames: dict[str, list[Any]] = {}
    for (name, day), bars in market.minutes.items():
        if day not in wanted:
            continue
        for start, o, h, low, c, v in bars:
            if time(9, 30) <= start.astimezone(NY).time() < time(16, 0):
                frames.setdefault(name, []).append(
                    (start.replace(tzinfo=None), float(o), float(h), float(low), float(c), v)
                )
    trades: list[Trade] = []
    cerebro = bt.Cerebro(stdstats=False)
    for name, rows in sorted(frames.items()):
        frame = pd.DataFrame(rows, columns=["datetime", "open", "high", "low", "close", "volume"])
        frame = frame.set_index("datetime").sort_index()
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None), name=name)
    if not frames:
        return trades
    cerebro.addstrategy(GapStrategy, days=picks, rules=rules, equity=equity, trades=trades)
    cerebro.run(runonce=False, preload=True)
    return trades
