"""`fin-agent ctl` against a running agent on a real Redis bus, during a paced simulated day.

The agent runs `run --bus redis --pace-secs` so its day lasts a few seconds; `ctl halt` and `ctl
resume` go through its API onto the bus, the day decides them at its next minute, and the event
log shows that no entry was placed while it was halted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import RedisServerFactory, free_port, http_get, wait_until

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")
TOKEN = "e2e-ctl-token-0123"


def get_json(url: str) -> Any:
    status, body = http_get(url)
    assert status == 200, f"{url} answered {status}: {body[:300]!r}"
    return json.loads(body)


def _day_started(url: str) -> bool:
    """True once the status names a day; a slow answer on a loaded machine is asked again."""
    status, body = http_get(f"{url}/api/status")
    return status == 200 and json.loads(body)["day"] is not None


def test_ctl_halts_and_resumes_a_running_day_over_redis(
    redis_server_factory: RedisServerFactory, tmp_path: Path
) -> None:
    redis = redis_server_factory()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_") or k == "CI"}
    env.update(
        {
            "FIN_AGENT_CONFIG": str(REPO / "config.yaml"),
            "FIN_AGENT_DATA_DIR": str(tmp_path / "data"),
            "FIN_AGENT_BUS__REDIS_URL": redis.url,
            "FIN_AGENT_BUS__BLOCK_MS": "100",
            "FIN_AGENT_HTTP__PORT": str(port),
            "FIN_AGENT_STORE__KIND": "duckdb",
        }
    )
    # 0.2 s a minute: a 78 s day, so three `ctl` starts on a loaded machine (load 6 seen under
    # make test, when 23 s were too few) all find it running; the test ends with its last `ctl`
    agent = subprocess.Popen(
        [str(FIN_AGENT), "run", "--bus", "redis", "--days", "1", "--pace-secs", "0.2",
         "--keep-serving"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FIN_AGENT), "ctl", "--timeout-secs", "30", *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    try:
        wait_until(lambda: http_get(f"{url}/healthz")[0] == 200, "the agent's API", 60)
        wait_until(lambda: _day_started(url), "the scan", 60)

        halted = ctl("halt", "--reason", "e2e: news pending")
        resumed = ctl("resume", "--reason", "e2e: all clear")
        refused = ctl("resume")

        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert "applied: trading halted: no new entries" in halted.stdout
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "applied: trading active" in resumed.stdout
        assert refused.returncode == 1
        assert "refused: trading is not halted" in refused.stdout

        kinds = "risk.state_changed,order.placed,operator.command_applied"
        log = get_json(f"{url}/api/events?types={kinds}&limit=1000")["events"]
        changes = [e for e in log if e["type"] == "risk.state_changed"]
        assert [e["summary"].split(":")[0] for e in changes] == [
            "trading active -> halted",
            "trading halted -> active",
        ]
        halt_at, resume_at = changes[0]["occurred_at"], changes[1]["occurred_at"]
        placed = [e["occurred_at"] for e in log if e["type"] == "order.placed"]
        assert not [at for at in placed if halt_at <= at < resume_at], "an entry while halted"
    finally:
        os.killpg(agent.pid, signal.SIGTERM)
        try:
            agent.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
