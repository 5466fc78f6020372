"""Editing config.yaml while the agent runs: applied at the next decision point, or refused."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio

from fin_agent.adapters.memory import FixedClock, InMemoryEventBus
from fin_agent.app.bootstrap import Container, build_simulation, running
from fin_agent.app.config.file import MAX_CONFIG_BYTES
from fin_agent.app.config.live import ConfigWatcher
from fin_agent.app.config.settings import load_settings
from fin_agent.app.config.version import ConfigHistory
from fin_agent.app.runner import run_session
from fin_agent.domain.events import (
    ConfigChanged,
    DomainEvent,
    ErrorRaised,
    PlanCreated,
    ScanCompleted,
)
from fin_agent.domain.gap_scanner import RejectRule

REPO = Path(__file__).resolve().parents[2]
E = TypeVar("E", bound=DomainEvent)
DAY1, DAY2 = date(2025, 3, 3), date(2025, 3, 4)
# 9**12 strings once expanded: refused before expansion, else it would take the machine down.
ALIAS_BOMB = (
    'lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    + "".join(f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 9)}]\n" for n in range(1, 12))
)


class Agent:
    """The agent's components on a copy of config.yaml, with its config watcher."""

    def __init__(self, container: Container, path: Path, tmp: Path) -> None:
        self.container = container
        self.path = path
        self.watcher = ConfigWatcher(
            path,
            container.live,
            publish=container.bus.publish,
            clock=FixedClock(datetime(2025, 3, 3, 20, 0, tzinfo=UTC)),
            history=ConfigHistory(tmp / "config-history"),
            settle_secs=0.5,
        )
        self.bus = container.bus
        assert isinstance(self.bus, InMemoryEventBus)

    def edit(self, old: str, new: str) -> None:
        text = self.path.read_text()
        assert old in text, old
        self.path.write_text(text.replace(old, new, 1))

    async def save_and_settle(self) -> str | None:
        """Two polls, the settle time apart, as the running watcher would do."""
        assert await self.watcher.check(100.0) is None  # just changed: wait for it to settle
        return await self.watcher.check(101.0)

    async def trade(self, day: date) -> ScanCompleted:
        session = self.container.calendar.session(day)
        assert session is not None
        await run_session(self.container, session, Decimal(100_000))
        [scan] = [e for e in self.published(ScanCompleted) if e.trading_day == day]
        return scan

    def published(self, kind: type[E]) -> list[E]:
        assert isinstance(self.bus, InMemoryEventBus)
        return [e for e in self.bus.published if isinstance(e, kind)]


@pytest_asyncio.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    path = tmp_path / "config.yaml"
    shutil.copy(REPO / "config.yaml", path)
    settings = load_settings(path, environ={"FIN_AGENT_DATA_DIR": str(tmp_path / "var")})
    container = await build_simulation(settings, bus="memory", store="memory")
    async with running(container):
        yield Agent(container, path, tmp_path)


@pytest.mark.asyncio
async def test_a_valid_edit_changes_the_next_scan_and_the_plans_carry_its_version(
    agent: Agent,
) -> None:
    first = await agent.trade(DAY1)
    before = agent.container.live.version
    agent.edit("gap_min_pct: 4 ", "gap_min_pct: 10 ")

    outcome = await agent.save_and_settle()
    second = await agent.trade(DAY2)

    assert outcome == "applied"
    [change] = agent.published(ConfigChanged)
    assert change.applied_keys == ("scan.gap_min_pct",)
    assert change.restart_keys == ()
    assert change.previous_version == before == first.config_version
    assert second.config_version == change.version == agent.container.live.version != before
    assert second.strategy_version == agent.container.live.strategy_version
    assert second.strategy_version not in ("", first.strategy_version)  # a deciding key changed
    assert all(c.gap_pct >= 10 for c in second.result.candidates)
    assert any(
        r.rule is RejectRule.GAP_BAND and "4.." not in r.detail and "10" in r.detail
        for r in second.result.rejections
    )
    plans = [p for p in agent.published(PlanCreated) if p.trading_day == DAY2]
    assert plans
    assert {(p.config_version, p.strategy_version) for p in plans} == {
        (change.version, second.strategy_version)
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("  gap_min_pct: 4 ", "  gap_minimum_pct: 4 ", "scan.gap_minimum_pct"),
        ("  max_open_positions: 3 ", "  max_open_positions: 0 ", "risk.max_open_positions"),
        ("scan:", "scan: [", "line"),
        ("\nscan:", "\n" + ALIAS_BOMB + "scan:", "(an alias bomb?)"),
        ("\nscan:", "\n#" + "x" * MAX_CONFIG_BYTES + "\nscan:", "larger than the 1 MiB"),
    ],
    ids=["unknown key", "out of range", "broken yaml", "alias bomb", "above 1 MiB"],
)
async def test_an_invalid_edit_is_refused_naming_the_field_and_trading_goes_on(
    agent: Agent, old: str, new: str, named: str
) -> None:
    before = agent.container.live.version
    agent.edit(old, new)

    outcome = await agent.save_and_settle()
    scan = await agent.trade(DAY1)

    assert outcome == "refused"
    [error] = [e for e in agent.published(ErrorRaised) if e.code == "config.refused"]
    assert named in error.message
    assert f"version {before} stays in force" in error.message
    assert agent.container.live.version == before == scan.config_version
    assert agent.published(ConfigChanged) == []
    assert scan.result.candidates  # still trading on the last good config


