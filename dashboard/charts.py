"""The charts: today's equity curve, P&L per trade, equity and P&L across days, and a symbol's
candles with its plan's levels.

Times are drawn in exchange time: they are handed to Vega-Lite as naive exchange-local instants,
which it shows as written whatever the viewer's own time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import altair as alt

from dashboard.tables import GREEN, MUTED, RED, instant, money, number

CHART_HEIGHT = 260
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
BLUE = "#5b9bd5"

Chart = alt.Chart | alt.LayerChart | alt.FacetChart
"""What the functions return (`st.altair_chart` draws each)."""


def _data(values: list[dict[str, object]]) -> alt.Data:
    data: alt.Data = alt.Data(values=values)  # type: ignore[no-untyped-call]  # altair: untyped
    return data


def _local(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat()


def _wall(when: datetime, zone: str) -> alt.DateTime:
    """`when` as a Vega-Lite date-time in exchange wall time (as `_local` hands the data over)."""
    local = when.astimezone(ZoneInfo(zone))
    return alt.DateTime(
        year=local.year,
        month=local.month,
        date=local.day,
        hours=local.hour,
        minutes=local.minute,
        seconds=local.second,
    )


def equity_today(
    curve: Sequence[Mapping[str, Any]],
    zone: str,
    day: str,
    *,
    unrealised: float | None = None,
    marked_at: datetime | None = None,
) -> Chart | None:
    """Equity after each closed trade from the day's start, plus the open positions marked now."""
    if not curve:
        return None
    opens = datetime.combine(date.fromisoformat(day), SESSION_OPEN, ZoneInfo(zone))
    start = number(curve[0].get("equity")) or 0.0
    points: list[dict[str, object]] = []
    previous = start
    last_at = opens
    for point in curve:
        equity = number(point.get("equity"))
        if equity is None:
            continue
        at = last_at = instant(point.get("at")) or opens
        change = equity - previous
        previous = equity
        outcome = "start" if point.get("symbol") is None else ("gain" if change >= 0 else "loss")
        label = point.get("symbol") or "day start"
        points.append(
            {
                "at": _local(at, zone),
                "equity": equity,
                "outcome": outcome,
                "what": f"{label}: {money(change, signed=True)}" if outcome != "start" else label,
            }
        )
    if unrealised and marked_at is not None:
        points.append(
            {
                "at": _local(max(marked_at, last_at), zone),
                "equity": previous + unrealised,
                "outcome": "marked",
                "what": f"open positions marked: {money(unrealised, signed=True)}",
            }
        )
    data = _data(points)
    closes = max(datetime.combine(opens.date(), SESSION_CLOSE, opens.tzinfo), last_at)
    if marked_at is not None:
        closes = max(closes, marked_at)
    x = alt.X(
        "at:T",
        title=None,
        axis=alt.Axis(format="%H:%M", labelAngle=0),
        scale=alt.Scale(domain=[_wall(opens, zone), _wall(closes, zone)]),
    )
    y = alt.Y("equity:Q", title="equity ($)", scale=alt.Scale(zero=False))
    colors = alt.Scale(domain=["start", "gain", "loss", "marked"], range=[MUTED, GREEN, RED, BLUE])
    line = (
        alt.Chart(data)
        .mark_line(interpolate="step-after", strokeWidth=2.5, color=BLUE)
        .encode(x=x, y=y)
    )
    dots = (
        alt.Chart(data)
        .mark_circle(size=90, opacity=1)
        .encode(
            x=x,
            y=y,
            color=alt.Color("outcome:N", scale=colors, legend=None),
            tooltip=[
                alt.Tooltip("at:T", title="time", format="%H:%M"),
                alt.Tooltip("what:N", title="event"),
                alt.Tooltip("equity:Q", title="equity", format="$,.2f"),
            ],
        )
    )
    base = (
        alt.Chart(_data([{"start": start}]))
        .mark_rule(strokeDash=[4, 4], color=MUTED)
        .encode(y="start:Q")
    )
    return alt.layer(base, line, dots).properties(height=CHART_HEIGHT)


