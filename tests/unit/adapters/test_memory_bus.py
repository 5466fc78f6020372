"""The in-memory bus's `keep_published` switch: a backtest's bus dispatches the same and keeps
nothing (the store has every event; a long backtest would hold each day's events)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from fin_agent.adapters.memory import InMemoryEventBus
from fin_agent.domain.events import DomainEvent, ErrorRaised

AT = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)


def error_event(n: int) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"memory-bus-{n}"),
        occurred_at=AT,
        trading_day=AT.date(),
        source="test",
        code="test.event",
        message=f"event {n}",
    )


async def dispatched(bus: InMemoryEventBus) -> tuple[list[DomainEvent], list[DomainEvent]]:
    """What a handler group and a batch group saw of three publishes."""
    seen: list[DomainEvent] = []
    batched: list[DomainEvent] = []

    async def handle(event: DomainEvent) -> None:
        seen.append(event)

    async def handle_batch(events: Sequence[DomainEvent]) -> None:
        batched.extend(events)

    bus.subscribe("one", [ErrorRaised.TYPE], handle)
    bus.subscribe_batch("store", [ErrorRaised.TYPE], handle_batch)
    for start, end in ((0, 1), (1, 4), (4, 6)):
        await bus.publish([error_event(n) for n in range(start, end)])
    return seen, batched


@pytest.mark.asyncio
async def test_a_bus_that_keeps_nothing_dispatches_every_event_in_order() -> None:
    bus = InMemoryEventBus(keep_published=False)

    seen, batched = await dispatched(bus)

    expected = [error_event(n) for n in range(6)]
    assert seen == expected
    assert batched == expected
    assert bus.published == []


@pytest.mark.asyncio
async def test_by_default_the_bus_keeps_every_published_event() -> None:
    bus = InMemoryEventBus()

    await dispatched(bus)

    assert bus.published == [error_event(n) for n in range(6)]
