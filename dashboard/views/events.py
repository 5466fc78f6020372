"""The event log: every event of the day, newest first, one line each, filterable."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.client import Unreachable
from dashboard.tables import Column, table

EVENTS: list[Column] = [
    ("occurred_at", "Time", "time"),
    ("type", "Event", "text"),
    ("symbol", "Symbol", "text"),
    ("summary", "What happened", "text"),
]
TYPES = [
    "day.started",
    "scan.completed",
    "signal.generated",
    "plan.created",
    "plan.rejected",
    "order.placed",
    "plan.executed",
    "plan.expired",
    "position.closed",
    "risk.state_changed",
    "error.raised",
    "report.daily",
    "config.changed",
    "operator.command",
    "operator.command_applied",
    "operator.command_refused",
    "scan.snapshot_taken",
    "market.bars_closed",
]


def body() -> None:
    """The chosen day's event log, redrawn live."""
    day = ui.chosen_day()
    if isinstance(day, Unreachable):
        ui.waiting(day)
        return
    types = list(st.session_state.get("event_types") or [])
    limit = int(st.session_state.get("event_limit") or 200)
    reply = ui.client().events(
        day, types=types, include_bars="market.bars_closed" in types, limit=limit
    )
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    events = ui.rows(reply, "events")
    text = str(st.session_state.get("event_search") or "").strip().lower()
    if text:
        events = [e for e in events if text in " ".join(map(str, e.values())).lower()]
    st.caption(
        f"{reply.get('day') or 'no day yet'}: showing {len(events)} of {reply.get('total', 0)} "
        "events, newest first"
    )
    table(list(reversed(events)), EVENTS, ui.zone(), empty="No event yet.", height=640)


ui.heading("Event log", caption="Minute bars are hidden unless you pick market.bars_closed.")
left, middle, right = st.columns([3, 2, 1])
left.multiselect("Event types", TYPES, key="event_types", placeholder="all but minute bars")
middle.text_input("Search", key="event_search", placeholder="symbol, plan id, text …")
right.selectbox("Show", [100, 200, 500, 2000], index=1, key="event_limit")
ui.live(body)()
