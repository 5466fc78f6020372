"""The bench's backtrader implementation of the rules takes the project's trades on real bars."""

from __future__ import annotations

import asyncio
import importlib
import sys
import warnings
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from fin_agent.app.bootstrap import build_replay, load_bar_files, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_sessions

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]
DAILY, MINUTES = "av2019_daily_24sym.csv.gz", "av2019_1min_24sym.csv.gz"


def gap_backtrader() -> ModuleType:
    """bench/gap_backtrader.py, imported as bench/backtest.py does (bench/ on sys.path);
    backtrader's own sources carry invalid escape sequences, warned about when compiled."""
    bench = str(REPO / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return importlib.import_module("gap_backtrader")


def test_backtrader_rules_take_the_same_trades_as_the_project(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")  # the week's gaps are 1-3 %
    daily, minutes = shared_data / DAILY, shared_data / MINUTES
    settings = load_settings(REPO / "config.yaml")
    loaded = load_bar_files(
        [daily, minutes], timezone="America/New_York", bar_stamp="end", factors_dir=None
    )

    async def project() -> list[tuple[str, str, int, Decimal, Decimal, str]]:
        container = await build_replay(settings, loaded.market)
        days = loaded.market.sessions()
        sessions = [s for d in days if (s := container.calendar.session(d)) is not None]
        async with running(container):
            reports = await run_sessions(container, sessions, settings.strategy_equity())
        return [
            (r.day.isoformat(), t.symbol, t.qty, t.entry_price, t.exit_price, str(t.exit_reason))
            for r in reports
            for t in r.performance.trades
        ]

    gb = gap_backtrader()
    market = gb.load(daily, minutes, tz="America/New_York", stamp="end")
    days = [d for d in market.sessions() if date(2019, 2, 11) <= d <= date(2019, 2, 15)]
    theirs = gb.backtest(market, days, gb.Rules(gap_min_pct=Decimal(1)), Decimal(100_000))

    ours = asyncio.run(project())
    assert len(ours) == 8
    assert [(t.day.isoformat(), t.symbol, t.qty, t.entry, t.exit, t.reason) for t in theirs] == ours
