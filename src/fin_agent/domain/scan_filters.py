"""Optional indicator filters of the scan (`ScanFilters`): the trend (price against a daily SMA)
and a band of the daily RSI, on the daily bars up to the previous session.

Off by default. A refusal names the rule and its figures, and becomes the symbol's rejection
(rule `indicator`). "Above" for a long is "below" for a short.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from fin_agent.domain.rules import ScanFilters
from fin_agent.domain.technicals import last, rsi, sma
from fin_agent.domain.values import DailyBar, Side


def beyond(side: Side, value: Decimal, level: Decimal) -> bool:
    """`value` on the trade's side of `level`: at or above it (a long), at or below (a short)."""
    return value >= level if side is Side.LONG else value <= level


def scan_refusal(
    side: Side, price: Decimal, daily: Sequence[DailyBar], filters: ScanFilters
) -> str | None:
    """Why the scan filters refuse a symbol gapping to `price` (its side `side`), or None."""
    closes = [b.close for b in daily]
    if filters.sma_days is not None:
        average = last(sma(closes, filters.sma_days))
        where = "above" if side is Side.LONG else "below"
        if average is None:
            return f"{len(closes)} daily bars, {filters.sma_days} needed for scan.filters.sma_days"
        if not beyond(side, price, average):
            return (
                f"price {price} not {where} its {filters.sma_days}-day SMA {average:.4f} "
                "(scan.filters.sma_days)"
            )
    if filters.rsi_max is not None or filters.rsi_min is not None:
        value = last(rsi(closes, filters.rsi_period))
        if value is None:
            return f"{len(closes)} daily bars, too few for a daily RSI({filters.rsi_period})"
        name = f"daily RSI({filters.rsi_period}) {value:.2f}"
        if filters.rsi_max is not None and value > filters.rsi_max:
            return f"{name} above scan.filters.rsi_max {filters.rsi_max}"
        if filters.rsi_min is not None and value < filters.rsi_min:
            return f"{name} below scan.filters.rsi_min {filters.rsi_min}"
    return None
