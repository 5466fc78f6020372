"""Plans: entry, stop, target, size and state of each, with the risk each one takes, and a
plan's symbol in 5-minute candles against its levels."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, ui
from dashboard.client import Unreachable
from dashboard.tables import CONFIG_COLUMN, Column, number, table

PLANS: list[Column] = [
    ("rank", "Rank", "int"),
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("state", "State", "state"),
    ("entry", "Entry", "price"),
    ("stop", "Stop", "price"),
    ("target", "Target", "price"),
    ("qty", "Size", "int"),
    ("risk", "Risk", "money"),
    ("notional", "Notional", "money"),
    ("or_high", "OR high", "price"),
    ("or_low", "OR low", "price"),
    ("atr", "ATR", "price"),
    ("entry_from", "Live from", "time"),
    ("entry_until", "Until", "time"),
    CONFIG_COLUMN,
]
HISTORY: list[Column] = [
    ("occurred_at", "At", "time"),
    ("symbol", "Symbol", "text"),
    ("state", "State", "state"),
    ("detail", "Detail", "text"),
]


def with_risk(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with the money it risks (entry to stop) and its notional value."""
    entry, stop, qty = number(plan.get("entry")), number(plan.get("stop")), number(plan.get("qty"))
    if entry is None or stop is None or qty is None:
        return plan
    return {**plan, "risk": abs(entry - stop) * qty, "notional": entry * qty}


def candles_of_plan(day: str, plans: list[dict[str, Any]], zone: str) -> None:
    """The chosen plan's symbol in 5-minute candles, with its entry, stop and target."""
    symbols = [str(p.get("symbol")) for p in plans]
    chosen = st.selectbox("5-minute candles of", symbols, key="candles_symbol")
    plan = next(p for p in plans if str(p.get("symbol")) == chosen)
    reply = ui.client().candles(day, "5m", chosen)
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    levels = {k: number(plan.get(k)) for k in ("entry", "stop", "target")}
    chart = charts.candles(ui.rows(reply, "candles"), zone, levels)
    if chart is None:
        st.caption(f"No minute bar of {chosen} stored for {day} yet.")
    else:
        st.altair_chart(chart, width="stretch")


def body() -> None:
    """The plans of the chosen day, redrawn live."""
    found = ui.day_detail()
    if found is None:
        return
    day, detail = found
    zone = ui.zone()
    plans = sorted(ui.rows(detail, "plans"), key=lambda p: int(p.get("rank") or 0))
    table(
        [with_risk(p) for p in plans],
        PLANS,
        zone,
        empty="No plan yet: plans are built when the opening range closes.",
    )
    if plans:
        candles_of_plan(day, plans, zone)
    st.markdown("**Latest change of each plan**")
    changes = sorted(ui.rows(detail, "plan_states"), key=lambda s: str(s.get("occurred_at")))
    table(list(reversed(changes)), HISTORY, zone, empty="No state change yet.")


ui.heading(
    "Plans",
    caption="Entry: a stop order one tick beyond the opening range; stop: the tighter of the "
    "range and half an ATR; target: 2R; size: 1 % of equity at risk, capped at 25 % notional.",
)
ui.live(body)()
