"""The open book's risk figures: its marks, open P&L, signed exposures and one-day VaR.

The day's positions are marked at each symbol's last minute close; the VaR takes the symbols'
daily returns from the day's scan snapshot (the daily bars the scan already has).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.positions import Ledger
from fin_agent.domain.trade_plan import PlanState, TradePlan
from fin_agent.domain.values import Bar, Symbol
from fin_agent.domain.var import ValueAtRisk, book_var, daily_returns

ZERO = Decimal(0)


def marks_of(last_bars: Mapping[Symbol, Bar]) -> dict[Symbol, Decimal]:
    """Each symbol's last close: what the open book is marked at."""
    return {symbol: bar.close for symbol, bar in last_bars.items()}


def open_pnl(ledger: Ledger, marks: Mapping[Symbol, Decimal]) -> Decimal:
    """The open positions' P&L at `marks` (entry commissions paid; an unmarked position at 0)."""
    return ledger.equity(dict(marks)) - ledger.start_equity - ledger.realised


def exposures(
    ledger: Ledger,
    plans: Iterable[TradePlan],
    marks: Mapping[Symbol, Decimal],
    extra: TradePlan | None = None,
) -> dict[Symbol, Decimal]:
    """Signed exposure per symbol (long +, short -): the open positions at their marks, the
    entries working (triggered plans) at their trigger, and `extra` at its entry."""
    out: dict[Symbol, Decimal] = {}
    for p in ledger.open_positions:
        price = marks.get(p.symbol, p.entry_price)
        out[p.symbol] = out.get(p.symbol, ZERO) + price * p.qty * p.side.sign
    working = [p for p in plans if p.state is PlanState.TRIGGERED]
    for plan in [*working, *([extra] if extra is not None else [])]:
        out[plan.symbol] = out.get(plan.symbol, ZERO) + plan.entry * plan.qty * plan.side.sign
    return out


class BookReturns:
    """The daily returns of the day's symbols, from its scan snapshot (computed when asked)."""

    def __init__(self) -> None:
        self._closes: dict[Symbol, tuple[Decimal, ...]] = {}
        self._returns: dict[Symbol, tuple[Decimal, ...]] = {}

    def take(self, snapshot: UniverseSnapshot) -> None:
        """The day's snapshot arrived (its scan, or its stored event on a resume)."""
        self._closes = {s.symbol: tuple(b.close for b in s.daily_bars) for s in snapshot.symbols}
        self._returns = {}

    def of(self, symbols: Iterable[Symbol]) -> dict[Symbol, tuple[Decimal, ...]]:
        """The returns of `symbols` that the snapshot has."""
        for symbol in symbols:
            if symbol not in self._returns and symbol in self._closes:
                self._returns[symbol] = daily_returns(self._closes[symbol])
        return {s: self._returns[s] for s in symbols if s in self._returns}

    def var(self, exposed: Mapping[Symbol, Decimal]) -> ValueAtRisk:
        """The one-day historical VaR of the signed exposures `exposed`."""
        return book_var(exposed, self.of(exposed))
