"""`fin-agent dashboard`: run the Streamlit dashboard as a child process and wait for it.

The dashboard listens on `dashboard.host`:`dashboard.port` (localhost by default; port 0 picks a
free one) and reads the agent's HTTP API at `http.host`:`http.port` of the same config, which it
loads itself: it gets the config file and profile through `FIN_AGENT_CONFIG`/`FIN_AGENT_PROFILE`,
and never a secret on its command line. SIGINT and SIGTERM are passed on to Streamlit.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

import fin_agent
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.sources import CONFIG_ENV_VAR, PROFILE_ENV_VAR
from fin_agent.domain.errors import ConfigError, FinAgentError

AGENT_URL_ENV = "FIN_AGENT_DASHBOARD_AGENT_URL"
"""The agent's base URL for the dashboard; unset, it is http://<http.host>:<http.port>."""

STOP_TIMEOUT_SECS = 10.0
_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


def dashboard_app(cwd: Path | None = None) -> Path:
    """The dashboard's entry script: beside `src/` in a checkout, else under the working folder."""
    here = Path(fin_agent.__file__).resolve().parents[2] / "dashboard" / "app.py"
    there = (cwd or Path.cwd()) / "dashboard" / "app.py"
    for path in (here, there):
        if path.is_file():
            return path
    raise ConfigError(
        f"the dashboard's app.py is neither at {here} nor at {there}: run `fin-agent dashboard` "
        "from the fin_agent folder (the one holding dashboard/)"
    )


def free_port(host: str) -> int:
    """A port free on `host` right now (for `dashboard.port: 0`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    """The command line that serves `app` on host:port, headless and without usage statistics."""
    return [
        sys.executable,
        *("-m", "streamlit", "run", str(app)),
        *("--server.address", host, "--server.port", str(port)),
        *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
        *("--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"),
        *("--theme.base", "dark"),
    ]


def child_environ(
    args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]
) -> dict[str, str]:
    """The dashboard's environment: this command's, with the config file, profile and agent URL."""
    env = dict(environ)
    config: Path | None = getattr(args, "config", None)
    if config is not None:
        env[CONFIG_ENV_VAR] = str(config.resolve())
    env[PROFILE_ENV_VAR] = settings.profile
    agent_url: str | None = getattr(args, "agent_url", None)
    if agent_url:
        env[AGENT_URL_ENV] = agent_url
    return env


def _url_host(host: str) -> str:
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - listening everywhere: browse it locally
        return "127.0.0.1"
    try:
        return (
            f"[{host}]" if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address) else host
        )
    except ValueError:  # a host name
        return host


def dashboard_command(
    args: argparse.Namespace,
    settings: Settings,
    out: TextIO,
    *,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Start Streamlit on the dashboard's address, wait for it, return its exit code."""
    host = settings.dashboard.host
    port = settings.dashboard.port or free_port(host)
    app = dashboard_app()
    env = child_environ(args, settings, os.environ if environ is None else environ)
    out.write(f"dashboard at http://{_url_host(host)}:{port}/\n")
    if host not in _LOCAL_HOSTS and settings.dashboard_password is None:
        out.write(
            f"warning: the dashboard listens on {host} without a password: set "
            "FIN_AGENT_DASHBOARD_PASSWORD (or a dashboard_password secret file)\n"
        )
    out.flush()
    return run_child(streamlit_command(app, host, port), env)


def run_child(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run `command`, passing SIGINT and SIGTERM on, and return its exit code (0 when stopped)."""
    child = subprocess.Popen(command, env=dict(env))  # noqa: S603 - our own interpreter and args

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    stopped = {-signal.SIGINT, -signal.SIGTERM}
    return 0 if code in stopped else code


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m fin_agent.app.cli.dashboard [--config FILE] [--profile NAME]`."""
    parser = argparse.ArgumentParser(prog="fin-agent dashboard", description=__doc__)
    parser.add_argument("--config", type=Path, help="config file (default: ./config.yaml)")
    parser.add_argument("--profile", choices=["dev", "paper", "prod"], help="config profile")
    parser.add_argument(
        "--agent-url", help=f"the agent's URL (default: ${AGENT_URL_ENV} or http.*)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, profile=args.profile)
        return dashboard_command(args, settings, sys.stdout)
    except FinAgentError as exc:
        sys.stderr.write(f"fin-agent: error: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
