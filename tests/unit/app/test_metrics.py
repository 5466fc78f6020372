"""The agent's Prometheus metrics move with a trading day and pass `promtool check metrics`."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.observability.metric_sources import register_sources
from fin_agent.app.runner import run_session
from support import in_ci

REPO = Path(__file__).resolve().parents[3]


def sample(text: str, name: str) -> float:
    """The value of the first sample line starting with `name` (labels included in the name)."""
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} in the metrics")


@pytest.mark.asyncio
async def test_metrics_move_with_a_trading_day_and_pass_promtool() -> None:
    settings = load_settings(REPO / "config.yaml", environ={})
    container = await build_simulation(settings, bus="memory", store="memory")
    register_sources(container.metrics, container)
    session = container.calendar.session(settings.simulator.start_date)
    assert session is not None
    before = (await container.metrics.render()).decode()

    async with running(container):
        await run_session(container, session, Decimal(100_000))
        after = (await container.metrics.render()).decode()

    bars = 'fin_agent_events_processed_total{group="agent",type="market.bars_closed"}'
    assert bars not in before
    assert sample(after, bars) > 300
    assert sample(after, "fin_agent_store_batches_total") > 0
    assert sample(after, 'fin_agent_plans{state="closed"}') > 0
    assert "fin_agent_event_processing_seconds_bucket" in after
    promtool = shutil.which("promtool")
    if promtool is None:
        if in_ci():
            pytest.fail("CI must have promtool (Debian's prometheus package): .ci/run installs it")
        pytest.skip("promtool not installed (apt install prometheus) to lint the exposition")
    lint = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=after,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
