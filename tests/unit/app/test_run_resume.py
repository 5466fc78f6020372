"""A killed `fin-agent run` restarted with the same command ends with the store of a run never
killed: reported days are not run again, the next day starts from the last report's equity, and
the day in progress goes on from its stored events.

The run is cut by a bus that dies at its Nth publish (nothing of that publish or later is stored,
as with a kill -9 between two writes); the restart is a fresh container on the same DuckDB file.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pytest

from fin_agent.adapters.storage.rows import TABLES
from fin_agent.app.bootstrap import Container, build_simulation, running
from fin_agent.app.config.settings import Settings
from fin_agent.app.runner import run_agent
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.event_bus import BatchHandler, EventBus, Handler
from support import free_port

pytestmark = pytest.mark.asyncio
DAYS = 3


class Killed(BaseException):
    """The process died: nothing after this point runs (BaseException: no handler catches it)."""


class DyingBus:
    """The container's bus until its `at`-th publish, which kills the run."""

    def __init__(self, inner: EventBus, at: int) -> None:
        self._inner = inner
        self._left = at

    @property
    def started_empty(self) -> bool:
        return self._inner.started_empty

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self._left -= 1
        if self._left <= 0:
            raise Killed
        await self._inner.publish(events)

    def subscribe(self, group: str, event_types: Collection[str], handler: Handler) -> None:
        self._inner.subscribe(group, event_types, handler)

    def subscribe_batch(
        self, group: str, event_types: Collection[str], handler: BatchHandler
    ) -> None:
        self._inner.subscribe_batch(group, event_types, handler)

    async def start(self) -> None:
        await self._inner.start()

    async def drain(
        self, timeout_secs: float | None = None, groups: Collection[str] | None = None
    ) -> None:
        await self._inner.drain(timeout_secs, groups)

    async def trim(self, retain_secs: float = 0.0) -> Mapping[str, int]:
        return await self._inner.trim(retain_secs)

    async def ping(self) -> None:
        await self._inner.ping()

    async def stop(self) -> None:
        await self._inner.stop()


PORT = free_port()


def settings_in(data_dir: Path) -> Settings:
    """The same settings each time (the recorded config version hashes all of them)."""
    return Settings.model_validate(
        {
            "data_dir": str(data_dir),
            "http": {"port": PORT},
            "simulator": {"start_date": "2025-03-03", "seed": 11},
            "store": {"kind": "duckdb"},
        }
    )


async def contents(container: Container) -> dict[str, list[str]]:
    """Every stored event (by id) and every projection row, in a comparable order."""
    store = container.store
    tables = {"events": sorted(f"{e.id} {e!r}" for e in await store.events())}
    for name in TABLES:
        rows = await store.rows(name)
        tables[name] = sorted(repr(sorted(r.items())) for r in rows)
    return tables


async def run_days(data_dir: Path, *, die_at: int | None = None) -> str:
    container = await build_simulation(settings_in(data_dir))
    if die_at is not None:
        container = dataclasses.replace(container, bus=DyingBus(container.bus, die_at))
    out = io.StringIO()
    try:
        await run_agent(container, days=DAYS, out=out)
    except Killed:
        for close in reversed(container.closers):  # the OS would drop the file handles
            await close()
    return out.getvalue()


async def stored(data_dir: Path) -> dict[str, list[str]]:
    container = await build_simulation(settings_in(data_dir))
    async with running(container):
        return await contents(container)


async def test_a_run_killed_at_any_publish_and_restarted_stores_what_a_straight_run_stores(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    lines = await run_days(data)
    assert lines.count(" trades ") == DAYS
    expected = await stored(data)
    assert expected["trades"], "the simulated days must trade, or the comparison proves little"
    for at in (2, 5, 9, 14, 20, 27):
        shutil.rmtree(data)
        await run_days(data, die_at=at)
        resumed = await run_days(data)
        assert resumed.startswith("resuming after 2025-03-0"), resumed  # the head went out
        assert await stored(data) == expected, f"killed at publish {at}"


async def test_a_finished_run_restarted_runs_no_day_again(tmp_path: Path) -> None:
    await run_days(tmp_path)
    again = await run_days(tmp_path)
    assert again.splitlines()[0].startswith(f"resuming after 2025-03-05: {DAYS} sessions")
    assert " trades " not in again
