"""Retry policies on tenacity, shared by the adapters, so every retry waits and stops one way.

- `equal_jitter_backoff`: the wait after the nth failure in a row: an exponential step, capped,
  of which half is waited for sure and up to the other half at random (no thundering herd, yet
  never much shorter than the step).
- `WaitEqualJitter`: the same as a tenacity wait over the attempt number.
- `Again` and `retry_when_asked`: for attempts that decide themselves whether to try again and
  after how long (an HTTP client whose 429s and 5xx count against different limits): the attempt
  raises `Again(wait_secs)`, any other error ends the call.
- `sleep_unless_zero`: a sleep that does not yield for a zero wait (a retry with nothing to wait).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import tenacity
from tenacity.asyncio import AsyncRetrying

from fin_agent.domain.errors import ConfigError

Sleep = Callable[[float], Awaitable[None]]


def equal_jitter_backoff(
    *,
    initial_secs: float,
    max_secs: float,
    factor: float = 2.0,
    rng: random.Random | None = None,
) -> Callable[[int], float]:
    """The wait after failure `n` (1, 2, ...): `step = min(max, initial * factor**(n-1))`, then
    `step/2` plus a uniform draw in `[0, step/2]` from `rng` (the `random` module's by default)."""
    if not (initial_secs >= 0 and max_secs >= 0 and factor >= 1):
        raise ConfigError(
            f"backoff of initial {initial_secs} s, max {max_secs} s, factor {factor} is not a "
            "backoff: use initial_secs >= 0, max_secs >= 0 and factor >= 1"
        )
    uniform = rng.uniform if rng is not None else random.uniform

    def wait(failures: int) -> float:
        step = min(max_secs, initial_secs * factor ** (max(failures, 1) - 1))
        return step / 2 + uniform(0, step / 2)

    return wait


class WaitEqualJitter(tenacity.wait.wait_base):
    """A tenacity wait: `equal_jitter_backoff` of the attempt that just failed."""

    def __init__(
        self,
        *,
        initial_secs: float,
        max_secs: float,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self._backoff = equal_jitter_backoff(
            initial_secs=initial_secs, max_secs=max_secs, factor=factor, rng=rng
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self._backoff(retry_state.attempt_number)


class Again(Exception):
    """Raised by an attempt to be tried again after `wait_secs` (already logged and counted)."""

    def __init__(self, wait_secs: float) -> None:
        super().__init__(f"try again in {wait_secs:g} s")
        self.wait_secs = wait_secs


def _asked_wait(retry_state: tenacity.RetryCallState) -> float:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    return error.wait_secs if isinstance(error, Again) else 0.0


def sleep_unless_zero(sleep: Sleep) -> Sleep:
    """`sleep`, skipped for a wait of zero: a retry with nothing to wait yields no turn."""

    async def pause(secs: float) -> None:
        if secs > 0:
            await sleep(secs)

    return pause


def retry_when_asked(sleep: Sleep) -> AsyncRetrying:
    """Attempts until one neither returns nor raises `Again`; waits what `Again` asks, on `sleep`.

    Use as `async for attempt in retry_when_asked(sleep): with attempt: return await once()`.
    Any exception other than `Again` propagates unchanged: the attempt owns its stop conditions.
    """
    return AsyncRetrying(
        retry=tenacity.retry_if_exception_type(Again),
        wait=_asked_wait,
        stop=tenacity.stop_never,
        sleep=sleep_unless_zero(sleep),
        reraise=True,
    )
