"""Orders and fills: what went to the broker and what it filled, as it happened."""

from __future__ import annotations

import streamlit as st

from dashboard import trade_charts, ui
from dashboard.tables import CONFIG_COLUMN, Column, table

ORDERS: list[Column] = [
    ("occurred_at", "Placed", "time"),
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("qty", "Qty", "int"),
    ("trigger", "Trigger", "price"),
    ("stop", "Stop", "price"),
    ("target", "Target", "price"),
    ("client_order_id", "Client order id", "text"),
    CONFIG_COLUMN,
]
FILLS: list[Column] = [
    ("occurred_at", "Filled", "time"),
    ("symbol", "Symbol", "text"),
    ("kind", "Kind", "text"),
    ("side", "Side", "text"),
    ("qty", "Qty", "int"),
    ("price", "Price", "price"),
    ("commission", "Commission", "money"),
    ("client_order_id", "Client order id", "text"),
]


def body() -> None:
    """Orders and fills of the chosen day, newest first, redrawn live."""
    found = ui.day_detail()
    if found is None:
        return
    day, detail = found
    zone = ui.zone()
    orders, fills = ui.rows(detail, "orders"), ui.rows(detail, "fills")
    st.markdown(f"**Orders** ({len(orders)})")
    table(list(reversed(orders)), ORDERS, zone, empty="No order placed yet.")
    st.markdown(f"**Fills** ({len(fills)})")
    table(list(reversed(fills)), FILLS, zone, empty="Nothing filled yet.")
    trade_charts.show(day, detail, zone)


ui.heading("Orders & fills", caption="Bracket orders of the paper broker: entry, stop, target.")
ui.live(body)()