def pnl_by_trade(
    trades: Sequence[Mapping[str, Any]],
    zone: str,
    positions: Sequence[Mapping[str, Any]] = (),
) -> Chart | None:
    """Net P&L of each closed trade in exit order, then the open positions' unrealised P&L.

    Gains are green and losses red; open positions are drawn paler, as their P&L still moves.
    """
    rows: list[dict[str, object]] = []
    for n, trade in enumerate(sorted(trades, key=lambda t: str(t.get("exit_at"))), start=1):
        pnl = number(trade.get("net_pnl")) or 0.0
        exit_at = instant(trade.get("exit_at"))
        rows.append(
            {
                "trade": f"{n}. {trade.get('symbol')}",
                "pnl": pnl,
                "r": number(trade.get("r_multiple")),
                "status": f"closed ({trade.get('exit_reason')})",
                "at": exit_at.astimezone(ZoneInfo(zone)).strftime("%H:%M") if exit_at else "",
                "sign": "gain" if pnl >= 0 else "loss",
                "fade": 1.0,
            }
        )
    for position in positions:
        unrealised = number(position.get("unrealised_pnl"))
        if unrealised is None:
            continue
        rows.append(
            {
                "trade": f"{position.get('symbol')} (open)",
                "pnl": unrealised,
                "r": None,
                "status": "open, marked to the last bar",
                "at": "",
                "sign": "gain" if unrealised >= 0 else "loss",
                "fade": 0.45,
            }
        )
    if not rows:
        return None
    chart: alt.Chart = (
        alt.Chart(_data(rows))
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("trade:N", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("pnl:Q", title="net P&L ($)"),
            color=alt.Color(
                "sign:N", scale=alt.Scale(domain=["gain", "loss"], range=[GREEN, RED]), legend=None
            ),
            opacity=alt.Opacity("fade:Q", scale=None, legend=None),
            tooltip=[
                alt.Tooltip("trade:N"),
                alt.Tooltip("pnl:Q", title="P&L", format="$,.2f"),
                alt.Tooltip("r:Q", title="R", format="+.2f"),
                alt.Tooltip("status:N", title="status"),
                alt.Tooltip("at:N", title="closed at"),
            ],
        )
        .properties(height=CHART_HEIGHT)
    )
    return chart


def equity_by_day(days: Sequence[Mapping[str, Any]]) -> Chart | None:
    """End-of-day equity (line) over each day's net P&L (bars), across reported days."""
    rows: list[dict[str, object]] = [
        {
            "day": str(d.get("day")),
            "equity": number(d.get("equity")),
            "pnl": number(d.get("net_pnl")),
        }
        for d in days
        if number(d.get("equity")) is not None
    ]
    if not rows:
        return None
    data = _data(rows)
    x = alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0))
    bars = (
        alt.Chart(data)
        .transform_calculate(sign="datum.pnl >= 0 ? 'gain' : 'loss'")
        .mark_bar(opacity=0.55)
        .encode(
            x=x,
            y=alt.Y("pnl:Q", title="net P&L ($)"),
            color=alt.Color(
                "sign:N", scale=alt.Scale(domain=["gain", "loss"], range=[GREEN, RED]), legend=None
            ),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                alt.Tooltip("pnl:Q", title="net P&L", format="$,.2f"),
            ],
        )
    )
    line = (
        alt.Chart(data)
        .mark_line(point=True, strokeWidth=2.5, color=BLUE)
        .encode(
            x=x,
            y=alt.Y("equity:Q", title="end-of-day equity ($)", scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                alt.Tooltip("equity:Q", title="equity", format="$,.2f"),
            ],
        )
    )
    layered: alt.LayerChart = alt.layer(bars, line).resolve_scale(y="independent")
    return layered.properties(height=CHART_HEIGHT)


LEVEL_COLORS = {"entry": BLUE, "stop": RED, "target": GREEN}


