"""News: the latest headlines about the day's candidates and positions, newest first."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import ui
from dashboard.client import Unreachable
from dashboard.tables import Column, table

CATALYSTS: list[Column] = [
    ("symbol", "Symbol", "text"),
    ("title", "Catalyst headline", "text"),
    ("source", "Source", "text"),
]


def _line(row: dict[str, Any]) -> str:
    symbols = ", ".join(str(s) for s in row.get("symbols") or [])
    title = str(row.get("title") or "").replace("[", "(").replace("]", ")")
    link = f"[{title}]({row['url']})" if row.get("url") else title
    flags = " · **cancelled the plan**" if row.get("cancelled") else ""
    flags += " · open position" if row.get("position_open") else ""
    when = str(row.get("published_at") or "")[11:16]
    return f"- `{when} UTC` **{symbols}** {link} — {row.get('source') or 'unknown'}{flags}"


def body() -> None:
    """The chosen day's headlines, redrawn live."""
    day = ui.chosen_day()
    if isinstance(day, Unreachable):
        ui.waiting(day)
        return
    if day is None:
        st.info("No trading day stored yet: the agent has not run a scan.")
        return
    news = ui.client().news(day)
    if isinstance(news, Unreachable):
        ui.waiting(news)
        return
    rows: list[dict[str, Any]] = list(news.get("news") or [])
    catalysts: list[dict[str, Any]] = list(news.get("catalysts") or [])
    st.markdown(f"**Headlines** ({len(rows)}) about {', '.join(news.get('symbols') or []) or '—'}")
    if rows:
        st.markdown("\n".join(_line(r) for r in rows))
    else:
        st.caption("No headline about the day's candidates yet.")
    if catalysts:
        st.markdown("**Catalysts the scan passed with**")
        table(catalysts, CATALYSTS, ui.zone(), empty="")


ui.heading("News")
ui.live(body)()
