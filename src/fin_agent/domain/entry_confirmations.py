"""Optional entry confirmations (`EntryConfirmations`): checked when a plan's entry triggers, on
the session's minute bars before the trigger bar: price against the session VWAP, the 1-minute RSI
and the relative volume.

Off by default, so the default strategy trades exactly as without them. A refusal is a
`plan.rejected` with reason `confirmation:<rule>` and the figures in its detail; the plan stays
armed and is checked again on its next trigger until the entry deadline. For a short, "above the
VWAP" is below it and an RSI cap of 85 is a floor of 15.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.gap_scanner import ScanResult
from fin_agent.domain.rules import EntryConfirmations
from fin_agent.domain.scan_filters import beyond
from fin_agent.domain.technicals import last, rsi, session_relative_volume, vwap
from fin_agent.domain.trade_plan import TradePlan
from fin_agent.domain.values import Bar, Side

HUNDRED = Decimal(100)
CONFIRMATION_PREFIX = "confirmation:"
MINUTE = timedelta(minutes=1)


def _rsi_cap(side: Side, cap: Decimal) -> tuple[str, Decimal]:
    return ("above", cap) if side is Side.LONG else ("below", HUNDRED - cap)


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryContext:
    """What an entry confirmation looks at: the trade, the minutes before its trigger bar, and
    the figures of the day it is measured against."""

    side: Side
    entry: Decimal
    bars: Sequence[Bar]
    adv: Decimal
    elapsed_minutes: int
    session_minutes: int

    @classmethod
    def at_trigger(
        cls,
        *,
        side: Side,
        entry: Decimal,
        bars: Iterable[Bar],
        adv: Decimal,
        trigger_bar: datetime,
        opens_at: datetime,
        closes_at: datetime,
    ) -> EntryContext:
        """The context of a trigger in the bar starting `trigger_bar`: the session's bars that
        started before it (a bar's close is known only once it ends), oldest first."""
        before = sorted((b for b in bars if opens_at <= b.start < trigger_bar), key=_start)
        return cls(
            side=side,
            entry=entry,
            bars=before,
            adv=adv,
            elapsed_minutes=(trigger_bar - opens_at) // MINUTE,
            session_minutes=(closes_at - opens_at) // MINUTE,
        )


def _start(bar: Bar) -> datetime:
    return bar.start


def entry_refusal(context: EntryContext, rules: EntryConfirmations) -> tuple[str, str] | None:
    """The first confirmation that refuses the entry, as (rule, detail), or None."""
    side, bars = context.side, context.bars
    if rules.above_vwap:
        value = last(vwap(bars))
        where = "above" if side is Side.LONG else "below"
        if value is not None and not beyond(side, context.entry, value):
            return (
                "above_vwap",
                f"entry {context.entry} not {where} the session VWAP {value:.4f}",
            )
    if rules.rsi_max is not None:
        value = last(rsi([b.close for b in bars], rules.rsi_period))
        where, cap = _rsi_cap(side, rules.rsi_max)
        # Until `rsi_period` + 1 minutes have closed there is no RSI: nothing to refuse on.
        if value is not None and ((value > cap) if side is Side.LONG else (value < cap)):
            return (
                "rsi_max",
                f"1-minute RSI({rules.rsi_period}) {value:.2f} {where} {cap}",
            )
    if rules.relative_volume_min is not None:
        value = session_relative_volume(
            bars, context.adv, context.elapsed_minutes, context.session_minutes
        )
        if value is None or value < rules.relative_volume_min:
            shown = "unknown" if value is None else f"{value:.2f}"
            return (
                "relative_volume_min",
                f"relative volume {shown} below {rules.relative_volume_min} "
                f"(session volume against the ADV {context.adv:.0f} pro rata)",
            )
    return None


def plan_refusal(
    rules: EntryConfirmations,
    plan: TradePlan,
    scan: ScanResult | None,
    bars: Iterable[Bar],
    times: DayTimes,
    trigger_bar: datetime,
) -> tuple[str, str] | None:
    """The refusal of `plan`'s trigger in the bar starting `trigger_bar`, given the session's
    `bars` of its symbol so far, as (reason, detail); None when confirmed or when all are off."""
    found = [c for c in scan.candidates if c.symbol == plan.symbol] if scan else []
    if not rules.enabled or not found:
        return None
    context = EntryContext.at_trigger(
        side=plan.side,
        entry=plan.entry,
        bars=bars,
        adv=found[0].adv,
        trigger_bar=trigger_bar,
        opens_at=times.opens_at,
        closes_at=times.closes_at,
    )
    refusal = entry_refusal(context, rules)
    return None if refusal is None else (f"{CONFIRMATION_PREFIX}{refusal[0]}", refusal[1])
