"""The dead-letter stream: entries no consumer could handle, why, and how to replay them."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import ui
from dashboard.client import Unreachable
from dashboard.tables import Column, table

LETTERS: list[Column] = [
    ("id", "Dead-letter id", "text"),
    ("event_type", "Event", "text"),
    ("reason", "Reason", "text"),
    ("detail", "Detail", "text"),
    ("group", "Group", "text"),
    ("deliveries", "Deliveries", "int"),
    ("origin", "Original entry", "text"),
]


def body() -> None:
    """The dead letters, oldest first, redrawn live."""
    reply = ui.client().dead_letters(limit=200)
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    if not reply.get("available"):
        st.info(
            str(reply.get("reason") or "This agent has no dead-letter stream."),
            icon=":material/inbox:",
        )
        return
    letters = ui.rows(reply, "letters")
    count = int(reply.get("count") or 0)
    st.metric("Waiting in the dead-letter stream", count, border=True, width="content")
    if not letters:
        st.success("The dead-letter stream is empty.", icon=":material/check_circle:")
        return
    rows = [{**r, "origin": f"{r.get('stream')}#{r.get('entry_id')}"} for r in letters]
    table(rows, LETTERS, ui.zone())
    st.caption(
        "Fix the cause, then replay with `fin-agent dlq replay ID …` (or drop them all with "
        "`fin-agent dlq purge`)."
    )
    for letter in letters[:20]:
        with st.expander(
            f"{letter.get('id')} · {letter.get('event_type')} · {letter.get('reason')}"
        ):
            st.code(json.dumps(letter.get("fields") or {}, indent=2), language="json")


ui.heading("Dead letters")
ui.live(body)()
