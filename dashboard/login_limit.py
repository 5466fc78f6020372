"""`LoginLimiter`: at most N wrong passwords per client a minute, so the sign-in cannot be guessed
by brute force; one limiter serves every session of the dashboard's process."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECS = 60.0


class LoginLimiter:
    """Counts each client's wrong passwords over the last minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def wait_secs(self, client: str) -> float:
        """Seconds `client` must wait before trying again (0: it may try now)."""
        now = self._clock()
        failures = self._failures.get(client)
        if failures is None:
            return 0.0
        while failures and now - failures[0] >= WINDOW_SECS:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return 0.0
        if len(failures) < self._per_minute:
            return 0.0
        return WINDOW_SECS - (now - failures[0])

    def failed(self, client: str) -> None:
        """`client` gave a wrong password."""
        self._failures.setdefault(client, deque()).append(self._clock())

    def succeeded(self, client: str) -> None:
        """`client` signed in: its count starts again."""
        self._failures.pop(client, None)
