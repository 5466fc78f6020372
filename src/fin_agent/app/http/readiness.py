"""`Readiness`: the `/readyz` answer, checked at most once per `ttl_secs` however many ask.

Probes come from Docker, Kubernetes, load balancers and people, sometimes hundreds at once. Each
answer within `ttl_secs` of the last check reuses it, and requests that arrive while a check runs
wait for that one: a flood of probes costs one PING of Redis and one of the store, never a
connection each. The checks run side by side, each bounded by `timeout_secs`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: returns None when fine, else the reason it is not."""

READY_TTL_SECS = 0.5
CHECK_TIMEOUT_SECS = 2.0
Results = dict[str, dict[str, Any]]


class Readiness:
    """The result of every check by name, `{"ok": bool, "reason"?: str}`, shared for a moment."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        ttl_secs: float = READY_TTL_SECS,
        timeout_secs: float = CHECK_TIMEOUT_SECS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = dict(checks)
        self._ttl_secs = ttl_secs
        self._timeout_secs = timeout_secs
        self._monotonic = monotonic
        self._last: tuple[float, Results] | None = None
        self._running: asyncio.Task[Results] | None = None
        self.runs = 0

    async def results(self) -> Results:
        """The latest results, checking again when they are older than `ttl_secs`."""
        if self._last is not None and self._monotonic() - self._last[0] < self._ttl_secs:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.create_task(self._check_all(), name="readiness")
        task = self._running
        # A caller that goes away (a probe's connection closed) must not cancel the others' check.
        return await asyncio.shield(task)

    async def _check_all(self) -> Results:
        try:
            self.runs += 1
            names = list(self._checks)
            reasons = await asyncio.gather(*(self._one(self._checks[n]) for n in names))
            results = {
                name: {"ok": reason is None, **({"reason": reason} if reason else {})}
                for name, reason in zip(names, reasons, strict=True)
            }
            self._last = (self._monotonic(), results)
            return results
        finally:
            self._running = None

    async def _one(self, check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), self._timeout_secs)
        except TimeoutError:
            return f"no answer in {self._timeout_secs:g} s"
        except Exception as exc:  # a broken check must say so, not break the probe
            return f"check failed: {exc!r}"
