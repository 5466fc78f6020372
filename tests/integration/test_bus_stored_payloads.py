"""Stream entries main left in Redis (AOF) before the decisions' v2 are handled after an upgrade.

A consumer group of main's agent stopped with entries pending (read, not acknowledged) and others
not yet read. Today's bus, started on the same stream, decodes both through the upcasters: none is
dead-lettered. The entries are the golden payloads of tests/golden, as main's codec wrote them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.domain.events import EVENT_TYPES, DomainEvent
from golden.files import every_golden
from golden.samples import decoded_today

SETTINGS: Final = StreamsSettings(
    prefix="t", consumer="live", block_ms=50, read_count=50, claim_idle_ms=200
)
STREAM: Final = SETTINGS.key("events")
GOLDENS: Final = {(g.event_type, g.name): g for g in every_golden()}
ERAS: Final[dict[str, list[str]]] = {
    "first released": ["v1" for _ in EVENT_TYPES],
    "with config_version": [
        "v1-config_version" if (cls.TYPE, "v1-config_version") in GOLDENS else "v1"
        for cls in EVENT_TYPES
    ],
}
"""Era of main -> the golden each event type (in EVENT_TYPES order) was written as then."""


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client of the test's server."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("era", ERAS)
async def test_entries_main_left_pending_or_unread_are_handled_after_the_upgrade(
    redis_url: str, raw: Redis, era: str
) -> None:
    goldens = [GOLDENS[(cls.TYPE, name)] for cls, name in zip(EVENT_TYPES, ERAS[era], strict=True)]
    await raw.xgroup_create(STREAM, "agent", id="0", mkstream=True)
    half = len(goldens) // 2
    for golden in goldens[:half]:
        entry: dict[Any, Any] = golden.entry
        await raw.xadd(STREAM, entry)
    await raw.xreadgroup("agent", SETTINGS.consumer, {STREAM: ">"}, count=100)  # never acked
    for golden in goldens[half:]:
        later: dict[Any, Any] = golden.entry
        await raw.xadd(STREAM, later)
    handled: list[DomainEvent] = []

    async def handle(event: DomainEvent) -> None:
        handled.append(event)

    client = Redis.from_url(redis_url, socket_timeout=SETTINGS.socket_timeout_secs)
    bus = RedisStreamsEventBus(client, EventCodec(default_registry()), SETTINGS)
    bus.subscribe("agent", ["*"], handle)
    try:
        await bus.start()
        await bus.drain(timeout_secs=10)
    finally:
        await bus.stop()
        await client.aclose()

    assert handled == [decoded_today(g.event_type, g.name) for g in goldens]
    assert bus.counters.dead_lettered == 0
    assert (await raw.xpending(STREAM, "agent"))["pending"] == 0
