"""Operator controls: halt, resume, flatten all or one position, cancel a plan, each confirmed.

A command goes to the agent's API (`POST /api/commands`) with a new idempotency key; the day
decides it at its next minute, and its outcome shows here, in the banner and in the event log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import streamlit as st

from dashboard import ui
from dashboard.client import Unreachable

PENDING_KEY = "control_pending"
SENT_KEY = "control_sent"
OPEN_PLAN_STATES = {"planned", "triggered"}


@dataclass(frozen=True, slots=True)
class Action:
    """A command waiting for its confirmation."""

    command: str
    label: str
    symbol: str = ""
    plan_id: str = ""


def _ask(action: Action) -> None:
    st.session_state[PENDING_KEY] = action


def _send(action: Action, reason: str) -> None:
    command_id = f"dash-{uuid.uuid4()}"
    reply = ui.client().command(
        action.command,
        command_id,
        reason=reason or f"{action.command} from the dashboard",
        symbol=action.symbol,
        plan_id=action.plan_id,
    )
    st.session_state.pop(PENDING_KEY, None)
    st.session_state[SENT_KEY] = reply if isinstance(reply, Unreachable) else command_id


def _outcome() -> None:
    sent = st.session_state.get(SENT_KEY)
    if isinstance(sent, Unreachable):
        st.error(f"The command was not accepted: {sent}", icon=":material/block:")
        return
    if not sent:
        return
    reply = ui.client().command_outcome(str(sent))
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    status = str(reply.get("status"))
    if status == "applied":
        st.success(f"Applied: {reply.get('detail')}", icon=":material/check_circle:")
    elif status == "refused":
        st.error(f"Refused: {reply.get('detail')}", icon=":material/block:")
    else:
        st.info(
            f"Command {sent} sent: the day decides it at its next minute …",
            icon=":material/hourglass_top:",
        )


def body() -> None:
    """The controls and the last command's outcome, redrawn live."""
    status = ui.client().status()
    state = str(status.get("trading_state") or "idle") if isinstance(status, dict) else "?"
    st.markdown(f"Trading is **{state.upper()}**.")
    _outcome()


ui.heading(
    "Control",
    caption="Halt stops new entries only: open positions still exit at their stop, target or the "
    "end-of-day flatten. Every command asks for a confirmation.",
)
ui.live(body)()
reason = st.text_input("Reason (shown in the event log and notified)", key="control_reason")
with st.container(horizontal=True):
    st.button(
        "Halt",
        icon=":material/pause_circle:",
        on_click=_ask,
        args=(Action("halt", "Halt new entries"),),
    )
    st.button(
        "Resume",
        icon=":material/play_circle:",
        on_click=_ask,
        args=(Action("resume", "Resume entries"),),
    )
    st.button(
        "Flatten all",
        icon=":material/close:",
        on_click=_ask,
        args=(Action("flatten", "Flatten every open position"),),
    )
found = ui.day_detail()
if found is not None:
    _, detail = found
    left, right = st.columns(2)
    held = sorted({str(p.get("symbol")) for p in ui.rows(detail, "positions")})
    symbol = left.selectbox("Open position", held, key="control_symbol", placeholder="none open")
    if left.button("Flatten position", disabled=not held):
        _ask(Action("flatten", f"Flatten {symbol}", symbol=str(symbol)))
    plans = sorted(
        str(p.get("plan_id"))
        for p in ui.rows(detail, "plans")
        if p.get("state") in OPEN_PLAN_STATES
    )
    plan = right.selectbox("Plan not filled", plans, key="control_plan", placeholder="none")
    if right.button("Cancel plan", disabled=not plans):
        _ask(Action("cancel", f"Cancel plan {plan}", plan_id=str(plan)))
pending = st.session_state.get(PENDING_KEY)
if pending is not None:  # an Action (of an earlier run of this page: its class is re-made each run)
    pending = Action(pending.command, pending.label, pending.symbol, pending.plan_id)
    st.warning(f"**{pending.label}?** Confirm to send it to the agent.", icon=":material/help:")
    with st.container(horizontal=True):
        st.button("Confirm", type="primary", on_click=_send, args=(pending, reason))
        st.button("Back", on_click=lambda: st.session_state.pop(PENDING_KEY, None))
