"""Fixtures shared by every test tree: shared data, PostgreSQL, throwaway redis-servers."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fin_agent.adapters.redis.embedded import find_redis_server
from support import RedisServer, RedisServerFactory, free_port, in_ci

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """Start throwaway redis-servers: `factory(appendonly=False) -> RedisServer`, started."""
    binary = find_redis_server()
    servers: list[RedisServer] = []

    def factory(*, appendonly: bool = False) -> RedisServer:
        folder = tmp_path / f"redis-{len(servers)}"
        for _attempt in range(5):  # the free port may be taken before the server binds it
            server = RedisServer(binary, folder, free_port(), appendonly=appendonly)
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
