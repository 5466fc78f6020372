"""Issue 18's second Done-when: with the shipped config.yaml and only the keys set, `fin-agent
--profile prod run` against the local servers scans a 5,000-symbol universe within Alpaca's rate
limit. The local Alpaca server (its own process: `--universe 5000 --rate-limit-per-min 200`,
counting every call by arrival) lists the assets and serves snapshots and daily bars; the local
Finnhub serves news and the trade feed; Redis and PostgreSQL are the machine's. The agent's clock
starts just before the 09:00 scan of a session (`--start-at`). The environment holds the keys and
where each endpoint is, nothing of the strategy. The scan's time is read from the agent's own log
(`live_scan_done`); bench/universe_scan.py measures it against the one-minute bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from support import free_port

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 12, 4)  # a Friday session
NY = ZoneInfo("America/New_York")
SIZE = 5000
KEY_ID, SECRET, FINNHUB_KEY, API_TOKEN = "e2e-key-id", "e2e-secret", "fk-e2e", "e2e-api-token-1234"


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=err
        )


def _line(process: subprocess.Popen[bytes], starts: str) -> str:
    """The first line of the process's stdout starting with `starts` (its logs come first)."""
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode()
        if line.startswith(starts):
            return line
    raise AssertionError(f"the process ended before printing {starts!r}")


@pytest.fixture
def alpaca_local(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "ALPACA_LOCAL_KEY_ID": KEY_ID, "ALPACA_LOCAL_SECRET_KEY": SECRET}
    args = ["-m", "fin_agent.adapters.broker.alpaca_local", "--port", str(port), "--universe",
            str(SIZE), "--seed", "7", "--day", str(DAY), "--rate-limit-per-min", "200"]  # fmt: skip
    process = _start(args, env, tmp_path / "alpaca.log")
    try:
        _line(process, "alpaca-local")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def finnhub_local(tmp_path: Path) -> Iterator[dict[str, Any]]:
    args = ["-m", "fin_agent.adapters.finnhub.local", "--token", FINNHUB_KEY]
    process = _start(args, dict(os.environ), tmp_path / "finnhub.log")
    try:
        urls: dict[str, Any] = json.loads(_line(process, "{"))
        yield urls
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _first(events: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((e for e in events if e.get("event") == name), None)


def test_the_prod_agent_scans_5000_symbols_within_the_rate_limit(
    tmp_path: Path,
    alpaca_local: str,
    finnhub_local: dict[str, Any],
    redis_url: str,
    postgres_dsn: str,
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_")},
        # the keys
        "FIN_AGENT_ALPACA_KEY_ID": KEY_ID,
        "FIN_AGENT_ALPACA_SECRET_KEY": SECRET,
        "FIN_AGENT_FINNHUB_API_KEY": FINNHUB_KEY,
        "FIN_AGENT_API_TOKEN": API_TOKEN,
        # where each endpoint is: the local servers, the machine's Redis and PostgreSQL
        "FIN_AGENT_DATA_DIR": str(tmp_path / "var"),
        "FIN_AGENT_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "FIN_AGENT_BROKER__ALPACA__BASE_URL": alpaca_local,
        "FIN_AGENT_BROKER__ALPACA__STREAM_URL": alpaca_local.replace("http", "ws") + "/stream",
        "FIN_AGENT_BROKER__ALPACA__DATA_URL": alpaca_local,
        "FIN_AGENT_FINNHUB__REST_BASE_URL": finnhub_local["rest_url"],
        "FIN_AGENT_FEED__URL": finnhub_local["ws_url"],
        "FIN_AGENT_YAHOO__BASE_URL": f"http://127.0.0.1:{free_port()}",
        "FIN_AGENT_BUS__REDIS_URL": redis_url,
        "FIN_AGENT_STORE__URL": postgres_dsn,
        "FIN_AGENT_STORE__SCHEMA_NAME": f"e2e_universe_{uuid.uuid4().hex[:8]}",
        "FIN_AGENT_HTTP__PORT": str(free_port()),
    }
    start = datetime(2026, 12, 4, 8, 59, 20, tzinfo=NY).isoformat()
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "fin-agent"),
                "--config",
                str(REPO / "config.yaml"),
                "--profile",
                "prod",
                "run",
                "--start-at",
                start,
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and agent.poll() is None:
            if _first(_events(log), "live_scan_done") is not None:
                break
            time.sleep(0.5)
        events = _events(log)
        assert agent.poll() is None, log.read_text()[-4000:]
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=60)
        except subprocess.TimeoutExpired:
            agent.kill()
    done = _first(events, "live_scan_done")
    assert done is not None, log.read_text()[-4000:]
    listed = _first(events, "universe_listed")
    assert listed is not None
    assert listed["listed"] == SIZE
    assert done["symbols"] == listed["kept"] > 0
    assert done["failed"] == 0
    assert done["candidates"] > 0
    with urllib.request.urlopen(f"{alpaca_local}/_local/counts") as answer:  # noqa: S310 - local
        counts = json.loads(answer.read())
    assert counts["rate_limited"] == 0
    assert counts["max_calls_per_60s"] <= 200
    assert counts["calls"]["/v2/assets"] == 1
    # The prod profile trades the keys' account: the broker read it at start (reconciliation).
    assert counts["calls"].get("/v2/account", 0) >= 1
    assert counts["calls"]["/v2/stocks/snapshots"] == -(-listed["kept"] // 500)
    print(json.dumps({"scan_secs": done["secs"], "calls": counts["calls"],
                      "max_calls_per_60s": counts["max_calls_per_60s"]}))  # fmt: skip
