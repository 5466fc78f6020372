"""`fin-agent demo --dashboard`: a simulated day with the dashboard beside it, for newcomers.

The agent's API and the Streamlit dashboard start first and their addresses are printed. With a
terminal the day is paced so it visibly unfolds, and the dashboard stays up until Ctrl-C; without
one (CI, scripts) the day runs at full speed and everything stops after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
from collections.abc import Sequence
from decimal import Decimal
from typing import TextIO

from fin_agent.app.cli.dashboard import (
    child_environ,
    dashboard_app,
    free_port,
    streamlit_command,
)
from fin_agent.app.container import Container, running
from fin_agent.app.http.server import HttpServer
from fin_agent.app.runner import run_sessions
from fin_agent.app.serve import http_deps
from fin_agent.domain.report import DailyReport
from fin_agent.domain.values import Session

AGENT_URL_ENV = "FIN_AGENT_DASHBOARD_AGENT_URL"
PACE_SECS = 0.08  # per simulated minute with a terminal: a 390-minute day in about half a minute


async def demo_with_dashboard(
    container: Container,
    sessions: Sequence[Session],
    equity: Decimal,
    args: argparse.Namespace,
    out: TextIO,
    *,
    interactive: bool,
) -> list[DailyReport]:
    """Run the sessions with the API and the dashboard up; wait for Ctrl-C when interactive."""
    settings = container.settings
    host = "127.0.0.1"
    server = HttpServer(http_deps(container), host, free_port(host))
    dash_port = free_port(host)
    env = child_environ(args, settings, os.environ)
    env[AGENT_URL_ENV] = server.url
    async with running(container):
        await server.start()
        command = streamlit_command(dashboard_app(), host, dash_port)
        child = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            out.write(
                f"dashboard at http://{host}:{dash_port}/   (the agent's API at {server.url})\n"
            )
            out.flush()
            reports = await run_sessions(
                container, sessions, equity, pace_secs=PACE_SECS if interactive else 0.0
            )
            if interactive:
                out.write("the simulated day is done; the dashboard stays up: Ctrl-C to stop\n")
                out.flush()
                await _until_interrupted()
            return reports
        finally:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
                await child.wait()
            await server.stop()


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
