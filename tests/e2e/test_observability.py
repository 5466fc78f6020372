"""The running agent as an operator sees it: probes, metrics, one trace per trade, notifications.

The agent runs a simulated day on a real redis-server, then keeps serving; the test probes
`/healthz` and `/readyz`, stops Redis (readiness must say 503 and name it) and starts it again,
scrapes `/metrics` twice, reads the exported spans, and a local webhook receiver collects the
notifications. The webhook URL carries a recognisable secret that must appear in no log line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import RedisServerFactory, free_port, http_get, wait_until

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")
SECRET = "SECRET-TOKEN-e2e-4242"


class Receiver:
    """A local webhook endpoint recording every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/{SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_agent_probes_metrics_traces_and_notifications(
    redis_server_factory: RedisServerFactory, receiver: Receiver, tmp_path: Path
) -> None:
    redis = redis_server_factory(appendonly=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FIN_AGENT_DATA_DIR": str(tmp_path),
        "FIN_AGENT_BUS__REDIS_URL": redis.url,
        "FIN_AGENT_BUS__BLOCK_MS": "200",
        "FIN_AGENT_HTTP__PORT": str(port),
        "FIN_AGENT_WEBHOOK_URL": receiver.url,
        "FIN_AGENT_TRACING__EXPORTER": "console",
        "FIN_AGENT_LOGGING__FORMAT": "json",
    }
    agent = subprocess.Popen(
        [str(FIN_AGENT), "--config", str(REPO / "config.yaml"), "run", "--bus", "redis",
         "--days", "1", "--keep-serving"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(agent.stderr or []), daemon=True)
    reader.start()
    try:
        wait_until(lambda: http_get(f"{base}/healthz")[0] == 200, "/healthz", timeout=60)
        first_scrape = http_get(f"{base}/metrics")[1].decode()
        wait_until(
            lambda: any("agent_idle" in line for line in stderr_lines), "the day to finish", 90
        )
        assert http_get(f"{base}/readyz")[0] == 200
        second_scrape = http_get(f"{base}/metrics")[1].decode()
        processed = "fin_agent_events_processed_total"
        assert metric(second_scrape, processed) > metric(first_scrape, processed) >= 0
        assert metric(second_scrape, 'fin_agent_plans{state="closed"}') > 0

        redis.stop()
        wait_until(lambda: http_get(f"{base}/readyz")[0] == 503, "/readyz to say 503")
        _, body = http_get(f"{base}/readyz")
        checks = json.loads(body)["checks"]
        assert checks["bus"]["ok"] is False
        assert "Redis" in checks["bus"]["reason"]
        assert http_get(f"{base}/healthz")[0] == 200  # alive, though not ready

        redis.start()
        wait_until(lambda: http_get(f"{base}/readyz")[0] == 200, "/readyz to recover")
        wait_until(lambda: len(receiver.bodies) >= 3, "notifications")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        reader.join(timeout=30)  # stderr is the reader's until EOF: no communicate() here
        out = agent.stdout.read() if agent.stdout else ""
        for pipe in (agent.stdout, agent.stderr):
            if pipe is not None:
                pipe.close()
    assert agent.returncode == 0, "".join(stderr_lines)[-3000:]
    assert out.startswith("2025-03-03 trades ")

    spans = [json.loads(line) for line in stderr_lines if line.startswith('{"name"')]
    traces: dict[str, set[str]] = {}
    for span in spans:
        traces.setdefault(span["context"]["trace_id"], set()).add(span["name"])
    traded = [names for names in traces.values() if "handle plan.executed" in names]
    assert traded, "no trace reached plan.executed"
    for names in traded:
        assert "handle signal.generated" in names
        assert any(n.startswith("signal ") for n in names)
        assert any(n.startswith("order ") for n in names)

    kinds = {body.get("kind") for body in receiver.bodies}
    assert {"plan.executed", "position.closed", "report.daily"} <= kinds
    logs = "".join(stderr_lines) + out
    assert SECRET not in logs
