"""`SimulatedUniverse`: the local server's market data, a deterministic whole market.

`--universe N --seed S` gives N active, tradable US equities on real exchanges (about one in
forty a class share such as `ABCD.B`) plus N/10 assets Alpaca also lists that a scan must leave
out (inactive, not tradable, OTC). Each symbol's level, volume and every session's bar follow from
(seed, symbol, session) alone, so any range of daily bars is the same in every run. The trading day
(`day`, default today in New York) has a pre-market: about 2 % of the symbols gap 4-30 %, with
pre-market volume to match. Two symbols split, ex-dated `split_day` (default: the trading day):
a 2:1 and a 1:10, chosen by the seed among $20-90 names with 5-30 M shares a day. From the
ex-date on, the bars served are split-adjusted (prices times old/new shares, volumes the inverse)
as Alpaca's `adjustment=split` serves them, and the pre-market trades on the new scale with
heavy volume and no real gap (the snapshot's previous day's bar stays as it traded). Answers have
the shapes of Alpaca's `/v2/assets`, `/v2/stocks/snapshots`, `/v2/stocks/bars` (timeframe 1Day)
and `/v1/corporate-actions` (forward and reverse splits).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import string
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from fin_agent.adapters.broker.alpaca_local.records import asset_id, rfc3339

NY = ZoneInfo("America/New_York")
EXCHANGES = ("NASDAQ", "NYSE", "ARCA", "AMEX", "BATS")
HISTORY_DAYS = 200  # calendar days of sessions each symbol has before `day`
_MASK = 2**64 - 1


@dataclass(frozen=True, slots=True)
class _Profile:
    """A symbol's level (USD) and average volume (shares a day)."""

    price: float
    adv: int
    phase: float


