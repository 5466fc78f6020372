"""`RateBudget`: the calls a vendor allows, shared by every caller of that vendor.

A budget holds several sliding windows at once (Finnhub's free plan: 60 calls a minute and 30 a
second); `call()` waits, in arrival order, until every window has room and never drops a call.
A call stays in its windows from the moment it goes until its answer is back, and a window counts
it from that answer: the server received it somewhere in between, so however long a call waits in
a connection pool or on the wire, no window the server counts by arrival can overflow. A 429
pauses the whole budget for the server's Retry-After (`pause_for`). `stats` feeds metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fin_agent.domain.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class RateWindow:
    """At most `max_calls` calls in any `per_secs` long stretch of time."""

    max_calls: int
    per_secs: float

    @property
    def label(self) -> str:
        """A short name for metrics and logs, such as `60/60s`."""
        return f"{self.max_calls}/{self.per_secs:g}s"

    @property
    def calls_per_minute(self) -> float:
        """The sustained rate this window allows."""
        return self.max_calls * 60.0 / self.per_secs


FINNHUB_FREE_WINDOWS: tuple[RateWindow, ...] = (
    RateWindow(max_calls=60, per_secs=60.0),
    RateWindow(max_calls=30, per_secs=1.0),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUse:
    """How full one window is right now."""

    window: RateWindow
    used: int

    @property
    def ratio(self) -> float:
        """Calls in the window over the calls it allows, 0.0 to 1.0."""
        return self.used / self.window.max_calls


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetStats:
    """What a budget did so far, for metrics (`data_budget_*`)."""

    name: str
    windows: tuple[WindowUse, ...]
    acquired: int
    waits: int
    wait_secs: float
    rate_limited: int
    paused_secs_left: float
    waiting: int


class _Stamp:
    """One call: in flight until `at` is set to the moment its answer came back."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: float | None = None


class RateBudget:
    """Sliding windows of calls: `async with call():` around every call, `pause_for()` after 429s.

    Waiters are served first come, first served (an `asyncio.Lock` is fair). `margin_secs` keeps a
    call in its windows that much longer still, for a server whose clock runs ahead of ours.
    """

    def __init__(
        self,
        windows: Sequence[RateWindow] = FINNHUB_FREE_WINDOWS,
        *,
        name: str = "finnhub",
        margin_secs: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not windows:
            raise ConfigError(f"rate budget {name!r} has no window: give at least one")
        for window in windows:
            if window.max_calls < 1 or not window.per_secs > 0:
                raise ConfigError(
                    f"rate budget {name!r}: {window} is not a window; "
                    "use max_calls >= 1 and per_secs > 0"
                )
        if not margin_secs >= 0:
            raise ConfigError(f"rate budget {name!r}: margin_secs must be >= 0, got {margin_secs}")
        self.name = name
        self._windows = tuple(windows)
        self._margin = margin_secs
        self._clock = clock
        self._sleep = sleep
        # Every call still in flight or answered within the longest window (plus the margin).
        self._stamps = deque[_Stamp]()
        self._longest_secs = max(w.per_secs for w in self._windows) + margin_secs
        self._answered = asyncio.Event()
        self._lock = asyncio.Lock()
        self._paused_until = clock()
        self._acquired = 0
        self._waits = 0
        self._wait_secs = 0.0
        self._rate_limited = 0
        self._waiting = 0

    def __repr__(self) -> str:
        windows = ", ".join(w.label for w in self._windows)
        return f"RateBudget(name={self.name!r}, windows=[{windows}])"

    @property
    def windows(self) -> tuple[RateWindow, ...]:
        """The windows this budget enforces."""
        return self._windows

    @property
    def calls_per_minute(self) -> float:
        """The sustained rate the tightest window allows: what a long collection can count on."""
        return min(w.calls_per_minute for w in self._windows)

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """Wait until every window has room (and no pause is on), then hold one call's place in
        them while the block runs: the call counts from when the block ends, answered or not."""
        stamp = await self._take()
        try:
            yield
        finally:
            stamp.at = self._clock()
            self._answered.set()

    async def acquire(self) -> None:
        """Wait for room, then count one call made at once: for a caller that cannot say when
        its call was answered (`call()` is exact)."""
        stamp = await self._take()
        stamp.at = self._clock()
        self._answered.set()

    async def _take(self) -> _Stamp:
        self._waiting += 1
        try:
            async with self._lock:
                started = self._clock()
                waited = False
                while True:
                    self._answered.clear()
                    delay = self._delay(self._clock())
                    if delay is None:  # every window is full of calls still in flight
                        waited = True
                        await self._answered.wait()
                    elif delay > 0:
                        waited = True
                        await self._sleep(delay)
                    else:
                        break
                stamp = _Stamp()
                self._stamps.append(stamp)
                self._acquired += 1
                if waited:
                    self._waits += 1
                    self._wait_secs += self._clock() - started
                return stamp
        finally:
            self._waiting -= 1

    def pause_for(self, seconds: float) -> None:
        """A server answered 429: let no call through for `seconds` (its Retry-After) from now."""
        self._rate_limited += 1
        until = self._clock() + max(0.0, seconds)
        self._paused_until = max(self._paused_until, until)

    @property
    def stats(self) -> BudgetStats:
        """A snapshot of the counters and of how full each window is now."""
        now = self._clock()
        uses = tuple(WindowUse(window=w, used=len(self._counted(w, now))) for w in self._windows)
        return BudgetStats(
            name=self.name,
            windows=uses,
            acquired=self._acquired,
            waits=self._waits,
            wait_secs=self._wait_secs,
            rate_limited=self._rate_limited,
            paused_secs_left=max(0.0, self._paused_until - now),
            waiting=self._waiting,
        )

    def _counted(self, window: RateWindow, now: float) -> list[_Stamp]:
        """The calls `window` still holds at `now`: in flight, or answered within it."""
        since = now - window.per_secs - self._margin
        return [stamp for stamp in self._stamps if stamp.at is None or stamp.at > since]

    def _delay(self, now: float) -> float | None:
        """Seconds until a call may go (0: now), or None until a call in flight is answered."""
        while self._stamps and (at := self._stamps[0].at) is not None:
            if at > now - self._longest_secs:
                break
            self._stamps.popleft()
        delay = self._paused_until - now
        for window in self._windows:
            held = self._counted(window, now)
            if len(held) < window.max_calls:
                continue
            answered = sorted(s.at for s in held if s.at is not None)
            # The window frees a place when enough answered calls have aged out of it.
            excess = len(held) - window.max_calls
            if excess >= len(answered):
                return None
            delay = max(delay, answered[excess] + window.per_secs + self._margin - now)
        return delay
