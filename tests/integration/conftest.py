"""Fixtures of the Redis bus tests: a raw client of the test's server, and buses built on it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from redis.asyncio import Redis

from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from integration.test_redis_bus import CODEC, FAST, MakeBus


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client of the test's server, with bytes replies."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def make_bus(redis_url: str) -> AsyncIterator[MakeBus]:
    """Build buses on the test's server as bootstrap does; stop them and close their clients."""
    made: list[tuple[RedisStreamsEventBus, Redis]] = []

    def factory(
        clock: FixedClock | None = None, *, client: Redis | None = None, **overrides: Any
    ) -> RedisStreamsEventBus:
        """A bus with the FAST settings but `overrides`; on `client` if given (it is closed)."""
        settings = dataclasses.replace(FAST, **overrides)
        if client is None:
            client = Redis.from_url(
                redis_url, socket_timeout=settings.socket_timeout_secs, socket_connect_timeout=5.0
            )
        bus = RedisStreamsEventBus(client, CODEC, settings, clock)
        made.append((bus, client))
        return bus

    yield factory
    for bus, client in made:
        await bus.stop()
        await client.aclose()
