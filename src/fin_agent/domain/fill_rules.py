"""Bar-mode fill rules of the paper broker (DESIGN.md section 2.4), exact so backtests agree.

- An entry fills when the bar reaches the trigger, at `max(trigger, bar open)` (long).
- In the fill bar only the stop is checked, at the stop price (the open came before the entry).
- From the next bar both are checked; when one bar reaches both, the stop is assumed first.
- A stop or target fills at its price, or at the bar's open when the bar opens beyond it.
Shorts mirror everything. Slippage is applied on top, against the trader.
"""

from __future__ import annotations

from decimal import Decimal

from fin_agent.domain.orders import FillKind
from fin_agent.domain.values import Bar, Side

BPS = Decimal(10_000)
PRICE_STEP = Decimal("0.0001")


def trigger_reached(side: Side, trigger: Decimal, bar: Bar) -> bool:
    """Whether `bar` trades at a stop entry's trigger: its high reaches it (long), its low (short).

    The one entry rule: a plan's trigger firing and the broker's fill both ask it.
    """
    return bar.high >= trigger if side is Side.LONG else bar.low <= trigger


def entry_price(side: Side, trigger: Decimal, bar: Bar) -> Decimal | None:
    """Price a stop entry fills at in `bar`, before slippage, or None if not reached."""
    if not trigger_reached(side, trigger, bar):
        return None
    return max(trigger, bar.open) if side is Side.LONG else min(trigger, bar.open)


def exit_price(
    side: Side, stop: Decimal, target: Decimal, bar: Bar, *, fill_bar: bool
) -> tuple[Decimal, FillKind] | None:
    """Price and kind of the exit `bar` causes, before slippage, or None if neither is reached."""
    if side is Side.LONG:
        if bar.low <= stop:
            return (stop if fill_bar else min(stop, bar.open)), FillKind.STOP
        if not fill_bar and bar.high >= target:
            return max(target, bar.open), FillKind.TARGET
        return None
    if bar.high >= stop:
        return (stop if fill_bar else max(stop, bar.open)), FillKind.STOP
    if not fill_bar and bar.low <= target:
        return min(target, bar.open), FillKind.TARGET
    return None


def with_slippage(price: Decimal, *, buying: bool, slippage_bps: Decimal) -> Decimal:
    """`price` moved against the trader by `slippage_bps`, to 1/100 of a cent."""
    factor = (BPS + slippage_bps) / BPS if buying else (BPS - slippage_bps) / BPS
    return (price * factor).quantize(PRICE_STEP)
