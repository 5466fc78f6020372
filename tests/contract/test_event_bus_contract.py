"""The EventBus port's promises, checked on the in-memory fake and on Redis Streams alike.

Every test runs twice through the parametrized `bus` fixture: `InMemoryEventBus` and
`RedisStreamsEventBus` on a real redis-server (one per module, a fresh stream prefix per test).
Order is promised per stream, so ordering checks use events of one stream (`error.raised`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import InMemoryEventBus
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.embedded import EmbeddedRedis
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.domain.events import BarsClosed, DayStarted, DomainEvent, ErrorRaised
from fin_agent.domain.values import Bar, Symbol
from fin_agent.ports.event_bus import ALL_EVENTS, EventBus

OCCURRED_AT = datetime(2025, 3, 3, 14, 45, tzinfo=UTC)
DRAIN_SECS = 10.0


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One throwaway redis-server for the module's Redis runs."""
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("contract-redis")))
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """The bus under test, not started: tests subscribe, then start it."""
    if request.param == "memory":
        yield InMemoryEventBus()
        return
    server: EmbeddedRedis = request.getfixturevalue("redis_server")
    settings = StreamsSettings(
        prefix=f"contract-{uuid.uuid4().hex[:12]}",
        consumer="contract",
        block_ms=50,
        claim_idle_ms=200,
        claim_interval_secs=0.1,
    )
    client = Redis.from_url(
        server.url, socket_timeout=settings.socket_timeout_secs, socket_connect_timeout=5.0
    )
    redis_bus = RedisStreamsEventBus(client, EventCodec(default_registry()), settings)
    yield redis_bus
    await redis_bus.stop()
    await redis_bus.delete_streams()
    await client.aclose()


def error_event(n: int, *, source: str = "cause") -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"contract-{source}-{n}"),
        occurred_at=OCCURRED_AT,
        trading_day=OCCURRED_AT.date(),
        source=source,
        code="contract.event",
        message=f"event {n}",
    )


def bars_event(n: int) -> BarsClosed:
    bar = Bar(
        symbol=Symbol("ACME"),
        start=OCCURRED_AT,
        open=Decimal("10.00"),
        high=Decimal("10.50"),
        low=Decimal("9.90"),
        close=Decimal("10.25"),
        volume=1200 + n,
    )
    return BarsClosed(
        id=BarsClosed.id_for(f"contract-{n}"),
        occurred_at=OCCURRED_AT,
        trading_day=OCCURRED_AT.date(),
        bars=(bar,),
    )


def day_event(n: int) -> DayStarted:
    return DayStarted(
        id=DayStarted.id_for(f"contract-{n}"),
        occurred_at=OCCURRED_AT,
        trading_day=OCCURRED_AT.date(),
        start_equity=Decimal("25000.00"),
        strategy="gap_and_go",
        session_open=datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
        session_close=datetime(2024, 1, 2, 21, 0, tzinfo=UTC),
    )


def recorder(into: list[DomainEvent]) -> Callable[[DomainEvent], Awaitable[None]]:
    async def record(event: DomainEvent) -> None:
        into.append(event)

    return record


def from_source(events: Sequence[DomainEvent], source: str) -> list[ErrorRaised]:
    return [e for e in events if isinstance(e, ErrorRaised) and e.source == source]


def ids(events: list[DomainEvent] | list[ErrorRaised]) -> list[str]:
    return [e.id for e in events]


@pytest.mark.asyncio
async def test_group_sees_every_event_once_in_publish_order(bus: EventBus) -> None:
    events = [error_event(n) for n in range(16)]
    seen: list[DomainEvent] = []
    bus.subscribe("orders", [ErrorRaised.TYPE], recorder(seen))
    await bus.start()

    for start, end in ((0, 1), (1, 6), (6, 16)):
        await bus.publish(events[start:end])
    await bus.drain(DRAIN_SECS)

    assert seen == events


@pytest.mark.asyncio
async def test_star_subscription_receives_every_type_and_a_typed_one_only_its_own(
    bus: EventBus,
) -> None:
    events: list[DomainEvent] = []
    for n in range(4):
        events += [error_event(n), bars_event(n), day_event(n)]
    everything: list[DomainEvent] = []
    only_bars: list[DomainEvent] = []
    bus.subscribe("audit", [ALL_EVENTS], recorder(everything))
    bus.subscribe("charts", [BarsClosed.TYPE], recorder(only_bars))
    await bus.start()

    await bus.publish(events)
    await bus.drain(DRAIN_SECS)

    assert sorted(ids(everything)) == sorted(ids(events))
    assert len(everything) == len(events)
    for event_type in (ErrorRaised, BarsClosed, DayStarted):  # in order within each type
        assert [e for e in everything if isinstance(e, event_type)] == [
            e for e in events if isinstance(e, event_type)
        ]
    assert only_bars == [e for e in events if isinstance(e, BarsClosed)]


