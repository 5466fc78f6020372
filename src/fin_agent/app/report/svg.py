"""Charts as inline SVG text drawn in Python: a page that shows them needs no script, no network.

`trade_chart` draws one trade's intraday candles with its opening-range box, entry, stop and target
lines and the entry and exit marks; the backtest report and the dashboard's Positions and Orders
pages both draw trades with it, from the same JSON shape (`report.json`'s `trades[].chart`).
Standard library only, so the dashboard may import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

GREEN = "#26a69a"
RED = "#ef5350"
BLUE = "#5b9bd5"
MUTED = "#8a8f98"
GRID = "#e3e5e8"
BOX = "#f2c94c"
WIDTH = 760
HEIGHT = 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 84, 100, 16, 28
LEVEL_COLORS = {"entry": BLUE, "stop": RED, "target": GREEN}
Point = tuple[str, float]
"""A labelled value: (label on the x axis, value)."""


def _f(value: object) -> float:
    return float(str(value))


def _when(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class _Frame:
    """Maps data to the plot area of a chart `WIDTH` x `height` pixels."""

    def __init__(self, x_span: tuple[float, float], y_span: tuple[float, float], height: int):
        self.x0, self.x1 = x_span
        low, high = y_span
        pad = (high - low) * 0.06 or max(abs(high) * 0.01, 0.01)
        self.y0, self.y1 = low - pad, high + pad
        self.height = height

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return MARGIN_LEFT + (value - self.x0) / span * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        plot = self.height - MARGIN_TOP - MARGIN_BOTTOM
        return MARGIN_TOP + (self.y1 - value) / span * plot

    def y_ticks(self, fmt: str) -> list[str]:
        marks = []
        for i in range(5):
            value = self.y0 + (self.y1 - self.y0) * i / 4
            y = self.y(value)
            marks.append(
                f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{GRID}"/><text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
                f'text-anchor="end">{escape(format(value, fmt))}</text>'
            )
        return marks


def _svg(name: str, body: Sequence[str], height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart={quoteattr(name)} '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'font-family="system-ui, sans-serif" font-size="11" fill="#333">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _x_labels(frame: _Frame, labels: Sequence[str], every: int, height: int) -> list[str]:
    return [
        f'<text x="{frame.x(i):.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def line_chart(
    name: str, title: str, series: Mapping[str, Sequence[Point]], *, height: int = 240
) -> str:
    """One line per series (the first blue, the second grey) over shared x labels."""
    first = next(iter(series.values()), ())
    values = [v for points in series.values() for _, v in points]
    if not first or not values:
        return _svg(name, ['<text x="20" y="30">no data</text>'], 50, title)
    frame = _Frame((0, max(len(first) - 1, 1)), (min(values), max(values)), height)
    body = frame.y_ticks(",.2f")
    for (label, points), color in zip(series.items(), (BLUE, MUTED, GREEN), strict=False):
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{frame.x(i):.1f},{frame.y(v):.1f}"
            for i, (_, v) in enumerate(points)
        )
        body.append(
            f'<path class="series" data-series={quoteattr(label)} d="{path}" fill="none" '
            f'stroke="{color}" stroke-width="2"><title>{escape(label)}</title></path>'
        )
    body += _x_labels(frame, [p[0] for p in first], max(1, len(first) // 8), height)
    legend = "".join(
        f'<text x="{MARGIN_LEFT + 8 + 150 * i}" y="{MARGIN_TOP + 10}" fill="{color}">'
        f"{escape(label)}</text>"
        for i, (label, color) in enumerate(zip(series, (BLUE, MUTED, GREEN), strict=False))
    )
    return _svg(name, [*body, legend], height, title)


def bar_chart(name: str, title: str, points: Sequence[Point], *, height: int = 220) -> str:
    """Vertical bars from zero, green up and red down, with each value in its tooltip."""
    if not points:
        return _svg(name, ['<text x="20" y="30">no data</text>'], 50, title)
    values = [v for _, v in points]
    frame = _Frame((-0.5, len(points) - 0.5), (min(0.0, *values), max(0.0, *values)), height)
    body = frame.y_ticks(",.2f")
    step = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / len(points)
    zero = frame.y(0)
    for i, (label, value) in enumerate(points):
        top = min(zero, frame.y(value))
        color = GREEN if value >= 0 else RED
        body.append(
            f'<rect class="bar" x="{frame.x(i) - step * 0.35:.1f}" y="{top:.1f}" '
            f'width="{step * 0.7:.1f}" height="{max(abs(frame.y(value) - zero), 1):.1f}" '
            f'fill="{color}"><title>{escape(label)}: {value:,.2f}</title></rect>'
        )
    body += _x_labels(frame, [p[0] for p in points], max(1, len(points) // 12), height)
    return _svg(name, body, height, title)


def trade_chart(chart: Mapping[str, Any], zone: str, *, height: int = HEIGHT) -> str:
    """One trade's 1-minute candles with its opening-range box (yellow), entry, stop and target
    lines, the entry (triangle) and the exit (circle), times in exchange time `zone`."""
    candles = [c for c in chart.get("candles") or () if c.get("start") is not None]
    title = f"{chart.get('symbol', '')} {chart.get('day', '')}".strip()
    if not candles:
        return _svg("trade", ['<text x="20" y="30">no bars for this trade</text>'], 50, title)
    tz = ZoneInfo(zone)
    starts = [_when(c["start"]) for c in candles]
    origin = starts[0]

    def minutes(at: datetime) -> float:
        return (at - origin).total_seconds() / 60

    levels = {k: _f(v) for k, v in (chart.get("levels") or {}).items() if v is not None}
    box = chart.get("opening_range")
    prices = [_f(c["low"]) for c in candles] + [_f(c["high"]) for c in candles]
    prices += list(levels.values())
    frame = _Frame((0, minutes(starts[-1]) + 1), (min(prices), max(prices)), height)
    body = frame.y_ticks(",.2f")
    if box:
        x0, x1 = frame.x(minutes(_when(box["start"]))), frame.x(minutes(_when(box["end"])))
        y0, y1 = frame.y(_f(box["high"])), frame.y(_f(box["low"]))
        body.append(
            f'<rect class="opening-range" x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
            f'height="{max(y1 - y0, 1):.1f}" fill="{BOX}" fill-opacity="0.3" stroke="{BOX}">'
            f"<title>opening range {box['low']} - {box['high']}</title></rect>"
        )
    width = max(frame.x(1) - frame.x(0), 1.0)
    for candle, start in zip(candles, starts, strict=True):
        o, h, lo, c = (_f(candle[k]) for k in ("open", "high", "low", "close"))
        mid = frame.x(minutes(start) + 0.5)
        color = GREEN if c >= o else RED
        top, bottom = frame.y(max(o, c)), frame.y(min(o, c))
        local = start.astimezone(tz).strftime("%H:%M")
        body.append(
            f'<g class="candle"><title>{local} o {o:g} h {h:g} l {lo:g} c {c:g} '
            f"v {candle.get('volume', '')}</title>"
            f'<line x1="{mid:.1f}" x2="{mid:.1f}" y1="{frame.y(h):.1f}" y2="{frame.y(lo):.1f}" '
            f'stroke="{color}"/><rect x="{mid - width * 0.4:.1f}" y="{top:.1f}" '
            f'width="{width * 0.8:.1f}" height="{max(bottom - top, 0.8):.1f}" fill="{color}"/></g>'
        )
    for level, price in levels.items():
        y = frame.y(price)
        color = LEVEL_COLORS.get(level, MUTED)
        body.append(
            f'<g class="level" data-level={quoteattr(level)}><line x1="{MARGIN_LEFT}" '
            f'x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" '
            f'stroke-dasharray="5 4"/><text x="{WIDTH - MARGIN_RIGHT + 4}" y="{y + 4:.1f}" '
            f'fill="{color}">{escape(level)} {price:g}</text></g>'
        )
    for kind, shape in (("entry", "triangle"), ("exit", "circle")):
        mark = chart.get(kind)
        if not mark:
            continue
        # Fills are stamped at the end of their bar: the mark sits on that bar.
        x = frame.x(minutes(_when(mark["at"]) - timedelta(seconds=30)))
        y = frame.y(_f(mark["price"]))
        label = f"{kind} {mark['price']}" + (f" ({mark['reason']})" if mark.get("reason") else "")
        figure = (
            f'<path d="M{x:.1f},{y - 7:.1f} L{x - 6:.1f},{y + 5:.1f} L{x + 6:.1f},{y + 5:.1f} Z"'
            if shape == "triangle"
            else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5"'
        )
        body.append(
            f'<g class="mark" data-mark="{kind}">{figure} fill="#222" stroke="white">'
            f"</{'path' if shape == 'triangle' else 'circle'}><title>{escape(label)}</title></g>"
        )
    hours = [
        (i, s.astimezone(tz).strftime("%H:%M"))
        for i, s in enumerate(starts)
        if s.astimezone(tz).minute % 30 == 0
    ]
    body += [
        f'<text x="{frame.x(minutes(starts[i]) + 0.5):.1f}" y="{height - 8}" '
        f'text-anchor="middle">{label}</text>'
        for i, label in hours
    ]
    return _svg("trade", body, height, title)