def candles(
    rows: Sequence[Mapping[str, Any]],
    zone: str,
    levels: Mapping[str, float | None] | None = None,
    *,
    width_minutes: int = 5,
) -> Chart | None:
    """One symbol's candles (a wick from low to high, a body from open to close, green when it
    closed up) with its plan's entry, stop and target as dashed lines."""
    points: list[dict[str, object]] = []
    for row in rows:
        start = instant(row.get("start"))
        values = [number(row.get(k)) for k in ("open", "high", "low", "close")]
        if start is None or any(v is None for v in values):
            continue
        open_, high, low, close = values
        points.append(
            {
                "at": _local(start, zone),
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": row.get("volume"),
                "sign": "gain" if (close or 0) >= (open_ or 0) else "loss",
            }
        )
    if not points:
        return None
    data = _data(points)
    x = alt.X("at:T", title=None, axis=alt.Axis(format="%H:%M", labelAngle=0))
    y = alt.Y("low:Q", title="price ($)", scale=alt.Scale(zero=False))
    color = alt.Color(
        "sign:N", scale=alt.Scale(domain=["gain", "loss"], range=[GREEN, RED]), legend=None
    )
    tooltip = [
        alt.Tooltip("at:T", title="from", format="%H:%M"),
        alt.Tooltip("open:Q", format="$,.2f"),
        alt.Tooltip("high:Q", format="$,.2f"),
        alt.Tooltip("low:Q", format="$,.2f"),
        alt.Tooltip("close:Q", format="$,.2f"),
        alt.Tooltip("volume:Q", format=","),
    ]
    wicks = alt.Chart(data).mark_rule().encode(x=x, y=y, y2="high:Q", color=color)
    bodies = (
        alt.Chart(data)
        .mark_bar(size=max(2, width_minutes))
        .encode(x=x, y="open:Q", y2="close:Q", color=color, tooltip=tooltip)
    )
    layers: list[alt.Chart] = [wicks, bodies]
    marks = [
        {"level": name, "price": price}
        for name, price in (levels or {}).items()
        if price is not None
    ]
    if marks:
        layers.append(
            alt.Chart(_data(marks))
            .mark_rule(strokeDash=[5, 4], strokeWidth=1.5)
            .encode(
                y="price:Q",
                color=alt.Color(
                    "level:N",
                    scale=alt.Scale(domain=list(LEVEL_COLORS), range=list(LEVEL_COLORS.values())),
                    legend=alt.Legend(title=None, orient="top"),
                ),
                tooltip=[alt.Tooltip("level:N"), alt.Tooltip("price:Q", format="$,.2f")],
            )
        )
    chart: alt.LayerChart = alt.layer(*layers).resolve_scale(color="independent")
    return chart.properties(height=CHART_HEIGHT)


def out_of_sample_equity(curve: Sequence[Mapping[str, Any]]) -> Chart | None:
    """The walk-forward's out-of-sample equity: each fold's pick on the test days after it."""
    rows: list[dict[str, object]] = [
        {
            "day": str(p.get("day")),
            "equity": number(p.get("equity")),
            "pnl": number(p.get("net_pnl")),
        }
        for p in curve
        if number(p.get("equity")) is not None
    ]
    if not rows:
        return None
    line = (
        alt.Chart(_data(rows))
        .mark_line(point=True, strokeWidth=2.5, color=BLUE)
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0)),
            y=alt.Y("equity:Q", title="out-of-sample equity ($)", scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                alt.Tooltip("equity:Q", title="equity", format="$,.2f"),
                alt.Tooltip("pnl:Q", title="net P&L", format="$,.2f"),
            ],
        )
    )
    shaped: alt.Chart = line.properties(height=CHART_HEIGHT)
    return shaped


def importance(shares: Mapping[str, Any]) -> Chart | None:
    """Each tuned parameter's share of the objective's variance (horizontal bars)."""
    rows: list[dict[str, object]] = [
        {"parameter": name, "share": number(share)} for name, share in shares.items()
    ]
    if not rows:
        return None
    bars = (
        alt.Chart(_data(rows))
        .mark_bar(color=BLUE)
        .encode(
            x=alt.X("share:Q", title="importance", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("parameter:N", title=None, sort="-x"),
            tooltip=["parameter:N", alt.Tooltip("share:Q", format=".2f")],
        )
    )
    shaped: alt.Chart = bars.properties(height=max(60, 34 * len(rows)))
    return shaped
