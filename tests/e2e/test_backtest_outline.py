"""The backtest report names each day's candidates and why each plan was or was not traded."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest

from fin_agent.app.cli.main import main

pytestmark = pytest.mark.data

DAILY = "av2019_daily_24sym.csv.gz"
MINUTES = "av2019_1min_24sym.csv.gz"
REPO = Path(__file__).resolve().parents[2]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(REPO / "config.yaml"), *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_backtest_json_names_candidates_plans_and_risk_rejections(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    monkeypatch.setenv("FIN_AGENT_RISK__MAX_OPEN_POSITIONS", "1")
    data = [str(shared_data / DAILY), str(shared_data / MINUTES)]

    code, out, _ = run_cli(
        "backtest", "--json", "--data", *data, "--from", "2019-02-12", "--to", "2019-02-12"
    )

    assert code == 0
    (day,) = json.loads(out)["days"]
    decisions = {d["symbol"]: d for d in day["candidate_decisions"]}
    assert [d["symbol"] for d in day["candidate_decisions"]] == ["MU", "TSLA", "JPM"]
    assert day["scan_rejections"] == {"gap_band": 20, "adv": 1}
    assert decisions["MU"]["plan"]["entry"] == "39.78"
    assert decisions["MU"]["outcome"] == "rejected"
    assert decisions["MU"]["rejections"] == [
        {
            "reason": "risk:max_open_positions",
            "detail": "1 positions open, risk.max_open_positions is 1",
        }
    ]
    assert (decisions["JPM"]["outcome"], decisions["JPM"]["exit_reason"]) == ("traded", "flatten")
    assert day["trade_count"] == 1


def test_backtest_text_lists_each_days_candidates_with_their_outcome(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    data = [str(shared_data / DAILY), str(shared_data / MINUTES)]

    code, out, _ = run_cli(
        "backtest", "--data", *data, "--from", "2019-02-14", "--to", "2019-02-15"
    )

    assert code == 0
    assert "2019-02-14  2 candidate(s); scan rejections: gap_band 22\n" in out
    assert "TZA    long  gap    1.60%  plan 10.18 stop 10.10 target 10.34 x2455  expired" in out
    assert (
        "BAC    long  gap    1.30%  plan 28.785 stop 28.66 target 29.035 x865  "
        "traded (target, net 216.25)" in out
    )


def test_backtest_on_daily_bars_alone_says_why_no_plan_was_made(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")

    code, out, err = run_cli(
        "backtest", "--data", str(shared_data / DAILY), "--from", "2019-02-11", "--to", "2019-02-11"
    )

    assert code == 0
    assert "no plan can be made or traded without intraday bars" in err
    assert (
        "TSLA   long  gap    1.90%  no plan: no_opening_range: no bars in the opening range" in out
    )


def test_backtest_on_a_scratch_duckdb_store_reports_as_in_memory_and_leaves_nothing(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    configured, scratch = tmp_path / "configured", tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("FIN_AGENT_DATA_DIR", str(configured))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    data = [str(shared_data / DAILY), str(shared_data / MINUTES)]
    days = ("--from", "2019-02-12", "--to", "2019-02-14")

    code, in_memory, _ = run_cli("backtest", "--json", "--data", *data, *days)
    duck_code, on_duckdb, _ = run_cli(
        "backtest", "--json", "--store", "duckdb", "--data", *data, *days
    )

    assert (code, duck_code) == (0, 0)
    assert json.loads(on_duckdb) == json.loads(in_memory)
    assert json.loads(on_duckdb)["days"][0]["trade_count"] >= 1
    assert list(scratch.iterdir()) == []
    assert not configured.exists()
