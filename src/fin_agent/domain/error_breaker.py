"""`ErrorBreaker`: counts order rejections and store failures in a sliding window of minutes.

The risk engine halts the day when the count reaches `risk.error_breaker.count` within
`risk.error_breaker.window_mins`: errors that come in a burst mean something is wrong that a person
should look at before the agent opens anything more.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta


class ErrorBreaker:
    """The errors seen in the last `window`, each with the time it was seen."""

    def __init__(self, *, count: int, window: timedelta) -> None:
        self._count = count
        self._window = window
        self._seen: deque[datetime] = deque()

    def reconfigure(self, *, count: int, window: timedelta) -> None:
        """New limits from a config change; errors already seen stay counted."""
        self._count = count
        self._window = window

    @property
    def enabled(self) -> bool:
        """Whether the breaker can trip (a count of 0 turns it off)."""
        return self._count > 0

    def record(self, at: datetime, count: int = 1) -> None:
        """`count` errors were seen at `at`."""
        self._seen.extend([at] * count)

    def recent(self, at: datetime) -> int:
        """How many errors were seen in the window that ends at `at` (older ones are dropped)."""
        while self._seen and at - self._seen[0] >= self._window:
            self._seen.popleft()
        return sum(1 for seen in self._seen if seen <= at)

    def tripped(self, at: datetime) -> bool:
        """Whether the errors of the window ending at `at` reach the count."""
        return self.enabled and self.recent(at) >= self._count

    def reset(self) -> None:
        """Forget every error (after an operator resumes a day the breaker halted)."""
        self._seen.clear()

    def describe(self, at: datetime) -> str:
        """The trip in words, naming the keys that set it."""
        return (
            f"{self.recent(at)} order rejections or store failures within "
            f"{self._window.total_seconds() / 60:g} minutes reached risk.error_breaker.count "
            f"{self._count} (window_mins {self._window.total_seconds() / 60:g})"
        )
