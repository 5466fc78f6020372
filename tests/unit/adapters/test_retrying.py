"""The tenacity retry helpers: the equal-jitter backoff sequence, waits asked by an attempt, and
the stop conditions, on a fake sleep that records what it was asked to wait."""

from __future__ import annotations

import random

import pytest
import tenacity
from tenacity.asyncio import AsyncRetrying

from fin_agent.adapters.retrying import (
    Again,
    WaitEqualJitter,
    equal_jitter_backoff,
    retry_when_asked,
)
from fin_agent.domain.errors import AdapterError, ConfigError


class FixedDraw(random.Random):
    """A random source whose every draw is `value` (0 gives the shortest waits, 1 the longest)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, secs: float) -> None:
        self.waits.append(secs)


def test_equal_jitter_backoff_doubles_from_half_to_all_of_each_capped_step() -> None:
    shortest = equal_jitter_backoff(initial_secs=0.5, max_secs=5.0, rng=FixedDraw(0.0))
    longest = equal_jitter_backoff(initial_secs=0.5, max_secs=5.0, rng=FixedDraw(1.0))

    assert [shortest(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.5, 2.5]
    assert [longest(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_equal_jitter_backoff_takes_a_factor_and_stays_within_half_and_all_of_the_step() -> None:
    backoff = equal_jitter_backoff(
        initial_secs=1.0, max_secs=100.0, factor=3.0, rng=random.Random(7)
    )

    for n, step in enumerate((1.0, 3.0, 9.0, 27.0, 81.0, 100.0), start=1):
        assert step / 2 <= backoff(n) <= step


def test_a_backoff_that_shrinks_or_goes_negative_is_refused() -> None:
    with pytest.raises(ConfigError, match="use initial_secs >= 0, max_secs >= 0 and factor >= 1"):
        equal_jitter_backoff(initial_secs=1.0, max_secs=10.0, factor=0.5)
    with pytest.raises(ConfigError, match="is not a backoff"):
        equal_jitter_backoff(initial_secs=-1.0, max_secs=10.0)


@pytest.mark.asyncio
async def test_wait_equal_jitter_sleeps_the_backoff_of_each_failed_attempt_then_stops() -> None:
    sleep = FakeSleep()
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise AdapterError(f"failure {calls}")

    retrying = AsyncRetrying(
        wait=WaitEqualJitter(initial_secs=0.5, max_secs=1.5, rng=FixedDraw(1.0)),
        stop=tenacity.stop_after_attempt(4),
        sleep=sleep,
        reraise=True,
    )
    with pytest.raises(AdapterError, match=r"^failure 4$"):
        await retrying(failing)

    assert sleep.waits == [0.5, 1.0, 1.5]


@pytest.mark.asyncio
async def test_retry_when_asked_waits_what_each_attempt_asks_and_skips_zero_waits() -> None:
    sleep = FakeSleep()
    asks = [Again(0.0), Again(1.25), Again(0.0), Again(3.0)]
    attempts = 0

    async def once() -> str:
        nonlocal attempts
        attempts += 1
        if asks:
            raise asks.pop(0)
        return "done"

    result = None
    async for attempt in retry_when_asked(sleep):
        with attempt:
            result = await once()

    assert (result, attempts) == ("done", 5)
    assert sleep.waits == [1.25, 3.0]


@pytest.mark.asyncio
async def test_retry_when_asked_stops_at_the_first_other_error_and_raises_it_unchanged() -> None:
    sleep = FakeSleep()
    attempts = 0

    async def once() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise Again(2.0)
        raise ConfigError("the key is wrong: set finnhub_api_key")

    async def call() -> None:
        async for attempt in retry_when_asked(sleep):
            with attempt:
                await once()

    with pytest.raises(ConfigError, match=r"^the key is wrong: set finnhub_api_key$"):
        await call()

    assert (attempts, sleep.waits) == (2, [2.0])
