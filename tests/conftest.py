"""Fixtures shared by every test tree: shared data, PostgreSQL, throwaway redis-servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fin_agent.adapters.embedded_redis import find_redis_server

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def in_ci() -> bool:
    """True under CI (CI=true), where a missing service or data set must fail, never skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recorded market data in ../shared/data: skipped when absent, except in CI."""
    if not SHARED_DATA.is_dir():
        if in_ci():
            pytest.fail(f"CI must provide the shared market data at {SHARED_DATA}")
        pytest.skip(f"shared market data not found at {SHARED_DATA}: these tests need it")
    return SHARED_DATA


POSTGRES_DSN = os.environ.get(
    "FIN_AGENT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The machine's PostgreSQL (FIN_AGENT_TEST_POSTGRES): skipped when down, except in CI."""
    url = urlparse(POSTGRES_DSN)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=2):
            pass
    except OSError as exc:
        if in_ci():
            pytest.fail(f"CI must provide PostgreSQL at {POSTGRES_DSN}: {exc}")
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_DSN} ({exc}): start it to run this test"
        )
    return POSTGRES_DSN


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


RedisServerFactory = Callable[..., RedisServer]


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """Start throwaway redis-servers: `factory(appendonly=False) -> RedisServer`, started."""
    binary = find_redis_server()
    servers: list[RedisServer] = []

    def factory(*, appendonly: bool = False) -> RedisServer:
        folder = tmp_path / f"redis-{len(servers)}"
        for _attempt in range(5):  # the free port may be taken before the server binds it
            server = RedisServer(binary, folder, _free_port(), appendonly=appendonly)
            servers.append(server)
            try:
                server.start()
            except RuntimeError as error:
                if "already in use" not in str(error):
                    raise
                continue
            return server
        raise RuntimeError("no free port for redis-server after 5 attempts")

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def redis_url(redis_server_factory: RedisServerFactory) -> str:
    """The URL of a clean redis-server (no AOF) that lives for one test."""
    return redis_server_factory().url
