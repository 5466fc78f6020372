"""The dashboard's trade chart: built from the agent's rows into the report's chart shape."""

from __future__ import annotations

import re

from dashboard.trade_charts import chart_of

from fin_agent.app.report.svg import trade_chart

PLAN = {
    "plan_id": "gap_and_go-2019-02-15-BAC",
    "symbol": "BAC",
    "entry": 28.785,
    "stop": 28.66,
    "target": 29.035,
    "or_high": 28.775,
    "or_low": 28.67,
    "entry_from": "2019-02-15T14:35:00+00:00",
}
CANDLES = [
    {
        "start": f"2019-02-15T14:{30 + i}:00+00:00",
        "open": 28.7,
        "high": 28.8 + i / 100,
        "low": 28.67,
        "close": 28.75,
        "volume": 1000,
    }
    for i in range(15)
]
FILLS = [
    {
        "client_order_id": PLAN["plan_id"],
        "kind": "entry",
        "occurred_at": "2019-02-15T14:36:00+00:00",
        "price": 28.785,
    }
]
TRADE = {"exit_at": "2019-02-15T14:43:00+00:00", "exit_price": 29.035, "exit_reason": "target"}


def test_a_closed_trade_is_drawn_with_its_range_levels_and_both_marks() -> None:
    chart = chart_of(PLAN, CANDLES, FILLS, TRADE)

    svg = trade_chart(chart, "America/New_York")

    assert chart["opening_range"]["start"] == "2019-02-15T14:30:00+00:00"
    assert svg.count('class="candle"') == 15
    assert svg.count('class="opening-range"') == 1
    assert re.findall(r'data-level="(\w+)"', svg) == ["entry", "stop", "target"]
    assert re.findall(r'data-mark="(\w+)"', svg) == ["entry", "exit"]


def test_an_open_position_has_no_exit_mark() -> None:
    svg = trade_chart(chart_of(PLAN, CANDLES, FILLS, None), "America/New_York")

    assert re.findall(r'data-mark="(\w+)"', svg) == ["entry"]
