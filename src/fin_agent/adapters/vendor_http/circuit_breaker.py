"""`CircuitBreaker`: stop calling an endpoint that keeps failing, and try it again later.

closed --N consecutive failures--> open --cooldown_secs--> half-open --trial succeeds--> closed
                                   ^------------------------------------trial fails---'
While open, `allow()` raises `AdapterError` at once, so a dead endpoint costs neither time nor
rate budget; half-open lets exactly one trial call through. `CircuitBreakers`: one per endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fin_agent.domain.errors import AdapterError, ConfigError


class BreakerState(StrEnum):
    """Where a breaker is: letting calls through, refusing them, or trying one."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """When a breaker opens (`failure_threshold` failures in a row) and for how long."""

    failure_threshold: int = 5
    cooldown_secs: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or not self.cooldown_secs > 0:
            raise ConfigError(
                f"{self} is not a breaker config: use failure_threshold >= 1, cooldown_secs > 0"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStats:
    """One breaker's state and counters, for metrics and the status banner."""

    name: str
    state: BreakerState
    consecutive_failures: int
    opened: int
    refused: int
    last_failure: str


class BreakerTicket:
    """One admitted call: report how it went exactly once (later reports are ignored)."""

    __slots__ = ("_breaker", "_done", "_epoch", "trial")

    def __init__(self, breaker: CircuitBreaker, epoch: int, *, trial: bool) -> None:
        self._breaker = breaker
        self._epoch = epoch
        self._done = False
        self.trial = trial

    def success(self) -> None:
        """The endpoint answered (any answer that is not a server failure)."""
        if not self._done:
            self._done = True
            self._breaker._settle(self, failed=False, reason="")

    def failure(self, reason: str) -> None:
        """The endpoint failed (5xx, timeout, connection error); `reason` is kept for the error."""
        if not self._done:
            self._done = True
            self._breaker._settle(self, failed=True, reason=reason)

    def release(self) -> None:
        """The call ended with no verdict (cancelled, rate limited): free the trial slot."""
        if not self._done:
            self._done = True
            self._breaker._release(self)


class CircuitBreaker:
    """A closed/open/half-open breaker for one endpoint, on a monotonic clock."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._config = config or BreakerConfig()
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False
        # Bumped on every state change: a verdict from a call admitted earlier is stale.
        self._epoch = 0
        self._opened = 0
        self._refused = 0
        self._last_failure = ""

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state})"

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cool-down has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._cooldown_left() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def stats(self) -> BreakerStats:
        """A snapshot of the state and counters."""
        return BreakerStats(
            name=self.name,
            state=self.state,
            consecutive_failures=self._failures,
            opened=self._opened,
            refused=self._refused,
            last_failure=self._last_failure,
        )

    def allow(self) -> BreakerTicket:
        """Admit one call and return its ticket; raise `AdapterError` while the breaker is open."""
        if self._state is BreakerState.CLOSED:
            return BreakerTicket(self, self._epoch, trial=False)
        if self._state is BreakerState.OPEN:
            left = self._cooldown_left()
            if left > 0:
                self._refused += 1
                raise AdapterError(
                    f"{self.name}: circuit open after {self._failures} consecutive failures "
                    f"(last: {self._last_failure}); calls are refused for {left:.1f} s more, then "
                    "one trial call goes through. Check the service's status page or the network"
                )
            self._move(BreakerState.HALF_OPEN)
        if self._trial_out:
            self._refused += 1
            raise AdapterError(
                f"{self.name}: circuit half-open and its one trial call is still running "
                f"(last failure: {self._last_failure}); retry once it has answered"
            )
        self._trial_out = True
        return BreakerTicket(self, self._epoch, trial=True)

    def _settle(self, ticket: BreakerTicket, *, failed: bool, reason: str) -> None:
        if ticket._epoch != self._epoch:
            return
        if failed:
            self._last_failure = reason
            self._failures += 1
            if ticket.trial or self._failures >= self._config.failure_threshold:
                self._open()
        elif ticket.trial or self._state is BreakerState.CLOSED:
            self._failures = 0
            if self._state is not BreakerState.CLOSED:
                self._move(BreakerState.CLOSED)

    def _release(self, ticket: BreakerTicket) -> None:
        if ticket.trial and ticket._epoch == self._epoch:
            self._trial_out = False

    def _open(self) -> None:
        self._opened += 1
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        self._state = state
        self._trial_out = False
        self._epoch += 1

    def _cooldown_left(self) -> float:
        return self._opened_at + self._config.cooldown_secs - self._clock()


class CircuitBreakers:
    """One `CircuitBreaker` per endpoint of a service, made on first use."""

    def __init__(
        self,
        service: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self._config = config or BreakerConfig()
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def for_endpoint(self, endpoint: str) -> CircuitBreaker:
        """The breaker of `endpoint` (a path such as `/quote`), named `<service> <endpoint>`."""
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            breaker = CircuitBreaker(f"{self.service} {endpoint}", self._config, clock=self._clock)
            self._breakers[endpoint] = breaker
        return breaker

    @property
    def stats(self) -> tuple[BreakerStats, ...]:
        """Every endpoint's breaker, sorted by name."""
        return tuple(self._breakers[k].stats for k in sorted(self._breakers))
