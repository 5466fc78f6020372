"""`RateBudget`: the calls a vendor allows, shared by every caller of that vendor.

A budget holds several sliding windows at once (Finnhub's free plan: 60 calls a minute and 30 a
second); `acquire()` waits, in arrival order, until every window has room and never drops a call.
A 429 pauses the whole budget for the server's Retry-After (`pause_for`). `stats` feeds metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
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


class RateBudget:
    """Sliding windows of calls: `acquire()` before every call, `pause_for()` after every 429.

    Waiters are served first come, first served (an `asyncio.Lock` is fair). `margin_secs` keeps a
    call in its windows a little longer than the vendor would, for the jitter of network latency.
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
        # Only the newest max_calls stamps of a window can ever hold a caller back.
        self._stamps = tuple(deque[float](maxlen=w.max_calls) for w in self._windows)
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

    async def acquire(self) -> None:
        """Wait until every window has room (and no pause is on), then count one call."""
        self._waiting += 1
        try:
            async with self._lock:
                started = self._clock()
                waited = False
                while (delay := self._delay(self._clock())) > 0:
                    waited = True
                    await self._sleep(delay)
                now = self._clock()
                for stamps in self._stamps:
                    stamps.append(now)
                self._acquired += 1
                if waited:
                    self._waits += 1
                    self._wait_secs += now - started
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
        uses = tuple(
            WindowUse(window=w, used=sum(1 for t in stamps if t > now - w.per_secs))
            for w, stamps in zip(self._windows, self._stamps, strict=True)
        )
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

    def _delay(self, now: float) -> float:
        """Seconds until a call may go, 0 when it may go now."""
        delay = self._paused_until - now
        for window, stamps in zip(self._windows, self._stamps, strict=True):
            if len(stamps) == window.max_calls:
                delay = max(delay, stamps[0] + window.per_secs + self._margin - now)
        return delay
