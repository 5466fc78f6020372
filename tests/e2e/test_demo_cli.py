"""`fin-agent demo`: simulated days through the installed console script, as `make demo` runs it."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FIN_AGENT), "--config", str(REPO / "config.yaml"), "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_default_seed_prints_a_report_with_trades() -> None:
    result = demo()

    assert result.returncode == 0, result.stderr
    assert "trades" in result.stdout
    report = json.loads(demo("--json").stdout)
    assert report["trade_count"] > 0
    for trade in report["trades"]:
        assert {
            "symbol",
            "side",
            "entry",
            "exit",
            "qty",
            "exit_reason",
            "r_multiple",
        } <= trade.keys()


def test_demo_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    first = demo("--seed", "11", "--days", "3", "--json")
    again = demo("--seed", "11", "--days", "3", "--json")
    other = demo("--seed", "12", "--days", "3", "--json")

    assert first.returncode == again.returncode == other.returncode == 0
    assert first.stdout == again.stdout
    assert first.stdout != other.stdout


def test_demo_report_pnl_adds_up_across_days() -> None:
    report = json.loads(demo("--days", "5", "--json").stdout)

    net = sum((Decimal(t["net_pnl"]) for t in report["trades"]), Decimal(0))
    assert Decimal(report["net_pnl"]) == net
    assert Decimal(report["end_equity"]) - Decimal(report["start_equity"]) == net
    days = report["days"]
    assert len(days) == 5
    for before, after in itertools.pairwise(days):
        assert after["start_equity"] == before["end_equity"]


def test_demo_with_dashboard_prints_its_address_and_ends_by_itself_without_a_terminal() -> None:
    result = demo("--dashboard")

    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith("dashboard at http://127.0.0.1:")
    assert any(line.startswith("trades ") for line in rest)
    leftovers = subprocess.run(
        ["pgrep", "-f", "streamlit run"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""


def test_demo_through_alpaca_on_the_local_server_prints_the_paper_brokers_report() -> None:
    paper = demo("--json", "--seed", "7", "--days", "2")
    alpaca = demo("--broker", "alpaca", "--json", "--seed", "7", "--days", "2")

    assert paper.returncode == 0, paper.stderr
    assert alpaca.returncode == 0, alpaca.stderr
    assert json.loads(paper.stdout)["trade_count"] > 0
    assert alpaca.stdout == paper.stdout
    assert "alpaca_stream_connected" in alpaca.stderr, "the orders went through Alpaca's protocol"
    assert "alpaca_stream_connected" not in paper.stderr
