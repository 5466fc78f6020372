"""Past days: equity and P&L across days, and each day's report."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, ui
from dashboard.client import Unreachable
from dashboard.tables import Column, money, number, table

DAYS: list[Column] = [
    ("day", "Day", "text"),
    ("trades", "Trades", "int"),
    ("wins", "Won", "int"),
    ("losses", "Lost", "int"),
    ("win_rate", "Win rate", "pct"),
    ("avg_r", "Avg R", "r"),
    ("net_pnl", "Net P&L", "pnl"),
    ("end_equity", "End equity", "money"),
    ("max_drawdown", "Max drawdown", "money"),
    ("candidates", "Candidates", "int"),
    ("plans", "Plans", "int"),
    ("plans_rejected", "Refused", "int"),
]


def flat(day: dict[str, Any]) -> dict[str, Any]:
    """A day with its report's figures beside it (the win rate in per cent)."""
    report = day.get("report") or {}
    rate = number(report.get("win_rate"))  # a fraction of the trades
    return {**report, "day": day.get("day"), "win_rate": None if rate is None else rate * 100}


def report(day: dict[str, Any]) -> None:
    """One day's report as figures."""
    figures = day.get("report")
    if not figures:
        st.caption("This day has no report yet (it is written after the close).")
        return
    cols = st.columns(5)
    cols[0].metric("Net P&L", money(figures.get("net_pnl"), signed=True), border=True)
    cols[1].metric("End equity", money(figures.get("end_equity")), border=True)
    cols[2].metric("Trades", figures.get("trades", 0), border=True)
    cols[3].metric("Win rate", f"{(number(flat(day)['win_rate']) or 0):.0f}%", border=True)
    cols[4].metric(
        "Max drawdown",
        money(figures.get("max_drawdown")),
        delta=f"{(number(figures.get('max_drawdown_pct')) or 0):.2f}%",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )


def body() -> None:
    """Every stored day, redrawn live."""
    agent = ui.client()
    days = agent.days()
    if isinstance(days, Unreachable):
        ui.waiting(days)
        return
    if not days:
        st.info("No trading day stored yet.", icon=":material/schedule:")
        return
    equity = agent.equity()
    with st.container(border=True):
        st.markdown("**Equity and P&L by day**")
        chart = charts.equity_by_day(equity if not isinstance(equity, Unreachable) else [])
        if chart is None:
            st.caption("No day has been reported yet.")
        else:
            st.altair_chart(chart, width="stretch")
    newest_first = list(reversed(days))
    table([flat(d) for d in newest_first], DAYS, ui.zone())
    chosen = st.selectbox("Report of", [str(d["day"]) for d in newest_first], key="history_day")
    report(next(d for d in newest_first if str(d["day"]) == chosen))


ui.heading("Past days", caption="Pick a day in the sidebar to open its scan, plans and trades.")
ui.live(body)()
