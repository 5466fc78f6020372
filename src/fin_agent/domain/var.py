"""Historical value at risk (one day): of the open book from its symbols' daily returns, and of
the strategy from its daily P&L history.

The VaR at `confidence_pct` is the loss that the worst `100 - confidence_pct` % of the past days
reached: the empirical quantile of the scenario P&Ls (the lower one, no interpolation), as a
positive amount of money, 0 when even that day made money.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from fin_agent.domain.errors import DomainError
from fin_agent.domain.values import Symbol

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CONFIDENCES_PCT = (95, 99)
MONEY_STEP = Decimal("0.01")


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueAtRisk:
    """One-day VaR at 95 % and 99 %, in money, and how many past days it stands on."""

    var95: Decimal
    var99: Decimal
    days: int

    def at(self, confidence_pct: int) -> Decimal:
        """The VaR at 95 or 99 %."""
        return self.var99 if confidence_pct == 99 else self.var95


NO_RISK = ValueAtRisk(var95=ZERO, var99=ZERO, days=0)


def daily_returns(closes: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Simple returns of consecutive closes (a zero or negative close gives no return)."""
    return tuple(b / a - 1 for a, b in itertools.pairwise(closes) if a > 0)


def historical_var(pnls: Sequence[Decimal], confidence_pct: int) -> Decimal:
    """The one-day VaR of past daily P&Ls `pnls` at `confidence_pct` (0 when there are none)."""
    if not 0 < confidence_pct < 100:
        raise DomainError(f"VaR confidence {confidence_pct} % must be between 0 and 100")
    if not pnls:
        return ZERO
    ordered = sorted(pnls)
    tail = len(ordered) * (100 - confidence_pct) / 100
    index = min(max(math.ceil(tail) - 1, 0), len(ordered) - 1)
    return max(-ordered[index], ZERO)


def var_of(pnls: Sequence[Decimal]) -> ValueAtRisk:
    """The 95 % and 99 % VaR of daily P&Ls, to the cent."""
    return ValueAtRisk(
        var95=historical_var(pnls, 95).quantize(MONEY_STEP),
        var99=historical_var(pnls, 99).quantize(MONEY_STEP),
        days=len(pnls),
    )


def book_scenarios(
    exposures: Mapping[Symbol, Decimal], returns: Mapping[Symbol, Sequence[Decimal]]
) -> tuple[Decimal, ...]:
    """The book's P&L on each past day: every signed exposure (long +, short -) times its
    symbol's return that day, over the most recent days every held symbol has a return for.
    A symbol without returns is left out (a candidate always has its scan's history)."""
    held = {s: v for s, v in exposures.items() if v != 0 and returns.get(s)}
    if not held:
        return ()
    days = min(len(returns[s]) for s in held)
    recent = {s: tuple(returns[s])[-days:] for s in held}
    return tuple(sum((v * recent[s][t] for s, v in held.items()), ZERO) for t in range(days))


def book_var(
    exposures: Mapping[Symbol, Decimal], returns: Mapping[Symbol, Sequence[Decimal]]
) -> ValueAtRisk:
    """The open book's one-day historical VaR at 95 % and 99 %."""
    return var_of(book_scenarios(exposures, returns))


def var_pct(amount: Decimal, equity: Decimal) -> Decimal:
    """A VaR as a percentage of equity (0 for no equity)."""
    return (HUNDRED * amount / equity).quantize(Decimal("0.0001")) if equity > 0 else ZERO
