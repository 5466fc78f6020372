"""The status banner on every page: readiness, trading state, P&L and the latest errors.

It is fed by `/readyz` and by the `error.raised` events of the day (`/api/status`), refreshes on
its own, and turns red with the agent's URL when the agent does not answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard import ui
from dashboard.client import Readiness, Unreachable
from dashboard.tables import clock, money, number

MAX_ERRORS_SHOWN = 3
BadgeColor = Literal["green", "orange", "red", "gray"]
_STATE_COLORS: dict[str, BadgeColor] = {
    "active": "green",
    "reducing": "orange",
    "halted": "red",
    "idle": "gray",
}
_SEVERE = {"error", "critical"}


def _dismiss(ids: list[str]) -> None:
    dismissed: set[str] = st.session_state.setdefault(ui.DISMISSED_KEY, set())
    dismissed.update(ids)


def _strip(ready: Readiness | Unreachable, status: dict[str, Any]) -> None:
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if isinstance(ready, Readiness) and ready.ready:
            st.badge("Agent ready", icon=":material/check_circle:", color="green")
        else:
            st.badge("Agent not ready", icon=":material/error:", color="red")
        state = str(status.get("trading_state") or "idle")
        risk = status.get("risk") or {}
        why = f" · {risk['reason']}" if state != "active" and risk.get("reason") else ""
        st.badge(f"Trading {state.upper()}{why}", color=_STATE_COLORS.get(state, "gray"))
        if status.get("day"):
            st.badge(f"Day {status['day']}", icon=":material/calendar_today:", color="gray")
        pnl = status.get("pnl") or {}
        total = number(pnl.get("total"))
        if total is not None:
            st.badge(
                f"Day P&L {money(total, signed=True)}",
                icon=":material/payments:",
                color="green" if total >= 0 else "red",
            )
        counts = [
            f"{status.get('candidates', 0)} candidates",
            f"{status.get('plans', 0)} plans",
            f"{status.get('open_positions', 0)} open",
            f"{status.get('trades', 0)} trades",
        ]
        st.badge(" · ".join(counts), color="blue")
        if isinstance(ready, Readiness) and ready.version:
            st.badge(f"v{ready.version} · {ready.store or '?'}", color="gray")
        if isinstance(ready, Readiness) and ready.config_version:
            st.badge(f"config {ready.config_version}", color="gray")
        now = datetime.now(ZoneInfo(ui.zone()))
        st.caption(f"updated {now:%H:%M:%S} ET" if "New_York" in ui.zone() else f"{now:%H:%M:%S}")


def _errors(errors: list[dict[str, Any]]) -> None:
    dismissed: set[str] = st.session_state.setdefault(ui.DISMISSED_KEY, set())
    fresh = [e for e in errors if str(e.get("event_id")) not in dismissed]
    if not fresh:
        return
    zone = ui.zone()
    for error in reversed(fresh[-MAX_ERRORS_SHOWN:]):  # newest first
        severity = str(error.get("severity") or "error")
        text = (
            f"**{severity.upper()}** · {clock(error.get('occurred_at'), zone, seconds=True)} · "
            f"`{error.get('source')}/{error.get('code')}` · {error.get('message')}"
        )
        if severity in _SEVERE:
            st.error(text, icon=":material/error:")
        else:
            st.warning(text, icon=":material/warning:")
    more = len(fresh) - MAX_ERRORS_SHOWN
    label = "Dismiss" + (f" (and {more} older)" if more > 0 else "")
    st.button(
        label,
        key="dismiss_errors",
        type="tertiary",
        icon=":material/done_all:",
        on_click=_dismiss,
        args=([str(e.get("event_id")) for e in fresh],),
    )


def _risk_state(status: dict[str, Any]) -> None:
    """Why trading is not ACTIVE (the loss limit, a drawdown, the error breaker, an operator)."""
    risk = status.get("risk") or {}
    state = str(status.get("trading_state") or "active")
    if state in ("active", "idle") or not risk.get("detail"):
        return
    text = f"**Trading {state.upper()}** ({risk.get('reason')}): {risk.get('detail')}"
    if state == "halted":
        st.error(text, icon=":material/pan_tool:")
    else:
        st.warning(text, icon=":material/trending_down:")


def banner() -> None:
    """Draw the banner once; `app.py` runs it as a live fragment."""
    agent = ui.client()
    ready = agent.readiness()
    if isinstance(ready, Unreachable) and ready.down:
        every = ui.refresh_secs()
        retry = f" Retrying every {every:g} s." if every else ""
        st.error(
            f"**Agent not reachable at {agent.base_url}** ({ready.reason}).{retry} "
            "Start it with `fin-agent run`, or point the dashboard at it with "
            "`FIN_AGENT_DASHBOARD_AGENT_URL`.",
            icon=":material/power_off:",
        )
        return
    status = agent.status()
    _strip(ready, status if isinstance(status, dict) else {})
    last = status.get("last_command") if isinstance(status, dict) else None
    if isinstance(last, dict):  # the latest operator command's outcome
        when = clock(last.get("occurred_at"), ui.zone())
        st.caption(f":material/front_hand: {when} · {last.get('summary')}")
    if isinstance(ready, Readiness) and not ready.ready:
        reasons = "; ".join(f"**{name}**: {why}" for name, why in ready.failing.items())
        st.error(f"Not ready: {reasons}", icon=":material/block:")
    elif isinstance(ready, Unreachable):
        st.warning(str(ready), icon=":material/warning:")
    if isinstance(status, Unreachable):
        st.warning(str(status), icon=":material/warning:")
    else:
        _risk_state(status)
        _errors([e for e in status.get("errors") or [] if isinstance(e, dict)])
