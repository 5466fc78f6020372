"""Access control and operator commands over HTTP: the token off loopback, POST /api/commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fin_agent.app.bootstrap import Container, build_simulation, running
from fin_agent.app.config.access import is_loopback
from fin_agent.app.config.settings import load_settings
from fin_agent.app.http.server import make_app
from fin_agent.app.serve import http_deps
from fin_agent.domain.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
TOKEN = "s3cret-token-0123456789"
OPEN = {"FIN_AGENT_HTTP__HOST": "0.0.0.0", "FIN_AGENT_API_TOKEN": TOKEN}  # noqa: S104
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient[web.Request, web.Application]


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = load_settings(REPO / "config.yaml", environ=OPEN, secrets_dir=tmp_path)
    container: Container = await build_simulation(settings, bus="memory", store="memory")
    async with running(container):
        test_client = TestClient(TestServer(make_app(http_deps(container))))
        await test_client.start_server()
        try:
            yield test_client
        finally:
            await test_client.close()


def test_the_agent_refuses_a_network_address_without_an_api_token(tmp_path: Path) -> None:
    environ = {"FIN_AGENT_HTTP__HOST": "0.0.0.0"}  # noqa: S104
    with pytest.raises(ConfigError, match=r"api_token: http\.host 0\.0\.0\.0 is not a loopback"):
        load_settings(REPO / "config.yaml", environ=environ, secrets_dir=tmp_path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("agent", False)],  # noqa: S104
)
def test_loopback_addresses_are_told_apart(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.asyncio
async def test_off_loopback_the_api_and_metrics_need_the_token(client: Client) -> None:
    for path in ("/api/status", "/api/config", "/metrics"):
        denied = await client.get(path)
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        allowed = await client.get(path, headers=AUTH)
        assert (denied.status, wrong.status, allowed.status) == (401, 401, 200), path
    assert "Authorization: Bearer <api_token>" in await (await client.get("/api/days")).text()


@pytest.mark.asyncio
async def test_probes_stay_open_but_say_nothing_of_the_config_without_the_token(
    client: Client,
) -> None:
    health = await client.get("/healthz")
    ready = await (await client.get("/readyz")).json()
    full = await (await client.get("/readyz", headers=AUTH)).json()

    assert health.status == 200
    assert set(ready) == {"ready", "checks"}
    assert all(set(check) == {"ok"} for check in ready["checks"].values())
    assert {"version", "store", "config_version"} <= set(full)


@pytest.mark.asyncio
async def test_a_command_is_accepted_once_and_its_outcome_can_be_read(client: Client) -> None:
    body = {"command": "halt", "reason": "news pending"}
    headers = {**AUTH, "Idempotency-Key": "cmd-0001"}

    first = await client.post("/api/commands", json=body, headers=headers)
    again = await client.post("/api/commands", json=body, headers=headers)
    outcome = await (await client.get("/api/commands/cmd-0001", headers=AUTH)).json()
    unknown = await (await client.get("/api/commands/nope", headers=AUTH)).json()

    assert first.status == again.status == 202
    assert (await first.json())["status"] == "accepted"
    assert (await again.json())["status"] == "duplicate"
    assert outcome["status"] == "refused"  # no day is running in this agent
    assert outcome["detail"].startswith("no trading day is running")
    assert unknown["status"] == "unknown"
    assert (await client.post("/api/commands", json=body)).status == 401


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"command": "halt", "reason": "x"}, None, "send an Idempotency-Key header"),
        ({"command": "pause"}, "k1", "command 'pause' is not one of halt, resume, flatten, cancel"),
        ({"command": "halt"}, "k1", "a halt needs a reason"),
        ({"command": "cancel"}, "k1", "cancel needs the plan to cancel"),
        ({"command": "resume", "symbol": "AAPL"}, "k1", "symbol is for flatten only"),
        ({"command": "flatten", "symbol": "$$"}, "k1", "symbol '$$' is not a ticker"),
        ({"command": "halt", "why": "x"}, "k1", "unknown keys why: allowed keys are command"),
        (["halt"], "k1", "the body must be a JSON object"),
    ],
)
@pytest.mark.asyncio
async def test_a_bad_command_gets_400_naming_the_fix(
    client: Client, body: object, key: str | None, message: str
) -> None:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}

    reply = await client.post("/api/commands", json=body, headers=headers)

    assert reply.status == 400
    assert message in await reply.text()