@pytest.mark.asyncio
async def test_a_half_written_file_waits_to_settle_and_is_refused_if_left_broken(
    agent: Agent,
) -> None:
    before = agent.container.live.version
    whole = agent.path.read_text()
    agent.path.write_text(whole[: len(whole) // 2])

    assert await agent.watcher.check(200.0) is None
    assert await agent.watcher.check(200.2) is None  # not settled yet: nothing decided
    agent.path.write_text(whole.replace("gap_min_pct: 4 ", "gap_min_pct: 5 ", 1))  # finished
    assert await agent.watcher.check(200.4) is None
    assert await agent.watcher.check(201.0) == "applied"

    cut = whole.index("gap_max_pct") + len("gap_m")
    agent.path.write_text(whole[:cut])  # and now a writer that dies half way through a key
    assert await agent.watcher.check(300.0) is None
    assert await agent.watcher.check(301.0) == "refused"
    assert agent.container.live.adopt() is not None  # the good edit is still the one pending
    assert agent.container.live.strategy.scan.gap_min_pct == 5
    assert agent.container.live.version != before


@pytest.mark.asyncio
async def test_a_restart_only_edit_is_reported_and_not_applied(agent: Agent) -> None:
    before = agent.container.live.version
    agent.edit("  kind: memory ", "  kind: redis ")

    outcome = await agent.save_and_settle()

    assert outcome == "restart"
    [change] = agent.published(ConfigChanged)
    assert change.restart_keys == ("bus.kind",)
    assert change.applied_keys == ()
    assert change.version == before
    [warning] = [e for e in agent.published(ErrorRaised) if e.code == "config.restart_required"]
    assert "bus.kind" in warning.message
    assert agent.container.live.adopt() is None
    assert agent.container.live.current.settings.bus.kind == "memory"


@pytest.mark.asyncio
async def test_rapid_saves_settle_on_the_last_one(agent: Agent) -> None:
    for n, (value, at) in enumerate([(5, 400.0), (6, 400.2), (7, 400.4)]):
        previous = "4" if n == 0 else str(value - 1)
        agent.edit(f"gap_min_pct: {previous} ", f"gap_min_pct: {value} ")
        assert await agent.watcher.check(at) is None

    assert await agent.watcher.check(401.0) == "applied"
    assert len(agent.published(ConfigChanged)) == 1
    adopted = agent.container.live.adopt()
    assert adopted is not None
    assert adopted.strategy.scan.gap_min_pct == 7


@pytest.mark.asyncio
async def test_an_execution_cost_edit_needs_a_restart_because_the_broker_holds_the_costs(
    agent: Agent,
) -> None:
    agent.edit("  slippage_bps: 0 ", "  slippage_bps: 5 ")

    outcome = await agent.save_and_settle()

    assert outcome == "restart"
    [change] = agent.published(ConfigChanged)
    assert change.restart_keys == ("execution.slippage_bps",)
    assert agent.container.live.adopt() is None
    assert agent.container.live.strategy.costs.slippage_bps == 0
