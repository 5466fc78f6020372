"""`fin-agent scan`'s rendering of a scan: the candidates' figures and the rejections by rule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fin_agent.app.cli.scan_view import scan_json, scan_text
from fin_agent.domain.gap_scanner import Candidate, Rejection, RejectRule, ScanResult
from fin_agent.domain.values import Side, symbol

NY = ZoneInfo("America/New_York")


def result() -> ScanResult:
    candidate = Candidate(
        symbol=symbol("GAPR"),
        rank=1,
        side=Side.SHORT,
        prev_close=Decimal("20.00"),
        pm_last=Decimal("18.40"),
        pm_volume=250_000,
        gap_pct=Decimal("-8"),
        atr=Decimal("0.8125"),
        adv=Decimal("1234567.5"),
        history_bars=43,
        headline_count=0,
        top_headline=None,
    )
    rejections = tuple(
        Rejection(symbol=symbol(name), rule=rule, detail="why", gap_pct=gap)
        for name, rule, gap in [
            ("AAA", RejectRule.GAP_BAND, Decimal("1.234")),
            ("BBB", RejectRule.NO_DATA, None),
            ("CCC", RejectRule.GAP_BAND, Decimal("0.5")),
        ]
    )
    return ScanResult(
        day=date(2019, 7, 9),
        taken_at=datetime(2019, 7, 9, 13, 0, tzinfo=UTC),
        candidates=(candidate,),
        rejections=rejections,
    )


def test_scan_text_gives_each_candidates_figures_and_counts_the_rejections() -> None:
    lines = scan_text(result(), NY).splitlines()

    assert lines[0] == (
        "2019-07-09  scan at 09:00 EDT: 1 candidate(s) of 4 symbol(s); "
        "rejections: gap_band 2, no_data 1"
    )
    assert lines[2].split() == [
        "1", "GAPR", "short", "-8.00", "18.40", "20.00", "250,000", "1,234,568", "0.8125"
    ]  # fmt: skip
    assert len(lines) == 3  # nothing skipped: no footnote


def test_scan_json_lists_candidates_counts_and_every_rejection() -> None:
    data = json.loads(scan_json(result()))

    assert data["symbols_scanned"] == 4
    assert data["candidates"][0]["pm_volume"] == 250_000
    assert data["candidates"][0]["adv"] == "1234568"
    assert data["scan_rejections"] == {"gap_band": 2, "no_data": 1}
    assert data["rejections"][0] == {
        "symbol": "AAA",
        "rule": "gap_band",
        "detail": "why",
        "gap_pct": "1.23",
    }
    assert data["rejections"][1]["gap_pct"] is None
