"""The simulator's universe: made-up tickers, each with an anchor price, a volume and a volatility.

Two IPO slots relist a new company every six weeks, staggered, so one is always recently listed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Symbol, symbol

EPOCH = date(2000, 1, 3)
IPO_CYCLE_DAYS = 42
MAX_UNIVERSE = 10_000  # a market-scale universe (7,000 symbols) for the benchmarks

_CONSONANTS = "BCDFGHJKLMNPRSTVWXZ"
_VOWELS = "AEIOUY"
_PATTERNS = ("CVC", "CVCC", "CVCV", "VCVC", "CVVC", "CCVC")
_SUFFIXES = (
    "Therapeutics",
    "Holdings",
    "Systems",
    "Energy",
    "Labs",
    "Networks",
    "Biosciences",
    "Robotics",
    "Materials",
    "Mining",
    "Semiconductor",
    "Logistics",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """How one listed company trades: anchor price, typical daily volume, daily volatility."""

    symbol: Symbol
    company: str
    listed: date | None
    base_price: float
    adv: float
    daily_vol: float


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _ticker(rng: random.Random) -> str:
    pattern = rng.choice(_PATTERNS)
    return "".join(rng.choice(_CONSONANTS if c == "C" else _VOWELS) for c in pattern)


def _draw_profile(rng: random.Random, ticker: Symbol, listed: date | None, penny: bool) -> Profile:
    price = _log_uniform(rng, 0.9, 2.4) if penny else _log_uniform(rng, 3.0, 300.0)
    cheapness = min(1.0, max(0.0, math.log(300.0 / price) / math.log(100.0)))
    return Profile(
        symbol=ticker,
        company=f"{ticker.title()} {rng.choice(_SUFFIXES)}",
        listed=listed,
        base_price=price,
        adv=_log_uniform(rng, 300_000, 20_000_000),
        daily_vol=rng.uniform(0.012, 0.028) + 0.02 * cheapness,
    )


def _listing_start(phase: int, day: date) -> date:
    cycle = ((day - EPOCH).days - phase) // IPO_CYCLE_DAYS
    return EPOCH + timedelta(days=cycle * IPO_CYCLE_DAYS + phase)


class Universe:
    """The tickers of one seed and the profile of whichever company trades on each at a date."""

    def __init__(self, seed: int, size: int) -> None:
        if not 1 <= size <= MAX_UNIVERSE:
            raise ConfigError(
                f"universe_size must be between 1 and {MAX_UNIVERSE}, got {size}: "
                "pick a size in that range (the default is 40)"
            )
        self._seed = seed
        rng = random.Random(f"{seed}:universe")
        names: list[Symbol] = []
        seen: set[str] = set()
        while len(names) < size:
            text = _ticker(rng)
            if text not in seen:
                seen.add(text)
                names.append(symbol(text))
        ordered = sorted(names)
        slots = 2 if size >= 20 else (1 if size >= 5 else 0)
        ipo = rng.sample(ordered, slots)
        base_phase = rng.randrange(IPO_CYCLE_DAYS)
        self._ipo_phase = {
            name: (base_phase + i * IPO_CYCLE_DAYS // slots) % IPO_CYCLE_DAYS
            for i, name in enumerate(ipo)
        }
        seasoned = [name for name in ordered if name not in self._ipo_phase]
        pennies = set(rng.sample(seasoned, len(seasoned) // 20))  # below the $2 price floor
        self._seasoned = {
            name: _draw_profile(
                random.Random(f"{seed}:{name}:profile"), name, None, name in pennies
            )
            for name in seasoned
        }
        self._listings: dict[tuple[Symbol, date], Profile] = {}
        self.symbols: tuple[Symbol, ...] = tuple(ordered)

    def __contains__(self, name: object) -> bool:
        return name in self._seasoned or name in self._ipo_phase

    def listed_since(self, name: Symbol, day: date) -> date | None:
        """Return the calendar day the company trading as `name` on `day` listed (None: always)."""
        phase = self._ipo_phase.get(name)
        return None if phase is None else _listing_start(phase, day)

    def profile(self, name: Symbol, day: date) -> Profile:
        """Return the profile of the company trading as `name` on `day` (the symbol must exist)."""
        seasoned = self._seasoned.get(name)
        if seasoned is not None:
            return seasoned
        listed = _listing_start(self._ipo_phase[name], day)
        key = (name, listed)
        found = self._listings.get(key)
        if found is None:
            rng = random.Random(f"{self._seed}:{name}:listing:{listed.isoformat()}")
            found = _draw_profile(rng, name, listed, penny=False)
            self._listings[key] = found
        return found