@pytest.mark.asyncio
async def test_two_groups_both_receive_every_event(bus: EventBus) -> None:
    events = [error_event(n) for n in range(10)]
    risk: list[DomainEvent] = []
    store: list[DomainEvent] = []
    bus.subscribe("risk", [ErrorRaised.TYPE], recorder(risk))
    bus.subscribe("store", [ErrorRaised.TYPE], recorder(store))
    await bus.start()

    await bus.publish(events)
    await bus.drain(DRAIN_SECS)

    assert risk == events
    assert store == events


@pytest.mark.asyncio
async def test_events_published_by_a_handler_are_delivered_after_their_cause(
    bus: EventBus,
) -> None:
    causes = [error_event(n) for n in range(8)]
    effects = [error_event(n, source="effect") for n in range(8)]
    watched: list[DomainEvent] = []

    async def react(event: DomainEvent) -> None:
        if isinstance(event, ErrorRaised) and event.source == "cause":
            await bus.publish([effects[causes.index(event)]])

    bus.subscribe("reactor", [ErrorRaised.TYPE], react)
    bus.subscribe("watcher", [ErrorRaised.TYPE], recorder(watched))
    await bus.start()

    await bus.publish(causes)
    await bus.drain(DRAIN_SECS)

    assert from_source(watched, "cause") == causes
    assert from_source(watched, "effect") == effects
    for cause, effect in zip(causes, effects, strict=True):
        assert watched.index(cause) < watched.index(effect)


@pytest.mark.asyncio
async def test_drain_returns_once_every_event_and_its_follow_ups_were_handled(
    bus: EventBus,
) -> None:
    causes = [error_event(n) for n in range(40)]
    effects = [error_event(n, source="effect") for n in range(40)]
    handled: list[DomainEvent] = []

    async def react(event: DomainEvent) -> None:
        if isinstance(event, ErrorRaised) and event.source == "cause":
            await bus.publish([effects[causes.index(event)]])

    # the consumer of the follow-ups subscribes before their producer
    bus.subscribe("ledger", [ErrorRaised.TYPE], recorder(handled))
    bus.subscribe("reactor", [ErrorRaised.TYPE], react)
    await bus.start()

    await bus.publish(causes)
    await bus.drain(DRAIN_SECS)

    assert sorted(ids(handled)) == sorted(ids(causes + effects))


@pytest.mark.asyncio
async def test_batch_group_gets_its_events_once_in_publish_order(bus: EventBus) -> None:
    events: list[DomainEvent] = []
    for n in range(6):
        events += [error_event(n), day_event(n)]
    batches: list[list[DomainEvent]] = []

    async def take(batch: Sequence[DomainEvent]) -> None:
        batches.append(list(batch))

    bus.subscribe_batch("store", [ErrorRaised.TYPE], take)
    await bus.start()

    for start, end in ((0, 3), (3, 12)):
        await bus.publish(events[start:end])
    await bus.drain(DRAIN_SECS)

    assert all(batches)
    assert [e for batch in batches for e in batch] == from_source(events, "cause")


@pytest.mark.asyncio
async def test_trim_after_drain_leaves_later_events_flowing(bus: EventBus) -> None:
    first = [error_event(n) for n in range(5)]
    second = [error_event(n) for n in range(5, 10)]
    seen: list[DomainEvent] = []
    bus.subscribe("orders", [ErrorRaised.TYPE], recorder(seen))
    await bus.start()
    await bus.publish(first)
    await bus.drain(DRAIN_SECS)

    removed = await bus.trim()
    await bus.publish(second)
    await bus.drain(DRAIN_SECS)

    assert all(count >= 0 for count in removed.values())
    assert seen == first + second


@pytest.mark.asyncio
async def test_started_bus_answers_ping(bus: EventBus) -> None:
    bus.subscribe("orders", [ErrorRaised.TYPE], recorder([]))
    await bus.start()

    await bus.ping()
