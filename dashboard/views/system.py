"""The agent itself: readiness checks, the next scheduled runs and the effective config."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.client import Unreachable
from dashboard.tables import Column, table

CHECKS: list[Column] = [
    ("name", "Check", "text"),
    ("state", "State", "state"),
    ("reason", "Reason", "text"),
]
RUNS: list[Column] = [
    ("at", "When (exchange time)", "text"),
    ("job", "Job", "text"),
    ("rule", "Rule", "text"),
    ("reason", "Why then", "text"),
]
VAR: list[Column] = [
    ("what", "Of", "text"),
    ("var95", "VaR 95 %", "money"),
    ("var99", "VaR 99 %", "money"),
    ("days", "Days of history", "text"),
]
ERRORS: list[Column] = [
    ("trading_day", "Day", "text"),
    ("occurred_at", "Time", "time"),
    ("severity", "Severity", "text"),
    ("source", "Source", "text"),
    ("code", "Code", "text"),
    ("message", "Message", "text"),
]


def readiness() -> None:
    """`/readyz`, check by check."""
    ready = ui.client().readiness()
    if isinstance(ready, Unreachable):
        ui.waiting(ready)
        return
    label = "ready" if ready.ready else "not ready"
    st.markdown(
        f"**Readiness: {label}** · version {ready.version or '?'} · store {ready.store or '?'}"
    )
    rows = [
        {"name": name, "state": "ok" if c.ok else "failing", "reason": c.reason}
        for name, c in ready.checks.items()
    ]
    table(rows, CHECKS, ui.zone(), empty="The agent reports no checks.")


def schedule() -> None:
    """The next scheduled runs, or why there are none."""
    st.markdown("**Next scheduled runs**")
    reply = ui.client().schedule(limit=10)
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    if not reply.get("available"):
        st.caption(str(reply.get("reason") or "No schedule: this agent does not run one."))
        return
    runs = [
        {**r, "at": str(r.get("at", "")).replace("T", " ")[:16]} for r in ui.rows(reply, "runs")
    ]
    table(runs, RUNS, ui.zone(), empty="No run scheduled.")


def errors() -> None:
    """Recent errors across days."""
    st.markdown("**Recent errors**")
    reply = ui.client().errors(limit=50)
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    table(list(reversed(reply)), ERRORS, ui.zone(), empty="No error raised.")


def value_at_risk() -> None:
    """One-day historical VaR of the open book and of the strategy (95 % and 99 %)."""
    st.markdown("**Value at risk (one day, historical)**")
    status = ui.client().status()
    if isinstance(status, Unreachable):
        ui.waiting(status)
        return
    var = status.get("var") or {}
    rows = [
        {"what": label, **(var.get(key) or {})}
        for key, label in (("book", "Open book"), ("strategy", "Strategy (daily P&L)"))
    ]
    table(rows, VAR, ui.zone(), empty="No VaR yet: no day has started.")


def body() -> None:
    """Readiness, schedule and errors, redrawn live."""
    left, right = st.columns(2)
    with left, st.container(border=True):
        readiness()
    with right, st.container(border=True):
        schedule()
    with st.container(border=True):
        value_at_risk()
    with st.container(border=True):
        errors()


def config() -> None:
    """The effective config, secrets masked (static: it changes only on a reload)."""
    reply = ui.client().config()
    with st.expander("Effective config (secrets masked)", expanded=True):
        if isinstance(reply, Unreachable):
            ui.waiting(reply)
        elif not reply.get("available"):
            st.caption("This agent does not publish its config.")
        else:
            st.code(str(reply.get("yaml") or ""), language="yaml")


ui.heading("Config & schedule")
ui.live(body)()
config()
