"""Backtests through the CLI on the recorded days of ../shared/data, one trade worked by hand."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from fin_agent.adapters.files.bar_files import BarFileSpec, read_bar_file
from fin_agent.adapters.files.replay import load_replay
from fin_agent.app.bootstrap import build_replay
from fin_agent.app.cli.main import main
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_session
from fin_agent.domain.events import ScanCompleted
from fin_agent.domain.gap_scanner import RejectRule

pytestmark = pytest.mark.data

DAILY = "av2019_daily_24sym.csv.gz"
MINUTES = "av2019_1min_24sym.csv.gz"
LEAN = "lean_minute_ext_hours_AAPL_AIG_FOXA_GOOG_NWSA_SHY_TWX.csv.gz"
REPO = Path(__file__).resolve().parents[2]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(REPO / "config.yaml"), *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_backtest_av2019_bac_trade_matches_figures_worked_by_hand(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The av2019 gaps are 1-3 %, under the default 4 % band: widen it for this week.
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    # BAC 2019-02-15, by hand from the files:
    #   prev close 28.39 (daily 2019-02-14), day open 28.76: gap 100 * 0.37 / 28.39 = 1.30 %.
    #   Opening range = 1-min bars stamped (bar END) 09:31..09:35, i.e. starting 09:30..09:34:
    #   highs 28.75 28.74 28.74 28.75 28.775 -> 28.775;
    #   lows 28.69 28.67 28.6905 28.72 28.71 -> 28.67.
    #   entry 28.775 + 0.01 = 28.785; OR stop 28.67 - 0.01 = 28.66. Every true range of the
    #   lookback is >= 0.25 (asserted below), so ATR >= 0.25 and the ATR stop 28.785 - 0.5 * ATR
    #   is <= 28.66: the tighter (higher) of the two is 28.66.
    #   R = 0.125; target 28.785 + 2 * 0.125 = 29.035.
    #   size = min(floor(100000 * 1 % / 0.125) = 8000, floor(100000 * 25 % / 28.785) = 868) = 868.
    #   The bar starting 09:35 (o 28.78 h 28.87) triggers: fill at max(28.785, 28.78) = 28.785.
    #   The first high >= 29.035 is the bar starting 09:42 (h 29.04, o 29.03): exit 29.035 at its
    #   end, 09:43 ET = 14:43 UTC. P&L = 0.25 * 868 = 217.00, 2 R.
    daily = read_bar_file(shared_data / DAILY).daily
    bac = [b for b in daily if b.symbol == "BAC" and b.session < date(2019, 2, 15)][-43:]
    assert min(
        max(b.high - b.low, abs(b.high - a.close), abs(b.low - a.close)) for a, b in pairwise(bac)
    ) >= Decimal("0.25")

    code, out, _ = run_cli(
        "backtest",
        "--data",
        str(shared_data / DAILY),
        str(shared_data / MINUTES),
        "--from",
        "2019-02-15",
        "--to",
        "2019-02-15",
        "--json",
    )

    assert code == 0
    [trade] = [t for t in json.loads(out)["trades"] if t["symbol"] == "BAC"]
    assert trade == {
        "day": "2019-02-15",
        "plan_id": "gap_and_go-2019-02-15-BAC",
        "symbol": "BAC",
        "side": "long",
        "qty": 868,
        "entry": "28.785",
        "exit": "29.035",
        "entry_at": "2019-02-15T14:36:00+00:00",
        "exit_at": "2019-02-15T14:43:00+00:00",
        "exit_reason": "target",
        "gross_pnl": "217.00",
        "commission": "0.00",
        "net_pnl": "217.00",
        "r_multiple": "2.0000",
    }


def test_backtest_av2019_week_runs_and_reports_every_day(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    args = ["backtest", "--data", str(shared_data / DAILY), str(shared_data / MINUTES)]

    code, out, _ = run_cli(*args, "--from", "2019-02-11", "--to", "2019-02-15", "--json")

    report = json.loads(out)
    assert code == 0
    assert [d["day"] for d in report["days"]] == [f"2019-02-{d}" for d in range(11, 16)]
    assert report["trade_count"] == len(report["trades"]) > 0
    net = sum(Decimal(t["net_pnl"]) for t in report["trades"])
    assert Decimal(report["end_equity"]) - Decimal(report["start_equity"]) == net


def test_backtest_with_default_band_finds_no_gap_in_a_quiet_week(shared_data: Path) -> None:
    code, out, _ = run_cli(
        "backtest",
        "--data",
        str(shared_data / DAILY),
        str(shared_data / MINUTES),
        "--from",
        "2019-02-11",
        "--to",
        "2019-02-15",
        "--json",
    )

    assert code == 0
    assert json.loads(out)["trades"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("factors", "rule"), [(True, RejectRule.GAP_BAND), (False, RejectRule.SPLIT_GUARD)]
)
async def test_aapl_split_day_is_not_taken_for_a_gap(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, factors: bool, rule: RejectRule
) -> None:
    # AAPL split 7:1 effective 2014-06-09: as traded, the open is ~85.7 % below the last close.
    # With split factors the gap is tiny; without them the split guard names it. Shorts enabled,
    # so a -85 % "gap down" would otherwise be a short candidate if the band allowed it.
    monkeypatch.setenv("FIN_AGENT_SCAN__DIRECTION", "both")
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MAX_PCT", "90")
    settings = load_settings(REPO / "config.yaml")
    spec = BarFileSpec(factors_dir=shared_data / "lean_factor_files" if factors else None)
    market = load_replay([shared_data / LEAN], spec).market_data
    container = await build_replay(settings, market)
    session = container.calendar.session(date(2014, 6, 9))
    assert session is not None

    await run_session(container, session, Decimal(100_000))

    [scan] = await container.store.events(types={ScanCompleted.TYPE})
    assert isinstance(scan, ScanCompleted)
    [aapl] = [r for r in scan.result.rejections if r.symbol == "AAPL"]
    assert aapl.rule is rule
    assert aapl.gap_pct is not None
    assert (abs(aapl.gap_pct) < 2) is factors


def test_backtest_date_range_without_data_exits_2_naming_the_span(shared_data: Path) -> None:
    code, out, err = run_cli(
        "backtest",
        "--data",
        str(shared_data / MINUTES),
        "--from",
        "2020-01-01",
        "--to",
        "2020-01-31",
    )

    assert (code, out) == (2, "")
    assert (
        "no data between 2020-01-01 and 2020-01-31: the files cover 2019-02-11..2019-02-15" in err
    )


def test_backtest_bar_file_with_bad_columns_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text("ticker,when,price\nAAPL,2019-02-11 09:31:00,171.1\n")

    code, out, err = run_cli(
        "backtest", "--data", str(bad), "--from", "2019-02-11", "--to", "2019-02-11"
    )

    assert (code, out) == (2, "")
    assert err.startswith("fin-agent: error: ")
    assert "bars.csv" in err
    assert "Traceback" not in err


def test_demo_with_broken_config_exits_2_naming_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "config.yaml"
    broken.write_text("scan:\n  gap_min_pct: [\n")
    out, err = io.StringIO(), io.StringIO()

    code = main(["--config", str(broken), "demo"], out=out, err=err)

    assert (code, out.getvalue()) == (2, "")
    assert "config.yaml" in err.getvalue()
    assert "Traceback" not in err.getvalue()
