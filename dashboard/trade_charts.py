"""Each of the day's trades drawn as the backtest report draws it: 1-minute candles with the
opening-range box, entry, stop and target, and the entry and exit marks (`trade_chart`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from dashboard import ui
from fin_agent.app.report.svg import trade_chart


def chart_of(
    plan: Mapping[str, Any],
    candles: Sequence[Mapping[str, Any]],
    fills: Sequence[Mapping[str, Any]],
    trade: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON shape `trade_chart` draws (report.json's `trades[].chart`) from the agent's rows."""
    pid = plan.get("plan_id")
    entry = next(
        (f for f in fills if f.get("client_order_id") == pid and f.get("kind") == "entry"), None
    )
    starts = [c["start"] for c in candles if c.get("start") is not None]
    return {
        "symbol": plan.get("symbol"),
        "day": plan.get("trading_day"),
        "candles": list(candles),
        "opening_range": {
            "start": min(starts),
            "end": plan["entry_from"],
            "high": plan["or_high"],
            "low": plan["or_low"],
        }
        if starts and plan.get("entry_from") and plan.get("or_high") is not None
        else None,
        "levels": {k: plan.get(k) for k in ("entry", "stop", "target")},
        "entry": {"at": entry["occurred_at"], "price": entry["price"]} if entry else None,
        "exit": {
            "at": trade["exit_at"],
            "price": trade["exit_price"],
            "reason": trade.get("exit_reason"),
        }
        if trade
        else None,
    }


def show(day: str, detail: dict[str, Any], zone: str) -> None:
    """A chart per plan of the day that was entered (its position open or closed)."""
    fills = ui.rows(detail, "fills")
    entered = {f.get("client_order_id") for f in fills if f.get("kind") == "entry"}
    trades = {t.get("plan_id"): t for t in ui.rows(detail, "trades")}
    plans = [p for p in ui.rows(detail, "plans") if p.get("plan_id") in entered]
    st.markdown(f"**Trade charts** ({len(plans)})")
    if not plans:
        st.caption("No entry yet today.")
        return
    for plan in plans:
        reply = ui.client().candles(day, "1m", str(plan.get("symbol")))
        candles = ui.rows(reply, "candles") if isinstance(reply, dict) else []
        chart = chart_of(plan, candles, fills, trades.get(plan.get("plan_id")))
        with st.container(border=True):
            st.html(trade_chart(chart, zone))
