"""Tables of the agent's rows: typed columns, exchange-time clocks, P&L in green and red.

A column is (key in the row, label, kind). The agent sends prices and money as strings (exact
Decimals); they become floats here for display only. A config version (the content hash of the
config that produced a row) shows its first `VERSION_CHARS` characters, as the banner does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs is not installed
import streamlit as st

Kind = Literal[
    "text",
    "int",
    "volume",
    "price",
    "money",
    "pnl",
    "pct",
    "gap",
    "r",
    "time",
    "datetime",
    "state",
    "version",
]
Column = tuple[str, str, Kind]

GREEN = "#26a69a"
RED = "#ef5350"
AMBER = "#f0b429"
MUTED = "#8a8f98"
BLANK = "—"
VERSION_CHARS = 12
"""A config version is 12 hex digits (fin_agent.app.config.version); anything longer is cut."""
CONFIG_COLUMN: Column = ("config_version", "Config", "version")
"""The config version that produced a scan, plan, order or trade ('' when unknown: a blank)."""

TRADE_COLUMNS: list[Column] = [
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("qty", "Qty", "int"),
    ("entry_price", "Entry", "price"),
    ("exit_price", "Exit", "price"),
    ("exit_reason", "Exit on", "text"),
    ("net_pnl", "Net P&L", "pnl"),
    ("r_multiple", "R", "r"),
]
"""A closed trade, as the overview and the positions page show it."""

_STATE_NAMES = {"filled": "in position"}
_STATE_COLORS = {
    "planned": AMBER,
    "triggered": AMBER,
    "in position": GREEN,
    "ok": GREEN,
    "closed": MUTED,
    "expired": MUTED,
    "cancelled": MUTED,
    "rejected": RED,
    "failing": RED,
}


def number(value: object) -> float | None:
    """A JSON figure (a Decimal as a string, a number, null) as a float, or None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        result = float(str(value))
    except ValueError:
        return None
    return None if math.isnan(result) else result


def money(value: object, *, signed: bool = False) -> str:
    """$1,234.56 (or +$1,234.56 / -$1,234.56 when `signed`)."""
    figure = number(value)
    if figure is None:
        return BLANK
    sign = "-" if figure < 0 else ("+" if signed and figure > 0 else "")
    return f"{sign}${abs(figure):,.2f}"


def clock(value: object, zone: str, *, seconds: bool = False) -> str:
    """An ISO 8601 instant as exchange time, HH:MM (or HH:MM:SS)."""
    when = instant(value)
    if when is None:
        return BLANK
    return when.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S" if seconds else "%H:%M")


def instant(value: object) -> datetime | None:
    """An ISO 8601 string as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def state_name(state: object) -> str:
    """A plan state as a trader reads it (a rejection keeps its reason)."""
    text = str(state or "")
    if text.startswith("rejected"):  # rejected:<reason>[:<risk rule>]: the most specific part
        return "rejected · " + text.rsplit(":", 1)[-1] if ":" in text else text
    return _STATE_NAMES.get(text, text)


def _state_color(value: object) -> str:
    color = _STATE_COLORS.get(str(value).split(" · ")[0])
    return f"color: {color}; font-weight: 600" if color else ""


def _cell(value: object, kind: Kind, zone: str) -> object:
    if kind in ("text", "state", "version"):
        if value is None or value == "":
            return BLANK
        if kind == "version":
            return str(value)[:VERSION_CHARS]
        return state_name(value) if kind == "state" else str(value)
    if kind == "time":
        return clock(value, zone)
    if kind == "datetime":
        when = instant(value)
        return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S") if when else BLANK
    return number(value)


def _formatter(kind: Kind) -> Callable[[object], str] | None:
    formats: dict[str, Callable[[float], str]] = {
        "int": lambda v: f"{v:,.0f}",
        "volume": lambda v: f"{v:,.0f}",
        "price": lambda v: f"{v:,.2f}",
        "money": lambda v: money(v),
        "pnl": lambda v: money(v, signed=True),
        "pct": lambda v: f"{v:.1f}%",
        "gap": lambda v: f"{v:+.2f}%",
        "r": lambda v: f"{v:+.2f} R",
    }
    format_one = formats.get(kind)
    if format_one is None:
        return None

    def format_cell(value: object) -> str:
        figure = number(value)
        return BLANK if figure is None else format_one(figure)

    return format_cell


def _signed_color(value: object) -> str:
    figure = number(value)
    if figure is None or figure == 0:
        return ""
    return f"color: {GREEN if figure > 0 else RED}; font-weight: 600"


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], zone: str) -> Any:
    """The rows as a styled DataFrame with the columns' labels, formats and P&L colours."""
    data = {
        label: [_cell(row.get(key), kind, zone) for row in rows] for key, label, kind in columns
    }
    df = pd.DataFrame(data, columns=[label for _, label, _ in columns])
    styler = df.style
    formats = {label: f for _, label, kind in columns if (f := _formatter(kind)) is not None}
    if formats:
        styler = styler.format(formats, na_rep=BLANK)
    signed = [label for _, label, kind in columns if kind in ("pnl", "r", "gap")]
    if signed:
        styler = styler.map(_signed_color, subset=signed)
    states = [label for _, label, kind in columns if kind == "state"]
    if states:
        styler = styler.map(_state_color, subset=states)
    return styler


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    zone: str,
    *,
    empty: str = "Nothing yet.",
    height: int | Literal["auto"] = "auto",
    key: str | None = None,
) -> None:
    """Show the rows as a table, or a quiet `empty` caption when there are none."""
    if not rows:
        st.caption(empty)
        return
    styled = frame(rows, columns, zone)
    st.dataframe(
        styled, hide_index=True, width="stretch", height=height, key=key, placeholder=BLANK
    )
