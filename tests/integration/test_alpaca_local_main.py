"""`python -m fin_agent.adapters.broker.alpaca_local --secrets-dir`: the compose dev profile's
local Alpaca server accepts the keys in the agent's secret files, and only those."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from support import free_port, http_get, wait_until


def _account(url: str, key: str, secret: str) -> int:
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    request = urllib.request.Request(f"{url}/v2/account", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (localhost)
            assert json.loads(response.read())["equity"] == "100000"
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_local_server_takes_its_keys_from_the_secret_files(tmp_path: Path) -> None:
    (tmp_path / "alpaca_key_id").write_text("PKTEST123\n")
    (tmp_path / "alpaca_secret_key").write_text("s3cret\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fin_agent.adapters.broker.alpaca_local", "--port", str(port),
         "--secrets-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(f"{url}/_local/counts")[0] == 200, "the local server", 30)
        assert _account(url, "PKTEST123", "s3cret") == 200
        assert _account(url, "local-key", "local-secret") == 401
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