class SimulatedUniverse:
    """N listed symbols and their daily bars and pre-market snapshots (see the module)."""

    def __init__(
        self, size: int, *, seed: int = 7, day: date | None = None, split_day: date | None = None
    ) -> None:
        if size < 1:
            raise ValueError(f"--universe {size}: give at least one symbol")
        self.size = size
        self.seed = seed
        self.day = day or datetime.now(NY).date()
        self.split_day = split_day or self.day

    @cached_property
    def splits(self) -> dict[str, tuple[int, int]]:
        """The split symbols and their (new, old) shares: a 2:1 and a 1:10 (fewer in a universe
        too small to hold two fitting names), all ex-dated `split_day`."""
        rng = random.Random(f"splits:{self.seed}")  # noqa: S311 - a simulation
        names = list(self.listed)
        rng.shuffle(names)
        fitting = (
            n for n in names if 20 <= self._profile(n).price <= 90
            and 5_000_000 <= self._profile(n).adv <= 30_000_000
        )  # fmt: skip
        return dict(zip(fitting, ((2, 1), (1, 10)), strict=False))

    def corporate_actions(self, start: date, end: date) -> dict[str, list[dict[str, Any]]]:
        """`/v1/corporate-actions`' `corporate_actions`: the splits ex-dated `start`..`end`."""
        answer: dict[str, list[dict[str, Any]]] = {"forward_splits": [], "reverse_splits": []}
        if not start <= self.split_day <= end:
            return answer
        for name, (new, old) in sorted(self.splits.items()):
            kind = "forward_splits" if new > old else "reverse_splits"
            ex = self.split_day.isoformat()
            answer[kind].append({"id": asset_id(f"split:{name}:{ex}"), "symbol": name,
                                 "new_rate": new, "old_rate": old, "process_date": ex,
                                 "ex_date": ex, "record_date": ex, "payable_date": ex})  # fmt: skip
        return answer

    def _factor(self, symbol: str, session: date) -> Fraction:
        """What the generated prices of `symbol` are multiplied by as of `session` (old/new
        shares from the ex-date on, else 1)."""
        shares = self.splits.get(symbol)
        if shares is None or session < self.split_day:
            return Fraction(1)
        return Fraction(shares[1], shares[0])

    @cached_property
    def listed(self) -> tuple[str, ...]:
        """The active, tradable symbols on a real exchange, sorted."""
        return tuple(sorted(self._names[: self.size]))

    @cached_property
    def excluded(self) -> tuple[str, ...]:
        """Symbols Alpaca lists that a scan must leave out (inactive, not tradable, OTC)."""
        return tuple(sorted(self._names[self.size :]))

    @cached_property
    def _names(self) -> list[str]:
        rng = random.Random(f"names:{self.seed}")  # noqa: S311 - a simulation
        names: list[str] = []
        seen: set[str] = set()
        wanted = self.size + max(3, self.size // 10)
        while len(names) < wanted:
            name = "".join(rng.choices(string.ascii_uppercase, k=rng.choice((2, 3, 4, 4))))
            if rng.random() < 0.025:
                name = f"{name}.{rng.choice('AB')}"
            if name not in seen:
                seen.add(name)
                names.append(name)
        return names

    @cached_property
    def sessions(self) -> tuple[date, ...]:
        """The sessions of the history and the trading day, oldest first (XNYS)."""
        import exchange_calendars as xcals  # type: ignore[import-untyped]  # no type information

        start = self.day - timedelta(days=HISTORY_DAYS)
        with warnings.catch_warnings():  # pandas warns of exchange_calendars' deprecated calls
            warnings.simplefilter("ignore")
            calendar = xcals.get_calendar(
                "XNYS", start=str(start - timedelta(7)), end=str(self.day + timedelta(7))
            )
            found = calendar.sessions_in_range(str(start), str(self.day))
        return tuple(s.date() for s in found)

    def assets(self) -> list[dict[str, Any]]:
        """`/v2/assets`: every asset, the excluded ones with the flag that excludes them."""
        answer = []
        for name in self.listed:
            answer.append(_asset(name, self._exchange(name), status="active", tradable=True))
        for i, name in enumerate(self.excluded):
            kind = i % 3
            answer.append(
                _asset(
                    name,
                    "OTC" if kind == 2 else self._exchange(name),
                    status="inactive" if kind == 0 else "active",
                    tradable=kind != 1,
                )
            )
        return answer

    def bars(self, symbol: str, start: date, end: date) -> list[dict[str, Any]]:
        """The daily bars of `symbol`'s sessions `start`..`end` before the trading day."""
        if symbol not in self._known:
            return []
        bars = self._bars(symbol, start, min(end, self.day - timedelta(days=1)))
        return [_scaled(bar, self._factor(symbol, self.day)) for bar in bars.values()]

    def snapshot(self, symbol: str) -> dict[str, Any] | None:
        """`symbol`'s snapshot at 09:00 ET of the trading day (None: not a known symbol)."""
        if symbol not in self._known:
            return None
        before = [d for d in self.sessions if d < self.day]
        history = {  # as each session traded
            d: _scaled(b, self._factor(symbol, d))
            for d, b in self._bars(symbol, before[-2], before[-1]).items()
        }
        previous = history[before[-1]]
        # The pre-market trades on the scale of the trading day.
        rescale = self._factor(symbol, self.day) / self._factor(symbol, before[-1])
        prev_close = float(previous["c"] * rescale)
        rng = self._rng(symbol, "premarket", self.day)
        profile = self._profile(symbol)
        gapper = rng.random() < 0.02
        if rescale != 1:  # the split's ex-date: heavy volume, no real gap
            gapper = False
        change = rng.uniform(0.04, 0.30) if gapper else rng.uniform(-0.015, 0.015)
        last = round(prev_close * (1 + change), 2)
        volume = int(profile.adv * (rng.uniform(0.05, 0.5) if gapper else rng.uniform(0, 0.01)))
        if rescale != 1:
            volume = int(profile.adv * 0.4)
        at = datetime.combine(self.day, time(8, 59, rng.randint(0, 59)), NY)
        if self.day not in self.sessions or volume == 0:
            return {"prevDailyBar": history[before[-2]], "dailyBar": previous,
                    "latestTrade": _trade(prev_close, _close_of(before[-1]))}  # fmt: skip
        high, low = max(last, prev_close), min(last, prev_close)
        day_bar = {"t": _stamp(self.day), "o": last, "h": high, "l": low, "c": last, "v": volume,
                   "n": volume // 100 + 1, "vw": last}  # fmt: skip
        return {
            "latestTrade": _trade(last, at),
            "latestQuote": {
                "t": rfc3339(at),
                "ap": last + 0.01,
                "bp": last - 0.01,
                "as": 1,
                "bs": 1,
                "ax": "V",
                "bx": "V",
                "c": ["R"],
                "z": "C",
            },
            "minuteBar": {**day_bar, "t": rfc3339(at.replace(second=0))},
            "dailyBar": day_bar,
            "prevDailyBar": previous,
        }

    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset(self._names)

    def _exchange(self, name: str) -> str:
        return EXCHANGES[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(EXCHANGES)]

    def _rng(self, symbol: str, *parts: object) -> random.Random:
        return random.Random(f"{self.seed}:{symbol}:" + ":".join(map(str, parts)))  # noqa: S311

    def _profile(self, symbol: str) -> _Profile:
        rng = self._rng(symbol, "profile")
        return _Profile(
            price=round(math.exp(rng.uniform(math.log(0.5), math.log(900))), 2),
            adv=int(math.exp(rng.uniform(math.log(20_000), math.log(30_000_000)))),
            phase=rng.uniform(0, 2 * math.pi),
        )

    def _bars(self, symbol: str, start: date, until: date) -> dict[date, dict[str, Any]]:
        """`symbol`'s bars of the sessions `start`..`until`; each bar is a function of (seed,
        symbol, session) alone, so it does not depend on the range asked for."""
        profile = self._profile(symbol)
        key = int.from_bytes(hashlib.blake2b(f"{self.seed}:{symbol}".encode()).digest()[:8])
        bars: dict[date, dict[str, Any]] = {}
        sessions = self.sessions
        for day in sessions[
            bisect.bisect_left(sessions, start) : bisect.bisect_right(sessions, until)
        ]:
            n = day.toordinal()
            u1, u2, u3, u4, u5 = (_unit(key ^ (n * 8 + k)) for k in range(5))
            level = profile.price * (1 + 0.08 * math.sin(n / 23 + profile.phase))
            open_ = round(level * (0.99 + 0.02 * u1), 2)
            close = round(level * (0.985 + 0.03 * u2), 2)
            high = round(max(open_, close) * (1 + 0.02 * u3), 2)
            low = max(round(min(open_, close) * (1 - 0.02 * u4), 2), 0.01)
            volume = int(profile.adv * (0.5 + u5))
            bars[day] = {"t": self._stamps[day], "o": max(open_, low), "h": high, "l": low,
                         "c": max(close, low), "v": volume, "n": volume // 100 + 1,
                         "vw": close}  # fmt: skip
        return bars

    @cached_property
    def _stamps(self) -> dict[date, str]:
        return {day: _stamp(day) for day in self.sessions}


def _scaled(bar: dict[str, Any], factor: Fraction) -> dict[str, Any]:
    """`bar` with prices times `factor` and volume divided by it (a split's adjustment)."""
    if factor == 1:
        return bar
    prices = {k: round(float(bar[k] * factor), 4) for k in ("o", "h", "l", "c", "vw")}
    return {**bar, **prices, "v": int(bar["v"] / factor)}


def _unit(x: int) -> float:
    """A uniform number in [0, 1) from `x` (splitmix64's finaliser): cheap and deterministic."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 2.0**64


def _asset(symbol: str, exchange: str, *, status: str, tradable: bool) -> dict[str, Any]:
    return {
        "id": asset_id(symbol), "class": "us_equity", "exchange": exchange, "symbol": symbol,
        "name": f"{symbol} Inc.", "status": status, "tradable": tradable, "marginable": True,
        "shortable": True, "easy_to_borrow": True, "fractionable": False, "attributes": [],
    }  # fmt: skip


def _stamp(day: date) -> str:
    """A daily bar's time as Alpaca writes it: midnight New York, in UTC."""
    return rfc3339(datetime.combine(day, time(0), NY)) or ""


def _close_of(day: date) -> datetime:
    return datetime.combine(day, time(16, 0), NY)


def _trade(price: float, at: datetime) -> dict[str, Any]:
    return {"t": rfc3339(at.astimezone(UTC)), "p": price, "s": 100, "x": "V", "i": 1,
            "c": ["@"], "z": "C"}  # fmt: skip
