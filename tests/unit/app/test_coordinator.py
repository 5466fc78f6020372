"""The coordinator waits out every store failure in place, says what to fix, and isolates the one
event a store refuses; past the outage tolerance it blocks new entries until the store is back."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

import pytest

from fin_agent.adapters.memory import FixedClock
from fin_agent.app.coordinator import Coordinator, describe
from fin_agent.domain.errors import AdapterError, ConfigError, DataError
from fin_agent.domain.events import DomainEvent, ErrorRaised, Severity
from fin_agent.ports.event_bus import BatchHandler, RejectedEvents

AT = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def event(n: int) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"coordinator-test-{n}"),
        occurred_at=AT,
        trading_day=AT.date(),
        source="test",
        code="test",
        message=str(n),
    )


class ScriptedStore:
    """A store whose writes fail with `failures` in turn, then store; `refuse`: ids whose
    value it refuses (a DataError) every time."""

    def __init__(self, failures: Sequence[Exception], refuse: Collection[str] = ()) -> None:
        self.failures = list(failures)
        self.refuse = set(refuse)
        self.stored: list[str] = []
        self.attempts = 0

    async def write(self, events: Sequence[DomainEvent]) -> int:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        if any(e.id in self.refuse for e in events):
            raise DataError("cannot write: PostgreSQL refused a value (numeric field overflow)")
        new = [e.id for e in events if e.id not in self.stored]
        self.stored += new
        return len(new)


class RecordingBus:
    """Just enough of a bus: the batch handler it was given, and what was published."""

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []
        self.handler: BatchHandler | None = None

    def subscribe_batch(self, group: str, types: Collection[str], handler: BatchHandler) -> None:
        self.handler = handler

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self.published += events


def coordinator_on(
    store: ScriptedStore, tolerance: float = 900.0
) -> tuple[Coordinator, RecordingBus]:
    coordinator = Coordinator(
        store,  # type: ignore[arg-type]  # only `write` is used
        max_backoff_secs=0.01,
        outage_tolerance_secs=tolerance,
        clock=FixedClock(AT),
    )
    bus = RecordingBus()
    coordinator.attach(bus)  # type: ignore[arg-type]  # only subscribe_batch and publish
    return coordinator, bus


@pytest.mark.asyncio
async def test_every_kind_of_store_failure_is_waited_out_and_nothing_is_given_back() -> None:
    store = ScriptedStore(
        [
            ConfigError("cannot write: permission denied for table events: grant the store's user"),
            AdapterError("cannot write: the disk of PostgreSQL at db:5432 is full"),
            PermissionError("read-only file system"),
            RuntimeError("something nobody planned for"),
        ]
    )
    coordinator, bus = coordinator_on(store)
    batch = [event(n) for n in range(5)]

    await coordinator.on_batch(batch)  # returns only once committed: then the bus acks

    assert store.stored == [e.id for e in batch]
    assert store.attempts == 5
    assert coordinator.stats.store_up
    assert coordinator.stats.store_failures == 4
    codes = [(e.code, e.severity) for e in bus.published if isinstance(e, ErrorRaised)]
    assert codes == [("store.down", Severity.CRITICAL), ("store.back", Severity.WARNING)]
    down = bus.published[0]
    assert isinstance(down, ErrorRaised)
    assert "grant the store's user" in down.message
    assert "the events wait in Redis" in down.message


@pytest.mark.asyncio
async def test_entries_are_blocked_only_past_the_outage_tolerance_until_the_store_is_back() -> None:
    store = ScriptedStore([AdapterError("cannot write: PostgreSQL is unreachable")] * 30)
    coordinator, _ = coordinator_on(store, tolerance=0.05)
    writing = asyncio.create_task(coordinator.on_batch([event(1)]))
    while coordinator.stats.store_up:  # noqa: ASYNC110 (polling a plain attribute)
        await asyncio.sleep(0.001)
    assert coordinator.entries_blocked() is None  # down, but within the tolerance

    await asyncio.sleep(0.1)
    blocked = coordinator.entries_blocked()
    assert blocked is not None
    assert "store.outage_tolerance_secs" in blocked

    await writing
    assert coordinator.entries_blocked() is None


@pytest.mark.asyncio
async def test_an_event_whose_value_the_store_refuses_is_handed_back_alone() -> None:
    bad = event(3)
    store = ScriptedStore([], refuse={bad.id})
    coordinator, _ = coordinator_on(store)
    batch = [event(n) for n in range(6)]

    with pytest.raises(RejectedEvents) as refused:
        await coordinator.on_batch(batch)

    assert [e.id for e in refused.value.events] == [bad.id]
    assert "numeric field overflow" in refused.value.reason
    assert sorted(store.stored) == sorted(e.id for e in batch if e.id != bad.id)


def test_a_full_disk_is_named_with_its_fix_whatever_the_error_class() -> None:
    described = describe(OSError(28, "No space left on device"))

    assert "disk is full" in described
    assert "free space" in described
