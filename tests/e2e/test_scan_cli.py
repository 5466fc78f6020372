"""`fin-agent scan --date D --data FILE...`: the day's candidates with their figures and the
rejections counted by rule, the same as the backtest's scan of that day, on recorded data."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from fin_agent.app.cli.main import main

pytestmark = pytest.mark.data

DAILY = "av2019_daily_24sym.csv.gz"
MINUTES = "av2019_1min_24sym.csv.gz"
LEAN = "lean_minute_ext_hours_AAPL_AIG_FOXA_GOOG_NWSA_SHY_TWX.csv.gz"
REPO = Path(__file__).resolve().parents[2]
DAYS = ["2019-02-11", "2019-02-12", "2019-02-13", "2019-02-14", "2019-02-15"]
PLAN_KEYS = {"plan", "outcome", "rejections", "exit_reason", "net_pnl"}


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(REPO / "config.yaml"), *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def scan_json(*argv: str) -> dict[str, Any]:
    code, out, err = run_cli("scan", "--json", *argv)
    assert code == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def test_scan_names_the_backtests_candidates_and_rejections_of_every_day(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    data = [str(shared_data / DAILY), str(shared_data / MINUTES)]
    code, out, _ = run_cli(
        "backtest", "--json", "--data", *data, "--from", DAYS[0], "--to", DAYS[-1]
    )
    assert code == 0
    backtest = {d["day"]: d for d in json.loads(out)["days"]}

    for day in DAYS:
        scan = scan_json("--date", day, "--data", *data)

        figures = [
            {k: v for k, v in d.items() if k not in PLAN_KEYS}
            for d in backtest[day]["candidate_decisions"]
        ]
        assert scan["candidates"] == figures, day
        assert scan["scan_rejections"] == backtest[day]["scan_rejections"], day
        assert scan["symbols_scanned"] == 24
        assert len(scan["rejections"]) == 24 - len(figures)
    assert sum(len(d["candidate_decisions"]) for d in backtest.values()) == 9  # not all empty


def test_scan_json_gives_each_candidates_figures(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    data = [str(shared_data / DAILY), str(shared_data / MINUTES)]

    scan = scan_json("--date", "2019-02-12", "--data", *data)

    assert scan["taken_at"] == "2019-02-12T14:00:00+00:00"  # 09:00 ET
    assert scan["candidates"][0] == {
        "symbol": "MU",
        "rank": 1,
        "side": "long",
        "gap_pct": "2.10",
        "prev_close": "38.58",
        "pm_last": "39.39",  # no pre-market bars: the day's open
        "pm_volume": None,
        "adv": "37334260",
        "atr": "1.8215",
        "history_bars": 43,
        "skipped_rules": ["pm_volume"],
    }
    assert scan["scan_rejections"] == {"gap_band": 20, "adv": 1}
    [adv] = [r for r in scan["rejections"] if r["rule"] == "adv"]
    assert adv["detail"].startswith("average daily volume ")


def test_scan_text_lists_the_candidates_under_a_heading_with_the_rejections(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    data = [str(shared_data / DAILY), str(shared_data / MINUTES)]

    code, out, _ = run_cli("scan", "--date", "2019-02-12", "--data", *data)

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "2019-02-12  scan at 09:00 EST: 3 candidate(s) of 24 symbol(s); "
        "rejections: gap_band 20, adv 1"
    )
    assert lines[1].split() == [
        "rank", "symbol", "side", "gap", "%", "price", "prev", "close", "pm", "volume", "adv", "atr"
    ]  # fmt: skip
    assert lines[2].split() == [
        "1", "MU", "long", "2.10", "39.39", "38.58", "-", "37,334,260", "1.8215"
    ]  # fmt: skip
    assert [line.split()[1] for line in lines[2:5]] == ["MU", "TSLA", "JPM"]
    assert lines[5] == "skipped rules (the data lacks what they need): pm_volume"


def test_scan_of_the_aapl_split_day_is_guarded_without_factors_and_adjusted_with_them(
    shared_data: Path,
) -> None:
    data = str(shared_data / LEAN)

    raw = scan_json("--date", "2014-06-09", "--data", data)
    adjusted = scan_json(
        "--date", "2014-06-09", "--data", data, "--factors", str(shared_data / "lean_factor_files")
    )

    aapl = {r["symbol"]: r for r in raw["rejections"]}["AAPL"]
    assert aapl["rule"] == "split_guard"
    assert aapl["detail"].startswith("gap -85.")
    assert "7:1 split ratio" in aapl["detail"]
    aapl = {r["symbol"]: r for r in adjusted["rejections"]}["AAPL"]
    assert aapl["rule"] == "gap_band"  # the factor file's split: an ordinary small gap
    assert abs(float(aapl["gap_pct"])) < 1


def test_scan_of_a_day_outside_the_data_names_the_span(shared_data: Path) -> None:
    code, out, err = run_cli(
        "scan", "--date", "2019-03-12", "--data", str(shared_data / DAILY), "--json"
    )

    assert (code, out) == (2, "")
    assert (
        "fin-agent: error: no data on 2019-03-12: the files cover 2018-03-01..2019-02-15; "
        "choose a --date inside that span\n"
    ) in err
