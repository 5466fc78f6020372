"""The backtest report: `fin-agent backtest --report DIR` writes report.json and report.html.

`material` gathers what the run left (trades, plans, bars, the benchmark), `content` turns it into
report.json's values with the statistics of `domain.performance`, `page` and `svg` draw the page.
"""

from __future__ import annotations

import json
from pathlib import Path

from fin_agent.app.report.content import report_content
from fin_agent.app.report.material import BacktestResult, gather
from fin_agent.app.report.page import report_html

__all__ = ["BacktestResult", "gather", "report_content", "report_html", "write_report"]


def write_report(directory: Path, result: BacktestResult) -> tuple[Path, Path]:
    """Write report.json and report.html into `directory` (made if missing); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    content = report_content(result)
    data, page = directory / "report.json", directory / "report.html"
    data.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    page.write_text(report_html(content), encoding="utf-8")
    return data, page
