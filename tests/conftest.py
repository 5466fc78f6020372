"""Fixtures shared by every test tree: shared data, PostgreSQL and TimescaleDB, redis-servers.

Two database servers: the machine's plain PostgreSQL (`FIN_AGENT_TEST_POSTGRES`, on which the
timescaledb extension may be installed but is not preloaded: the store falls back to plain
tables there) and a TimescaleDB with the extension preloaded (`FIN_AGENT_TEST_TIMESCALE`,
`../shared/tools/timescaledb start`). `pg_dsn` runs a test on each of them.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest

from fin_agent.adapters.redis.embedded import find_redis_server
from support import RedisServer, RedisServerFactory, in_ci, start_redis

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
TIMESCALE_DSN = os.environ.get(
    "FIN_AGENT_TEST_TIMESCALE", "postgresql://postgres@127.0.0.1:5433/postgres"
)
START_TIMESCALE = "../shared/tools/timescaledb start"


def _unavailable(what: str, problem: str) -> None:
    """Fail under CI, skip elsewhere, saying what is missing."""
    if in_ci():
        pytest.fail(f"CI must provide {what}: {problem}")
    pytest.skip(f"{what}: {problem}")


def _reachable(dsn: str) -> str | None:
    url = urlparse(dsn)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=2):
            return None
    except OSError as exc:
        return str(exc)


def _timescaledb_problem(dsn: str) -> str | None:
    """Why `dsn` is no TimescaleDB with the extension preloaded, or None."""

    async def probe() -> str | None:
        con = await asyncpg.connect(dsn, timeout=5)
        try:
            preloaded = await con.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_settings "
                "WHERE name = 'timescaledb.bgw_launcher_poll_time')"
            )
        finally:
            await con.close()
        return None if preloaded else "the server does not preload timescaledb"

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever runs in this thread
        return pool.submit(asyncio.run, probe()).result()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The machine's PostgreSQL (FIN_AGENT_TEST_POSTGRES): skipped when down, except in CI."""
    problem = _reachable(POSTGRES_DSN)
    if problem:
        _unavailable(f"PostgreSQL at {POSTGRES_DSN}", f"{problem}: start it to run this test")
    return POSTGRES_DSN


@pytest.fixture(scope="session")
def timescale_dsn() -> str:
    """TimescaleDB with the extension preloaded (FIN_AGENT_TEST_TIMESCALE): skipped when down or
    not TimescaleDB, except in CI, where it must be there."""
    problem = _reachable(TIMESCALE_DSN) or _timescaledb_problem(TIMESCALE_DSN)
    if problem:
        _unavailable(
            f"TimescaleDB at {TIMESCALE_DSN}",
            f"{problem}: run `{START_TIMESCALE}` (or set FIN_AGENT_TEST_TIMESCALE)",
        )
    return TIMESCALE_DSN


@pytest.fixture(params=["postgres", "timescale"])
def pg_dsn(request: pytest.FixtureRequest) -> str:
    """Each database server in turn: plain PostgreSQL, then TimescaleDB."""
    dsn: str = request.getfixturevalue(f"{request.param}_dsn")
    return dsn


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """Start throwaway redis-servers: `factory(appendonly=False) -> RedisServer`, started."""
    binary = find_redis_server()
    servers: list[RedisServer] = []

    def factory(*, appendonly: bool = False) -> RedisServer:
        folder = tmp_path / f"redis-{len(servers)}"
        return start_redis(binary, folder, appendonly=appendonly, tried=servers)

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def redis_url(redis_server_factory: RedisServerFactory) -> str:
    """The URL of a clean redis-server (no AOF) that lives for one test."""
    return redis_server_factory().url
