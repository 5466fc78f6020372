"""`report.html`: the backtest report as one self-contained page (inline CSS and SVG, no script,
nothing fetched), drawn from `report.json`'s content so every figure shown is the one stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fin_agent.app.report.svg import Point, bar_chart, line_chart, trade_chart

MISSING = "n/a"
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;text-align:right;
border-bottom:1px solid #eee}th:first-child,td:first-child{text-align:left}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}.muted{color:#777}
details{margin:8px 0;border:1px solid #eee;border-radius:6px;padding:4px 8px}
summary{cursor:pointer}.gain{color:#1b8a7e}.loss{color:#d63a37}
"""


def shown(value: object) -> str:
    """A figure as the page shows it: the stored text, or "n/a" for a figure that has none."""
    return MISSING if value is None else str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], name: str) -> str:
    if not rows:
        return '<p class="muted">No trades.</p>'
    head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(shown(row.get(key)))}</td>" for key, _ in columns) + "</tr>"
        for row in rows
    )
    return f"<table data-table={quoteattr(name)}><tr>{head}</tr>{body}</table>"


def _figures(content: Mapping[str, Any]) -> str:
    bench = content.get("benchmark") or {}
    bench_figures = bench.get("figures")
    header = "<tr><th>Figure</th><th>Strategy</th>"
    if bench_figures is not None:
        header += f"<th>Buy and hold {escape(bench['symbol'])}</th>"
    rows = [header + "</tr>"]
    for key, label in content["figure_labels"].items():
        cells = f"<td data-figure={quoteattr('strategy.' + key)}>"
        cells += f"{escape(shown(content['strategy'].get(key)))}</td>"
        if bench_figures is not None:
            cells += f"<td data-figure={quoteattr('benchmark.' + key)}>"
            cells += f"{escape(shown(bench_figures.get(key)))}</td>"
        rows.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    note = f'<p class="muted">{escape(bench["note"])}</p>' if bench else ""
    return f'<table data-table="figures">{"".join(rows)}</table>{note}'


def _points(rows: Sequence[Mapping[str, Any]], label: str, value: str) -> list[Point]:
    return [(str(r[label]), float(r[value])) for r in rows if r.get(value) is not None]


def _charts(content: Mapping[str, Any]) -> str:
    curve = content["equity_curve"]
    series = {"strategy": _points(curve, "day", "equity")}
    if any(r.get("benchmark_equity") for r in curve):
        series[f"buy and hold {content['benchmark']['symbol']}"] = _points(
            curve, "day", "benchmark_equity"
        )
    r_points = [(f"{r['from']}R", float(r["count"])) for r in content["r_distribution"]]
    return "".join(
        [
            "<h2>Equity and drawdown</h2>",
            line_chart("equity", "Equity at each session's end", series),
            bar_chart("drawdown", "Drawdown from the peak ($)", _points(curve, "day", "drawdown")),
            '<div class="grid"><div><h2>Daily P&amp;L</h2>',
            bar_chart(
                "daily_pnl", "Net P&L per session", _points(content["daily_pnl"], "day", "net_pnl")
            ),
            "</div><div><h2>R multiples</h2>",
            bar_chart("r_distribution", "Trades per half-R bucket", r_points),
            "</div></div>",
        ]
    )


GROUP_COLUMNS = (
    ("key", ""),
    ("trades", "Trades"),
    ("net_pnl", "Net P&L"),
    ("win_rate_pct", "Win rate %"),
    ("avg_r", "Mean R"),
)
TRADE_COLUMNS = (
    ("day", "Day"),
    ("symbol", "Symbol"),
    ("side", "Side"),
    ("qty", "Qty"),
    ("entry", "Entry"),
    ("exit", "Exit"),
    ("exit_reason", "Reason"),
    ("r_multiple", "R"),
    ("net_pnl", "Net P&L"),
    ("holding_minutes", "Minutes held"),
)


def _groups(content: Mapping[str, Any]) -> str:
    parts = []
    for key, title in (
        ("by_symbol", "By symbol"),
        ("by_weekday", "By weekday"),
        ("by_entry_time", "By entry time (30 minutes, exchange time)"),
    ):
        rows = content[key]
        parts.append(f"<div><h2>{escape(title)}</h2>")
        parts.append(bar_chart(key, f"Net P&L {title.lower()}", _points(rows, "key", "net_pnl")))
        parts.append(_table(rows, GROUP_COLUMNS, key) + "</div>")
    return '<div class="grid">' + "".join(parts) + "</div>"


def _trades(content: Mapping[str, Any]) -> str:
    trades = content["trades"]
    parts = [f"<h2>Trades ({len(trades)})</h2>", _table(trades, TRADE_COLUMNS, "trades")]
    for t in trades:
        sign = "gain" if not str(t["net_pnl"]).startswith("-") else "loss"
        parts.append(
            f"<details open data-trade={quoteattr(t['plan_id'])}><summary>{escape(t['day'])} "
            f"{escape(t['symbol'])} {escape(t['side'])} {t['qty']} @ {escape(t['entry'])} → "
            f"{escape(t['exit'])} ({escape(t['exit_reason'])}): "
            f'<span class="{sign}">{escape(t["net_pnl"])} $, {escape(t["r_multiple"])} R</span>'
            f"</summary>{trade_chart(t['chart'], content['timezone'])}</details>"
        )
    return "".join(parts)


def report_html(content: Mapping[str, Any]) -> str:
    """The whole page."""
    period = content["period"]
    title = f"Backtest {shown(period['from'])} to {shown(period['to'])}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="muted">{period["sessions"]} sessions; times in '
        f"{escape(content['timezone'])}; money in USD. The same figures are in report.json.</p>"
        f"<h2>Figures</h2>{_figures(content)}{_charts(content)}{_groups(content)}"
        f"{_trades(content)}</body></html>"
    )
