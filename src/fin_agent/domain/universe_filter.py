"""`UniverseFilter`: the pre-filter that cuts a whole market down to the symbols worth a snapshot.

Applied before the open to the cached daily bars of every listed symbol: the last close within a
price band and the average volume of the last `adv_period` sessions at least `adv_min`. Its bounds
should be looser than the scan's own rules (a symbol it drops is never scanned): the price band
on the previous close, not on the pre-market price the scan's band reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import DailyBar


@dataclass(frozen=True, slots=True, kw_only=True)
class UniverseFilter:
    """Keep a symbol whose last close is in [price_min, price_max] and whose ADV >= adv_min."""

    price_min: Decimal
    price_max: Decimal
    adv_min: int
    adv_period: int = 20

    def __post_init__(self) -> None:
        if not (0 <= self.price_min < self.price_max) or self.adv_min < 0 or self.adv_period < 1:
            raise ConfigError(
                f"universe filter {self.price_min}..{self.price_max} USD, ADV >= {self.adv_min} "
                f"over {self.adv_period} sessions: use 0 <= price_min < price_max, adv_min >= 0 "
                "and adv_period >= 1"
            )

    def keeps(self, bars: Sequence[DailyBar]) -> bool:
        """Whether the symbol of `bars` (oldest first) passes: no bars, no pass."""
        if len(bars) < self.adv_period:
            return False
        if not self.price_min <= bars[-1].close <= self.price_max:
            return False
        recent = bars[-self.adv_period :]
        return sum(b.volume for b in recent) >= self.adv_min * self.adv_period
