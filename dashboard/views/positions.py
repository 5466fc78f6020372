"""Positions and P&L: open positions marked to the last bar, closed trades, and the charts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, trade_charts, ui
from dashboard.tables import CONFIG_COLUMN, TRADE_COLUMNS, Column, money, number, table

POSITIONS: list[Column] = [
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("qty", "Qty", "int"),
    ("price", "Entry", "price"),
    ("mark", "Last", "price"),
    ("stop", "Stop", "price"),
    ("target", "Target", "price"),
    ("unrealised_pnl", "Unrealised", "pnl"),
    ("occurred_at", "Since", "time"),
]
TRADE_DETAIL: list[Column] = [
    ("entry_at", "In", "time"),
    ("exit_at", "Out", "time"),
    *TRADE_COLUMNS,
    ("commission", "Commission", "money"),
    CONFIG_COLUMN,
]


def with_bracket(position: dict[str, Any], plans: list[dict[str, Any]]) -> dict[str, Any]:
    """The position with the stop and target of its plan."""
    plan = next((p for p in plans if p.get("plan_id") == position.get("client_order_id")), {})
    return {**position, "stop": plan.get("stop"), "target": plan.get("target")}


def body() -> None:
    """Positions and P&L of the chosen day, redrawn live."""
    found = ui.day_detail()
    if found is None:
        return
    day, detail = found
    zone = ui.zone()
    pnl: dict[str, Any] = detail.get("pnl") or {}
    cols = st.columns(3)
    cols[0].metric("Realised P&L", money(pnl.get("realised"), signed=True), border=True)
    cols[1].metric("Unrealised P&L", money(pnl.get("unrealised"), signed=True), border=True)
    cols[2].metric("Day P&L", money(pnl.get("total"), signed=True), border=True)
    plans = ui.rows(detail, "plans")
    positions = [with_bracket(p, plans) for p in ui.rows(detail, "positions")]
    st.markdown(f"**Open positions** ({len(positions)})")
    table(positions, POSITIONS, zone, empty="Flat: no open position.")
    left, right = st.columns([3, 2])
    with left, st.container(border=True):
        st.markdown("**Equity today**")
        chart = charts.equity_today(
            ui.rows(detail, "equity_curve"),
            zone,
            day,
            unrealised=number(pnl.get("unrealised")),
            marked_at=ui.marked_at(detail),
        )
        if chart is None:
            st.caption("The curve starts when the day does.")
        else:
            st.altair_chart(chart, width="stretch")
    with right, st.container(border=True):
        st.markdown("**P&L by trade** (open positions paler)")
        bars = charts.pnl_by_trade(ui.rows(detail, "trades"), zone, ui.rows(detail, "positions"))
        if bars is None:
            st.caption("No trade yet.")
        else:
            st.altair_chart(bars, width="stretch")
    trades = ui.rows(detail, "trades")
    st.markdown(f"**Closed trades** ({len(trades)})")
    table(trades, TRADE_DETAIL, zone, empty="No closed trade yet.")
    trade_charts.show(day, detail, zone)


ui.heading("Positions & P&L")
ui.live(body)()
