"""Today's scan: each candidate with the figures that let it pass; each rejection with its rule."""

from __future__ import annotations

from collections import Counter

import streamlit as st

from dashboard import ui
from dashboard.tables import Column, table

CANDIDATES: list[Column] = [
    ("rank", "Rank", "int"),
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("gap_pct", "Gap", "gap"),
    ("prev_close", "Prev close", "price"),
    ("pm_last", "Pre-mkt last", "price"),
    ("pm_volume", "Pre-mkt volume", "volume"),
    ("atr", "ATR(14)", "price"),
    ("adv", "ADV(20)", "volume"),
    ("history_bars", "Daily bars", "int"),
    ("headline_count", "Headlines", "int"),
    ("top_headline", "Top headline", "text"),
    ("skipped_rules", "Rules skipped", "text"),
]
REJECTIONS: list[Column] = [
    ("symbol", "Symbol", "text"),
    ("rule", "Failed rule", "text"),
    ("detail", "Why", "text"),
    ("gap_pct", "Gap", "gap"),
]


def body() -> None:
    """The scan of the chosen day, redrawn live."""
    found = ui.day_detail()
    if found is None:
        return
    _, detail = found
    zone = ui.zone()
    candidates = sorted(ui.rows(detail, "candidates"), key=lambda c: int(c.get("rank") or 0))
    rejections = ui.rows(detail, "rejections")
    scanned = len(candidates) + len(rejections)
    st.markdown(
        f"**{len(candidates)} candidates** passed every rule out of **{scanned}** symbols scanned."
    )
    table(candidates, CANDIDATES, zone, empty="No candidate passed the scan.")
    st.markdown(f"**{len(rejections)} rejected**, each at the first rule it failed")
    if not rejections:
        st.caption("No symbol was rejected.")
        return
    by_rule = Counter(str(r.get("rule")) for r in rejections)
    rules = ["all rules", *(rule for rule, _ in by_rule.most_common())]
    chosen = st.pills(
        "Failed rule",
        rules,
        default="all rules",
        format_func=lambda r: r if r == "all rules" else f"{r} ({by_rule[r]})",
        key="rejection_rule",
        label_visibility="collapsed",
    )
    shown = [r for r in rejections if chosen in (None, "all rules") or r.get("rule") == chosen]
    table(sorted(shown, key=lambda r: str(r.get("symbol"))), REJECTIONS, zone, height=420)


ui.heading(
    "Pre-market scan",
    caption="Gap and go: gap band, price band, pre-market volume, ADV, history, catalyst; "
    "ranked by gap, top N kept.",
)
ui.live(body)()
