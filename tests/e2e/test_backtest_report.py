"""`fin-agent backtest --report DIR` on the recorded week of ../shared/data: report.json holds the
run's trades and figures, and report.html opens offline in Chromium with every chart drawn and every
figure shown equal to report.json's."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fin_agent.app.cli.main import main
from fin_agent.app.report.page import shown
from support import in_ci

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]
DAILY = "av2019_daily_24sym.csv.gz"
MINUTES = "av2019_1min_24sym.csv.gz"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


@pytest.fixture(scope="module")
def report(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One backtest of the week 2019-02-11..15 (gap band widened to 1 %), with its report."""
    folder = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
        out, err = io.StringIO(), io.StringIO()
        code = main(
            [
                "--config",
                str(REPO / "config.yaml"),
                "backtest",
                "--data",
                str(shared_data / DAILY),
                str(shared_data / MINUTES),
                "--from",
                "2019-02-11",
                "--to",
                "2019-02-15",
                "--json",
                "--report",
                str(folder),
            ],
            out=out,
            err=err,
        )
    assert code == 0, err.getvalue()
    return {
        "folder": folder,
        "printed": json.loads(out.getvalue()),
        "content": json.loads((folder / "report.json").read_text(encoding="utf-8")),
        "stderr": err.getvalue(),
    }


def test_report_json_holds_the_runs_trades_and_totals(report: dict[str, Any]) -> None:
    printed, content = report["printed"], report["content"]
    figures = content["strategy"]

    assert (report["folder"] / "report.html").is_file()
    assert f"report: {report['folder'] / 'report.html'}" in report["stderr"]
    assert [t["plan_id"] for t in content["trades"]] == [t["plan_id"] for t in printed["trades"]]
    assert [t["net_pnl"] for t in content["trades"]] == [t["net_pnl"] for t in printed["trades"]]
    assert figures["net_pnl"] == printed["net_pnl"]
    assert figures["trade_count"] == printed["trade_count"] == len(content["trades"]) > 0
    assert content["period"] == {"from": "2019-02-11", "to": "2019-02-15", "sessions": 5}
    assert [r["day"] for r in content["equity_curve"]] == [d["day"] for d in printed["days"]]
    assert sum(r["count"] for r in content["r_distribution"]) == len(content["trades"])
    assert sum(Decimal(g["net_pnl"]) for g in content["by_symbol"]) == Decimal(printed["net_pnl"])


def test_report_benchmarks_spy_buy_and_hold_from_the_daily_file(
    report: dict[str, Any], shared_data: Path
) -> None:
    # SPY in av2019_daily: open 2019-02-11 and close 2019-02-15, read from the file itself.
    with gzip.open(shared_data / DAILY, "rt", encoding="utf-8") as lines:
        rows = [line.strip().split(",") for line in lines]
    header = rows[0]
    spy = {
        r[header.index("datetime")][:10]: r for r in rows[1:] if r[header.index("symbol")] == "SPY"
    }
    first_open = Decimal(spy["2019-02-11"][header.index("open")])
    last_close = Decimal(spy["2019-02-15"][header.index("close")])
    bench = report["content"]["benchmark"]

    assert bench["symbol"] == "SPY"
    expected = (Decimal(100_000) * last_close / first_open).quantize(Decimal("0.01"))
    assert bench["figures"]["end_equity"] == str(expected)


def test_every_trade_has_its_chart(report: dict[str, Any]) -> None:
    for trade in report["content"]["trades"]:
        chart = trade["chart"]
        assert chart["candles"], trade["plan_id"]
        assert chart["candles"][0]["start"] <= chart["opening_range"]["end"]
        assert set(chart["levels"]) == {"entry", "stop", "target"}
        assert chart["entry"]["price"] == trade["entry"]
        assert chart["exit"]["price"] == trade["exit"]


def test_report_html_opens_offline_with_its_charts_and_the_json_figures(
    report: dict[str, Any],
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail("CI must have Debian's chromium (/usr/bin/chromium): .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt install chromium)")
    content = report["content"]
    page_url = (report["folder"] / "report.html").as_uri()
    requested: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_url)

            shown_figures = page.eval_on_selector_all(
                "[data-figure]", "cells => cells.map(c => [c.dataset.figure, c.textContent])"
            )
            charts = page.eval_on_selector_all(
                "svg[data-chart]",
                "svgs => svgs.map(s => [s.dataset.chart, s.querySelectorAll("
                "'path.series, rect.bar, g.candle').length, s.getBoundingClientRect().height])",
            )
            trade_marks = page.eval_on_selector_all(
                "details[data-trade] svg",
                "svgs => svgs.map(s => [s.querySelectorAll('g.candle').length, "
                "s.querySelectorAll('rect.opening-range').length, "
                "s.querySelectorAll('g.level').length, s.querySelectorAll('g.mark').length])",
            )
        finally:
            browser.close()

    assert requested == [page_url]  # nothing fetched but the page itself
    expected = {f"strategy.{k}": shown(content["strategy"][k]) for k in content["figure_labels"]}
    expected |= {
        f"benchmark.{k}": shown(content["benchmark"]["figures"][k])
        for k in content["figure_labels"]
    }
    assert dict(shown_figures) == expected
    names = [name for name, _, _ in charts]
    for wanted in ("equity", "drawdown", "daily_pnl", "r_distribution", "by_symbol", "trade"):
        assert wanted in names
    assert all(drawn > 0 and height > 40 for _, drawn, height in charts), charts
    assert trade_marks == [[len(t["chart"]["candles"]), 1, 3, 2] for t in content["trades"]]
