"""Helpers the tests import by name (a conftest is never imported by name: several exist).

`pyproject.toml` puts `tests/` on the path, so tests write `from support import in_ci`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT


def in_ci() -> bool:
    """True under CI (CI=true), where a missing service or data set must fail, never skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


class RedisServer:
    """A redis-server on a fixed port of 127.0.0.1 with its data (and log) in `folder`."""

    def __init__(self, binary: Path, folder: Path, port: int, *, appendonly: bool) -> None:
        self.binary = binary
        self.folder = folder
        self.port = port
        self.appendonly = appendonly
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr go there too)."""
        return self.folder / "redis.log"

    def start(self, timeout_secs: float = 10.0) -> None:
        """Launch on the same port and folder (its AOF is reloaded) and wait for PING."""
        if self.running:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            str(self.binary),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)),
            *("--save", "", "--appendonly", "yes" if self.appendonly else "no"),
            *("--appendfsync", "everysec", "--logfile", str(self.log_path)),
        ]
        with self.log_path.open("ab") as output:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=output, stderr=output, cwd=self.folder
            )
        self._wait_ready(self._proc, timeout_secs)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def stop(self, timeout_secs: float = 10.0) -> None:
        """SHUTDOWN (the AOF is flushed); SIGKILL when it does not exit in time."""
        if self._proc is None or self._proc.poll() is not None:
            return
        client = _client(self.url)
        try:
            client.shutdown()
        except redis.RedisError:
            pass
        finally:
            client.close()
        try:
            self._proc.wait(timeout=timeout_secs)
        except subprocess.TimeoutExpired:
            self.kill()

    def client(self) -> redis.Redis:
        """A synchronous client of this server (retries off, so a dead server fails fast)."""
        return _client(self.url)

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout_secs: float) -> None:
        client = _client(self.url)
        deadline = time.monotonic() + timeout_secs
        try:
            while proc.poll() is None:
                try:
                    if client.ping() and client.info("server")["process_id"] == proc.pid:
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() >= deadline:
                    self.kill()
                    pytest.fail(f"redis-server on port {self.port} did not answer in time")
                time.sleep(0.01)
        finally:
            client.close()
        log = self.log_path.read_text(errors="replace").splitlines()[-10:]
        raise RuntimeError(f"redis-server exited with {proc.returncode}: " + "\n".join(log))


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_redis(
    binary: Path, folder: Path, *, appendonly: bool, tried: list[RedisServer] | None = None
) -> RedisServer:
    """A redis-server started on a free port, tried again on another when the port was taken
    before it bound; every server tried goes into `tried` (the caller stops them all)."""
    for _attempt in range(5):
        server = RedisServer(binary, folder, free_port(), appendonly=appendonly)
        if tried is not None:
            tried.append(server)
        try:
            server.start()
        except RuntimeError as error:
            if "already in use" not in str(error):
                raise
            continue
        return server
    raise RuntimeError("no free port for redis-server after 5 attempts")


RedisServerFactory = Callable[..., RedisServer]


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET on localhost; (0, b"") while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (localhost)
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` every 0.1 s; fail naming `what` when it has not held within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stream_entry(fields: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """`fields` as redis-py's `xadd` types them (its dict parameter is invariant)."""
    return {key: value for key, value in fields.items()}


def stop_group(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after `timeout`."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def served_dashboard(
    env: Mapping[str, str], log: Path, cwd: Path
) -> Iterator[tuple[str, subprocess.Popen[Any]]]:
    """The dashboard as `fin-agent dashboard` starts it (output to `log`), healthy: its URL and
    process; stopped (its process group) on exit."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fin_agent.app.cli.dashboard"],
            stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{env['FIN_AGENT_DASHBOARD__PORT']}"
        try:
            wait_until(lambda: http_get(f"{url}/_stcore/health")[0] == 200, "the dashboard", 60)
            yield url, process
        finally:
            stop_group(process)
