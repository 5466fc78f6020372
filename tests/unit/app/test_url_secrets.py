"""Passwords inside URLs never show: not in `config check`, `/api/config`, the recorded config
versions, log lines or error messages; `redis_password` is a secret like the others."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import structlog
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.cli import config_check
from fin_agent.app.config.effective import SECRET_MASK
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.urls import URL_MASK, mask_url_secrets
from fin_agent.app.config.version import ConfigHistory, config_version, diff, render_diff
from fin_agent.app.http.server import make_app
from fin_agent.app.observability.logs import configure_logging
from fin_agent.app.serve import http_deps
from fin_agent.domain.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"
PASSWORD = "Hunter2-sq"
URLS = {
    "FIN_AGENT_STORE__URL": f"postgresql://fin_agent:{PASSWORD}@db:5432/fin_agent",
    "FIN_AGENT_BUS__REDIS_URL": f"redis://:{PASSWORD}@redis:6379/0",
    "FIN_AGENT_TRACING__OTLP_ENDPOINT": f"https://otel:{PASSWORD}@collector:4318/v1/traces",
}


def settings_with(tmp_path: Path, environ: dict[str, str]) -> Settings:
    return load_settings(
        REPO_CONFIG,
        environ={"FIN_AGENT_DATA_DIR": str(tmp_path / "var"), **environ},
        secrets_dir=tmp_path / "no-secrets",
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@redis:6379/0", f"redis://:{URL_MASK}@redis:6379/0"),
        ("rediss://default:p%40ss:w@h/0", f"rediss://default:{URL_MASK}@h/0"),
        ("postgresql://u:p@w@[::1]:5432/db", f"postgresql://u:{URL_MASK}@[::1]:5432/db"),
        ("unix://:pw@/run/redis.sock?db=0", f"unix://:{URL_MASK}@/run/redis.sock?db=0"),
        ("redis://h:6379/0?password=pw&db=1", f"redis://h:6379/0?password={URL_MASK}&db=1"),
        ("postgresql://u@db:5432/x", "postgresql://u@db:5432/x"),
        ("http://127.0.0.1:8080/a@b", "http://127.0.0.1:8080/a@b"),
        (
            "from redis://:a@x and postgres://u:b@y/z, monkey=3",
            f"from redis://:{URL_MASK}@x and postgres://u:{URL_MASK}@y/z, monkey=3",
        ),
    ],
)
def test_mask_url_secrets_masks_the_password_and_keeps_the_server(url: str, shown: str) -> None:
    assert mask_url_secrets(url) == shown


def test_config_check_masks_every_url_password(tmp_path: Path) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()

    code = config_check.run(
        REPO_CONFIG,
        None,
        stdout=stdout,
        stderr=stderr,
        environ={**URLS, "FIN_AGENT_DATA_DIR": str(tmp_path)},
        secrets_dir=tmp_path / "no-secrets",
    )

    assert code == 0, stderr.getvalue()
    assert PASSWORD not in stdout.getvalue()
    effective = yaml.safe_load(stdout.getvalue().split("\n", 1)[1])
    assert effective["store"]["url"] == f"postgresql://fin_agent:{URL_MASK}@db:5432/fin_agent"
    assert effective["bus"]["redis_url"] == f"redis://:{URL_MASK}@redis:6379/0"
    assert effective["tracing"]["otlp_endpoint"] == (
        f"https://otel:{URL_MASK}@collector:4318/v1/traces"
    )


@pytest.mark.asyncio
async def test_api_config_masks_every_url_password(tmp_path: Path) -> None:
    container = await build_simulation(settings_with(tmp_path, URLS), bus="memory", store="memory")
    async with running(container):
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(make_app(http_deps(container)))
        )
        await client.start_server()
        try:
            body = await (await client.get("/api/config")).json()
        finally:
            await client.close()

    assert body["available"] is True
    assert PASSWORD not in body["yaml"]
    assert f"redis://:{URL_MASK}@redis:6379/0" in body["yaml"]


def test_recorded_versions_hold_no_password_and_diff_still_tells_servers_apart(
    tmp_path: Path,
) -> None:
    history = ConfigHistory(tmp_path / "history")
    first = settings_with(tmp_path, {"FIN_AGENT_BUS__REDIS_URL": "redis://:one-pw@redis:6379/0"})
    other_pw = settings_with(tmp_path, {"FIN_AGENT_BUS__REDIS_URL": "redis://:two-pw@redis:6379/0"})
    other_host = settings_with(tmp_path, {"FIN_AGENT_BUS__REDIS_URL": "redis://:one-pw@cache/0"})
    no_pw = settings_with(tmp_path, {"FIN_AGENT_BUS__REDIS_URL": "redis://redis:6379/0"})

    versions = [history.record(s) for s in (first, other_pw, other_host, no_pw)]

    recorded = "".join(p.read_text() for p in (tmp_path / "history").glob("*.json"))
    assert "one-pw" not in recorded
    assert "two-pw" not in recorded
    # Only the password differs: the same version, as for the database_password secret.
    assert versions[0] == versions[1] == config_version(first) == config_version(other_pw)
    assert len(set(versions)) == 3
    assert len(history.versions()) == 3
    host_change = list(
        render_diff(diff(history.load(versions[0]), history.load(versions[2]), "a", "b"))
    )
    pw_removed = list(
        render_diff(diff(history.load(versions[0]), history.load(versions[3]), "a", "c"))
    )
    assert host_change[1] == (
        f'  bus.redis_url: "redis://:{URL_MASK}@redis:6379/0" -> "redis://:{URL_MASK}@cache/0"'
        "   (restart)"
    )
    assert pw_removed[1] == (
        f'  bus.redis_url: "redis://:{URL_MASK}@redis:6379/0" -> "redis://redis:6379/0"   (restart)'
    )
    assert json.loads((tmp_path / "history" / f"{versions[0]}.json").read_text())["bus"][
        "redis_url"
    ] == (f"redis://:{URL_MASK}@redis:6379/0")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with redirect_stderr(out):
        configure_logging("INFO", "json")
        yield out
    structlog.reset_defaults()


def test_log_lines_mask_url_passwords_in_fields_and_errors(log_lines: io.StringIO) -> None:
    log = structlog.get_logger("t")

    log.info("store_connecting", url=URLS["FIN_AGENT_STORE__URL"], note="bus at redis://:a1b2@r/0")
    log.error("store_failed", error=OSError(f"cannot reach {URLS['FIN_AGENT_STORE__URL']}"))

    text = log_lines.getvalue()
    assert PASSWORD not in text
    assert "a1b2" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["url"] == f"postgresql://fin_agent:{URL_MASK}@db:5432/fin_agent"
    assert first["note"] == f"bus at redis://:{URL_MASK}@r/0"
    assert f"fin_agent:{URL_MASK}@db" in second["error"]


def test_a_refused_url_is_shown_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, {"FIN_AGENT_BUS__REDIS_URL": f"http://u:{PASSWORD}@redis/0"})

    assert PASSWORD not in str(caught.value)
    assert f"'http://u:{URL_MASK}@redis/0'" in str(caught.value)


def test_redis_password_is_a_secret_from_the_environment_or_a_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "redis_password").write_text("from-file-pw\n", encoding="utf-8")
    redis = {"FIN_AGENT_BUS__REDIS_URL": "redis://redis:6379/0"}

    from_env = settings_with(tmp_path, {**redis, "FIN_AGENT_REDIS_PASSWORD": "from-env-pw"})
    from_file = load_settings(
        REPO_CONFIG, environ={**redis, "FIN_AGENT_REDIS_PASSWORD": "x"}, secrets_dir=secrets
    )
    embedded = load_settings(REPO_CONFIG, environ={}, secrets_dir=secrets)

    assert from_env.bus_redis_password() == "from-env-pw"
    assert from_file.bus_redis_password() == "from-file-pw"  # a secret file beats the variable
    assert embedded.redis_password is not None
    assert embedded.bus_redis_password() is None  # the embedded redis-server has no password
    assert "from-env-pw" in from_env.secret_values()  # so every log line masks it
    stdout = io.StringIO()
    config_check.run(
        REPO_CONFIG, None, stdout=stdout, stderr=io.StringIO(), environ={}, secrets_dir=secrets
    )
    assert yaml.safe_load(stdout.getvalue().split("\n", 1)[1])["redis_password"] == SECRET_MASK
    assert "from-file-pw" not in stdout.getvalue()


def test_redis_password_in_config_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("bus: {kind: redis}\nredis_password: hunter2\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={}, secrets_dir=tmp_path / "none")

    assert str(caught.value) == (
        "redis_password: secrets are not accepted in config.yaml (set in config.yaml line 2); "
        "delete it and set the environment variable FIN_AGENT_REDIS_PASSWORD or write the value "
        "to a file named redis_password in secrets_dir (default /run/secrets)"
    )
