"""`fin-agent run --session-replay DAY`: a recorded day through the live wiring (scheduler, Finnhub
REST and trade WebSocket, Yahoo daily bars, bus, store) against the local servers, at speed 0,
makes the same trades as `fin-agent backtest` of that day on the same files.

The av2019 files of ../shared/data, 2019-02-15, with `scan.gap_min_pct` 1 (the day's gaps are
1-3 %): the backtest trades BAC and JPM to their targets. The replay's trades come from the
store the live agent wrote (its own data folder under `data_dir/session-replay/`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.domain.events import PositionClosed
from support import free_port

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FILES = [DATA / "av2019_daily_24sym.csv.gz", DATA / "av2019_1min_24sym.csv.gz"]
DAY = "2019-02-15"
FIN_AGENT = Path(sys.executable).with_name("fin-agent")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    if not all(f.exists() for f in FILES):
        if os.environ.get("CI") == "true":
            pytest.fail(f"the recorded av2019 files are missing from {DATA}")
        pytest.skip(f"the recorded av2019 files are not in {DATA}")
    path = tmp_path / "config.yaml"
    settings = {
        "data_dir": str(tmp_path / "var"),
        "secrets_dir": str(tmp_path / "secrets"),
        "scan": {"gap_min_pct": 1},
        "http": {"port": free_port()},
        "dashboard": {"port": free_port()},
        "logging": {"format": "json"},
    }
    path.write_text(yaml.safe_dump(settings))
    return path


def fin_agent(config: Path, *args: str) -> str:
    done = subprocess.run(
        [str(FIN_AGENT), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def trade_figures(trade: Any) -> tuple[str, str, int, str, str, str, str, str]:
    return (
        str(trade["symbol"]),
        str(trade["side"]),
        int(trade["qty"]),
        str(trade["entry"]),
        str(trade["exit"]),
        str(trade["exit_reason"]),
        str(trade["net_pnl"]),
        str(trade["exit_at"]),
    )


async def stored_trades(config: Path) -> list[tuple[str, str, int, str, str, str, str, str]]:
    folder = config.parent / "var" / "session-replay" / DAY
    store = DuckDBStore(folder / "fin_agent.duckdb", EventCodec(default_registry()))
    try:
        events = await store.events()
    finally:
        await store.close()
    trades = [e.trade for e in events if isinstance(e, PositionClosed)]
    return sorted(
        trade_figures(
            {
                "symbol": t.symbol,
                "side": t.side,
                "qty": t.qty,
                "entry": f"{t.entry_price.normalize():f}",
                "exit": f"{t.exit_price.normalize():f}",
                "exit_reason": t.exit_reason,
                "net_pnl": f"{t.net_pnl:.2f}",
                "exit_at": t.exit_at.isoformat(),
            }
        )
        for t in trades
    )


def test_a_replayed_session_trades_as_the_backtest_of_that_day(config: Path) -> None:
    data = [str(f) for f in FILES]
    backtest = json.loads(
        fin_agent(config, "backtest", "--data", *data, "--from", DAY, "--to", DAY, "--json")
    )
    out = fin_agent(config, "run", "--session-replay", DAY, "--speed", "0", "--data", *data)

    expected = sorted(trade_figures(t) for t in backtest["trades"])
    assert [t[0] for t in expected] == ["BAC", "JPM"]
    assert asyncio.run(stored_trades(config)) == expected
    assert out.startswith(f"{DAY} trades 2 net P&L {backtest['net_pnl']} ")
