"""Overview: the day at a glance: equity and P&L, the equity curve, positions, scan and plans."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, ui
from dashboard.client import JSON
from dashboard.tables import TRADE_COLUMNS, Column, money, number, table

POSITIONS: list[Column] = [
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("qty", "Qty", "int"),
    ("price", "Entry", "price"),
    ("mark", "Last", "price"),
    ("unrealised_pnl", "Unrealised", "pnl"),
    ("occurred_at", "Since", "time"),
]
CANDIDATES: list[Column] = [
    ("rank", "#", "int"),
    ("symbol", "Symbol", "text"),
    ("gap_pct", "Gap", "gap"),
    ("pm_last", "Pre-mkt", "price"),
    ("pm_volume", "PM vol", "volume"),
    ("top_headline", "Catalyst", "text"),
]
PLANS: list[Column] = [
    ("rank", "#", "int"),
    ("symbol", "Symbol", "text"),
    ("entry", "Entry", "price"),
    ("stop", "Stop", "price"),
    ("target", "Target", "price"),
    ("qty", "Size", "int"),
    ("state", "State", "state"),
]


def kpis(detail: JSON) -> None:
    """Equity, realised and unrealised P&L, trades and what the scan and plans did."""
    pnl: dict[str, Any] = detail.get("pnl") or {}
    curve = ui.rows(detail, "equity_curve")
    start = number(curve[0]["equity"]) if curve else None
    realised, unrealised = number(pnl.get("realised")) or 0.0, number(pnl.get("unrealised")) or 0.0
    trades = ui.rows(detail, "trades")
    wins = sum(1 for t in trades if (number(t.get("net_pnl")) or 0) > 0)
    cols = st.columns(6)
    cols[0].metric(
        "Equity",
        money(start + realised + unrealised) if start is not None else "—",
        delta=money(realised + unrealised, signed=True),
        border=True,
    )
    cols[1].metric("Realised P&L", money(realised, signed=True), border=True)
    cols[2].metric(
        "Unrealised P&L",
        money(unrealised, signed=True),
        delta=f"{len(ui.rows(detail, 'positions'))} open",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    cols[3].metric(
        "Trades",
        len(trades),
        delta=f"{wins} won · {len(trades) - wins} lost" if trades else None,
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    cols[4].metric(
        "Candidates",
        len(ui.rows(detail, "candidates")),
        delta=f"{len(ui.rows(detail, 'rejections'))} rejected",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    cols[5].metric(
        "Plans",
        len(ui.rows(detail, "plans")),
        delta=f"trading {str(detail.get('trading_state') or 'active').upper()}",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )


def body() -> None:
    """The overview, redrawn live."""
    found = ui.day_detail()
    if found is None:
        return
    day, detail = found
    zone = ui.zone()
    kpis(detail)
    left, right = st.columns([3, 2])
    with left, st.container(border=True):
        st.markdown("**Equity today**")
        pnl = detail.get("pnl") or {}
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
    left, right = st.columns(2)
    with left, st.container(border=True):
        st.markdown("**Open positions**")
        table(ui.rows(detail, "positions"), POSITIONS, zone, empty="Flat: no open position.")
        st.markdown("**Closed trades**")
        table(ui.rows(detail, "trades"), TRADE_COLUMNS, zone, empty="No closed trade yet.")
    with right, st.container(border=True):
        st.markdown("**Scan candidates**")
        candidates = sorted(ui.rows(detail, "candidates"), key=lambda c: int(c.get("rank") or 0))
        table(candidates, CANDIDATES, zone, empty="No candidate.")
        st.markdown("**Plans**")
        plans = sorted(ui.rows(detail, "plans"), key=lambda p: int(p.get("rank") or 0))
        table(plans, PLANS, zone, empty="No plan yet.")


ui.heading("Overview")
ui.live(body)()
