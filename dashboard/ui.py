"""What every page shares: the agent client, the chosen day, live refresh and the waiting states.

`app.py` puts the config and client into the session; pages read them through these helpers and
wrap their bodies in `live`, a fragment that re-runs on its own (no page reload).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard.client import JSON, AgentClient, Unreachable
from dashboard.config import DashboardConfig
from dashboard.tables import instant

CONFIG_KEY = "dashboard_config"
CLIENT_KEY = "agent_client"
DAY_KEY = "day_choice"
REFRESH_KEY = "refresh_choice"
DISMISSED_KEY = "dismissed_errors"
LATEST = "Latest day"
REFRESH_CHOICES: dict[str, float | None] = {
    "1 s": 1.0,
    "2 s": 2.0,
    "5 s": 5.0,
    "15 s": 15.0,
    "60 s": 60.0,
    "paused": None,
}
DEFAULT_REFRESH = "2 s"


def config() -> DashboardConfig:
    """The dashboard's config, loaded once per session by `app.py`."""
    found: DashboardConfig = st.session_state[CONFIG_KEY]
    return found


def client() -> AgentClient:
    """The agent's API client of this session."""
    found: AgentClient = st.session_state[CLIENT_KEY]
    return found


def zone() -> str:
    """The exchange time zone every clock is shown in."""
    return config().timezone


def refresh_secs() -> float | None:
    """Seconds between live refreshes (None: paused)."""
    return REFRESH_CHOICES.get(str(st.session_state.get(REFRESH_KEY, DEFAULT_REFRESH)))


def live(body: Callable[[], None]) -> Callable[[], None]:
    """`body` as a fragment that re-runs itself every `refresh_secs` without reloading the page."""
    return st.fragment(body, run_every=refresh_secs())


def waiting(reply: Unreachable) -> None:
    """Say quietly why a page has nothing to show (the banner says it loudly)."""
    if reply.down:
        st.info(f"Waiting for the agent at {client().base_url} …", icon=":material/hourglass_top:")
    else:
        st.warning(str(reply), icon=":material/warning:")


def chosen_day() -> str | Unreachable | None:
    """The day picked in the sidebar; for "Latest day", the newest day the agent has stored."""
    choice = str(st.session_state.get(DAY_KEY, LATEST))
    if choice != LATEST:
        return choice
    days = client().days()
    if isinstance(days, Unreachable):
        return days
    return str(days[-1]["day"]) if days else None


def day_detail() -> tuple[str, JSON] | None:
    """The chosen day and everything about it; None (having said why) when there is none."""
    day = chosen_day()
    if isinstance(day, Unreachable):
        waiting(day)
        return None
    if day is None:
        st.info(
            "No trading day stored yet: the agent has not run a scan.", icon=":material/schedule:"
        )
        return None
    detail = client().day(day)
    if isinstance(detail, Unreachable):
        waiting(detail)
        return None
    return day, detail


def marked_at(detail: JSON) -> datetime | None:
    """When open positions are marked: now on today's session, else the day's last known moment."""
    now = datetime.now(ZoneInfo(zone()))
    if str(detail.get("day")) == now.date().isoformat():
        return now
    moments = [
        when
        for key in ("fills", "plan_states", "trades")
        for row in rows(detail, key)
        if (when := instant(row.get("occurred_at"))) is not None
    ]
    return max(moments, default=None)


def heading(title: str, day: str | None = None, caption: str | None = None) -> None:
    """A page's title, with the trading day it shows."""
    st.subheader(f"{title} · {day}" if day else title, anchor=False)
    if caption:
        st.caption(caption)


def rows(detail: JSON, key: str) -> list[dict[str, Any]]:
    """A list of row objects from a reply (empty when absent)."""
    found = detail.get(key) or []
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []
