"""Research: the studies of `fin-agent optimize`, their trials, the parameter importance and the
walk-forward's out-of-sample equity curve (read from the agent's `/api/research`)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, ui
from dashboard.client import Unreachable
from dashboard.tables import Column, money, table

FOLDS: list[Column] = [
    ("index", "Fold", "int"),
    ("train_days", "Train", "text"),
    ("test_days", "Test", "text"),
    ("trial", "Pick", "int"),
    ("train_score", "Train score", "text"),
    ("test_score", "Test score", "text"),
    ("test_net_pnl", "Test P&L", "pnl"),
    ("test_trades", "Test trades", "int"),
]


def _span(days: object) -> str:
    return f"{days[0]}..{days[1]}" if isinstance(days, list) and len(days) == 2 else "—"


def _trial_rows(study: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Column]]:
    names = sorted({name for t in study.get("trials", []) for name in t.get("params", {})})
    columns: list[Column] = [
        ("number", "Trial", "int"),
        ("state", "State", "text"),
        ("value", "Value", "text"),
        *((name, name, "text") for name in names),
        ("net_pnl", "Net P&L", "pnl"),
        ("trades", "Trades", "int"),
        ("reason", "Why it stopped", "text"),
    ]
    rows = [
        {
            **{k: v for k, v in t.items() if k != "params"},
            "value": "" if t.get("value") is None else f"{t['value']:.4g}",
            **{name: str(t.get("params", {}).get(name, "")) for name in names},
        }
        for t in study.get("trials", [])
    ]
    return rows, columns


def show(study: dict[str, Any]) -> None:
    """One study: figures, the out-of-sample curve, importance, folds and every trial."""
    if "error" in study:
        st.error(study["error"], icon=":material/error:")
        return
    trials = study.get("trials", [])
    states = [t.get("state") for t in trials]
    oos = study.get("out_of_sample", {})
    cols = st.columns(4)
    cols[0].metric("Trials", len(trials), border=True)
    cols[1].metric("Complete / pruned", f"{states.count('complete')} / {states.count('pruned')}")
    cols[2].metric(f"Out-of-sample {study.get('objective')}", str(oos.get("score")), border=True)
    cols[3].metric("Out-of-sample P&L", money(oos.get("net_pnl"), signed=True), border=True)
    left, right = st.columns([3, 2])
    with left, st.container(border=True):
        st.markdown("**Out-of-sample equity**")
        curve = charts.out_of_sample_equity(oos.get("curve", []))
        if curve is None:
            st.caption("No test window was traded yet.")
        else:
            st.altair_chart(curve, width="stretch")
    with right, st.container(border=True):
        st.markdown("**Parameter importance**")
        bars = charts.importance(study.get("importance", {}))
        if bars is None:
            st.caption("Needs two complete trials that differ.")
        else:
            st.altair_chart(bars, width="stretch")
    overlay = study.get("overlay", {})
    if overlay.get("params"):
        st.markdown(f"**Best parameters** (trial {overlay.get('trial')}, the last fold's pick)")
        st.json(overlay["params"])
    st.markdown("**Walk-forward folds**")
    folds = [
        {**f, "train_days": _span(f.get("train")), "test_days": _span(f.get("test"))}
        for f in study.get("folds", [])
    ]
    table(folds, FOLDS, ui.zone(), key="research_folds")
    st.markdown("**Trials**")
    rows, columns = _trial_rows(study)
    table(rows, columns, ui.zone(), key="research_trials")


def body() -> None:
    """The chosen study (newest first)."""
    reply = ui.client().research()
    if isinstance(reply, Unreachable):
        ui.waiting(reply)
        return
    studies = reply.get("studies", [])
    if not studies:
        st.info(
            "No study yet: run `fin-agent optimize` (its summaries are read from "
            "data_dir/optimize).",
            icon=":material/science:",
        )
        return
    names = [str(s.get("study")) for s in studies]
    chosen = st.selectbox("Study", names, key="research_study")
    show(next(s for s in studies if str(s.get("study")) == chosen))


ui.heading("Research", caption="Studies of fin-agent optimize: trials, importance, out of sample.")
body()
