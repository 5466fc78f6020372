"""Plans: entry, stop, target, size and state of each, with the risk each one takes."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import ui
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


def body() -> None:
    """The plans of the chosen day, redrawn live."""
    found = ui.day_detail()
    if found is None:
        return
    _, detail = found
    zone = ui.zone()
    plans = sorted(ui.rows(detail, "plans"), key=lambda p: int(p.get("rank") or 0))
    table(
        [with_risk(p) for p in plans],
        PLANS,
        zone,
        empty="No plan yet: plans are built when the opening range closes.",
    )
    st.markdown("**Latest change of each plan**")
    changes = sorted(ui.rows(detail, "plan_states"), key=lambda s: str(s.get("occurred_at")))
    table(list(reversed(changes)), HISTORY, zone, empty="No state change yet.")


ui.heading(
    "Plans",
    caption="Entry: a stop order one tick beyond the opening range; stop: the tighter of the "
    "range and half an ATR; target: 2R; size: 1 % of equity at risk, capped at 25 % notional.",
)
ui.live(body)()
