"""`/readyz` of a real agent on a real Redis: a flood of probes all answer 200 while Redis is up,
because the probe has its own connection (never the bus's) and a flood shares one check."""

from __future__ import annotations

import asyncio
import collections
import io
import resource
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import redis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.probe import RedisProbe
from fin_agent.app.bootstrap import Container, build_simulation, running
from fin_agent.app.cli.main import main
from fin_agent.app.config.settings import load_settings
from fin_agent.app.http.server import HttpServer
from fin_agent.app.serve import http_deps
from fin_agent.domain.errors import AdapterError
from support import RedisServerFactory, free_port

REPO = Path(__file__).resolve().parents[2]
PROBES = 1000
PASSWORD = "probe-pw-7f3a"


@pytest.fixture
def enough_files() -> Iterator[None]:
    """1,000 probes in flight hold 2,000 sockets in this process (client and server ends)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * PROBES
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def agent_on(
    redis_url: str, tmp_path: Path, environ: dict[str, str] | None = None
) -> tuple[Container, HttpServer]:
    settings = load_settings(
        REPO / "config.yaml",
        environ={
            "FIN_AGENT_BUS__REDIS_URL": redis_url,
            "FIN_AGENT_DATA_DIR": str(tmp_path / "var"),
            **(environ or {}),
        },
        secrets_dir=tmp_path / "no-secrets",
    )
    container = await build_simulation(
        settings, bus="redis", store="memory", stream_prefix=f"probe-{uuid.uuid4().hex[:8]}"
    )
    return container, HttpServer(http_deps(container), "127.0.0.1", free_port())


@pytest_asyncio.fixture
async def agent(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[Container, HttpServer]]:
    container, server = await agent_on(redis_url, tmp_path)
    async with running(container):
        await server.start()
        try:
            yield container, server
        finally:
            await server.stop()


async def readyz_flood(server: HttpServer, count: int) -> collections.Counter[object]:
    """`count` GET /readyz at once, each on its own connection: the status codes counted."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def probe() -> object:
            async with session.get(f"{server.url}/readyz") as response:
                body = await response.json()
                return response.status if response.status == 200 else (response.status, body)

        answers = await asyncio.gather(*(probe() for _ in range(count)), return_exceptions=True)
    return collections.Counter(a if not isinstance(a, BaseException) else repr(a) for a in answers)


@pytest.mark.asyncio
@pytest.mark.usefixtures("enough_files")
async def test_a_thousand_concurrent_probes_all_answer_200_while_redis_is_up(
    agent: tuple[Container, HttpServer],
) -> None:
    _, server = agent

    answers = await readyz_flood(server, PROBES)

    assert answers == collections.Counter({200: PROBES})


@pytest.mark.asyncio
async def test_the_probe_does_not_need_a_connection_of_the_bus(
    agent: tuple[Container, HttpServer],
) -> None:
    container, server = agent
    assert isinstance(container.bus, RedisStreamsEventBus)
    pool = container.bus.redis.connection_pool
    held: list[Connection] = []
    try:
        while True:  # take every connection the bus's pool may still open
            try:
                held.append(await pool.get_connection())  # type: ignore[no-untyped-call]
            except redis.exceptions.MaxConnectionsError:
                break

        answers = await readyz_flood(server, 10)
    finally:
        for connection in held:
            await pool.release(connection)

    assert answers == collections.Counter({200: 10})


@pytest.mark.asyncio
async def test_the_probe_reports_redis_down_within_its_own_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    probe = RedisProbe.beside(Redis.from_url(f"redis://127.0.0.1:{port}/0"), timeout_secs=0.2)
    try:
        with pytest.raises(AdapterError, match=r"^Redis did not answer PING within 0.2 s: "):
            await probe.ping()
    finally:
        await probe.close()
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()


def dlq_list(redis_url: str, tmp_path: Path, password: str | None) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIN_AGENT_DATA_DIR", str(tmp_path / "var"))
        patch.setenv("FIN_AGENT_BUS__REDIS_URL", redis_url)
        patch.setenv("FIN_AGENT_SECRETS_DIR", str(tmp_path / "no-secrets"))
        if password is not None:
            patch.setenv("FIN_AGENT_REDIS_PASSWORD", password)
        code = main(["--config", str(REPO / "config.yaml"), "dlq", "list"], out=out, err=err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.asyncio
async def test_the_bus_the_probe_and_dlq_use_the_redis_password_secret(
    redis_server_factory: RedisServerFactory, tmp_path: Path
) -> None:
    server = redis_server_factory()
    with server.client() as admin:
        admin.config_set("requirepass", PASSWORD)
    try:
        container, http = await agent_on(
            server.url, tmp_path, {"FIN_AGENT_REDIS_PASSWORD": PASSWORD}
        )
        async with running(container):  # creates the consumer groups: authenticated
            await container.bus.ping()
            await http.start()
            try:
                answers = await readyz_flood(http, 5)
            finally:
                await http.stop()
        without, _ = await agent_on(server.url, tmp_path)
        try:
            with pytest.raises(AdapterError, match="Redis does not answer"):
                await without.bus.ping()
        finally:
            for close in reversed(without.closers):
                await close()
        listed = await asyncio.to_thread(dlq_list, server.url, tmp_path, PASSWORD)
        refused = await asyncio.to_thread(dlq_list, server.url, tmp_path, None)
    finally:
        with redis.Redis.from_url(server.url, password=PASSWORD) as client:
            client.config_set("requirepass", "")

    assert answers == collections.Counter({200: 5})
    assert listed == (0, "the dead-letter stream is empty\n")
    assert refused[0] == 2
    assert "authenticated" in refused[1]
    assert PASSWORD not in refused[1]
