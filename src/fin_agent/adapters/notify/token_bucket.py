"""`TokenBucket`: the rate limit of outgoing requests, with a pause a server's 429 can impose."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from fin_agent.domain.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """At most `max_requests` requests in any `per_secs` window (bursts up to `max_requests`)."""

    max_requests: int
    per_secs: float


DISCORD_RATE_LIMIT = RateLimit(max_requests=5, per_secs=2.0)
WEBHOOK_RATE_LIMIT = RateLimit(max_requests=10, per_secs=1.0)


class TokenBucket:
    """The rate limit: a bucket of `max_requests` tokens refilled evenly over `per_secs`.

    A 429 empties it and blocks it for the server's `retry_after`, so every later request waits.
    """

    def __init__(self, rate: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate.max_requests < 1 or rate.per_secs <= 0:
            raise ConfigError(f"{rate} is not a rate limit: use max_requests >= 1, per_secs > 0")
        self._capacity = float(rate.max_requests)
        self._per_token_secs = rate.per_secs / rate.max_requests
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()
        self._blocked_until = self._updated

    def take(self) -> float:
        """Take a token and return 0, or return how many seconds until one is available."""
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        elapsed = max(0.0, now - max(self._updated, self._blocked_until))
        self._tokens = min(self._capacity, self._tokens + elapsed / self._per_token_secs)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) * self._per_token_secs

    def block_for(self, secs: float) -> None:
        """Refuse tokens for `secs` from now and start empty afterwards (the server said wait)."""
        now = self._clock()
        self._tokens = 0.0
        self._updated = now
        self._blocked_until = max(self._blocked_until, now + secs)

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        wait = self.take()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.take()
