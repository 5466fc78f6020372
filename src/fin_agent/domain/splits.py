"""`Split`: a stock split as its data source reports it (Yahoo's chart events, factor files).

A split of `new_shares` for `old_shares` takes effect at the open of `session` (the ex-date): 4:1
gives four new shares for one old (prices divide by 4), a 1:10 reverse split one for ten (prices
multiply by 10). Knowing it from the source beats guessing it from a gap's price ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """`new_shares` for `old_shares` of `symbol` from the open of `session` on."""

    symbol: Symbol
    session: date
    new_shares: int
    old_shares: int

    def __post_init__(self) -> None:
        counts = (self.new_shares, self.old_shares)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
            raise DataError(
                f"split of {self.symbol} on {self.session}: share counts must be whole numbers "
                f"of at least 1, got {self.new_shares}:{self.old_shares}; fix the source's event"
            )
        if self.new_shares == self.old_shares:
            raise DataError(
                f"split of {self.symbol} on {self.session}: {self.label} changes nothing; "
                "drop the event"
            )

    def after(self, last: date) -> bool:
        """True when the split takes effect after `last`: bars up to `last` fetched before the
        source re-scaled are on the old scale (the whole cached history is fetched again)."""
        return self.session > last

    @property
    def label(self) -> str:
        """The split as it is written: `4:1`, `1:10`."""
        return f"{self.new_shares}:{self.old_shares}"

    @property
    def price_factor(self) -> Fraction:
        """What a price before the split is multiplied by to compare with one after it."""
        return Fraction(self.old_shares, self.new_shares)

    @classmethod
    def of_ratio(cls, symbol: Symbol, session: date, ratio: Fraction) -> Split:
        """The split giving `ratio` new shares per old one (in lowest terms)."""
        if ratio <= 0:
            raise DataError(
                f"split of {symbol} on {session}: ratio {ratio} is not positive; "
                "fix the source's event"
            )
        return cls(
            symbol=symbol, session=session, new_shares=ratio.numerator, old_shares=ratio.denominator
        )
