"""`Coordinator`: persists every event and the market's bars in batches, acked after commit.

It is the bus's `coordinator` batch group: each batch is written to the store in one transaction,
and only when `write` returns does the bus acknowledge its entries. Whatever the store answers
(down, refusing the user's writes, out of disk, missing its schema), the coordinator keeps
retrying the same batch with backoff instead of failing it: the backlog stays pending in Redis,
nothing is acknowledged or dead-lettered for an unavailable store, readiness names the store and
the cause, and an `error.raised` says what to fix. Past `outage_tolerance_secs` the agent stops
opening positions (`entries_blocked`) until the store is back. A value the store refuses for one
event (a `DataError`) is the one case that is not waited out: that event alone is dead-lettered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

import structlog

from fin_agent.domain.errors import ConfigError, DataError, TransientError
from fin_agent.domain.events import DomainEvent, ErrorRaised, Severity
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import ALL_EVENTS, EventBus, RejectedEvents
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)
GROUP = "coordinator"
OUTAGE_TOLERANCE_SECS = 900.0


@dataclass(slots=True)
class CoordinatorStats:
    """What the coordinator has done, for readiness and metrics."""

    batches: int = 0
    events_written: int = 0
    duplicates_skipped: int = 0
    store_failures: int = 0
    outages: int = 0
    """Times the store went down (one outage however often its writes are retried)."""
    rejected: int = 0
    store_up: bool = True
    last_error: str = ""
    last_write_monotonic: float = 0.0
    down_since_monotonic: float | None = None


class Coordinator:
    """Writes batches of events to the store; waits out every store failure in place."""

    def __init__(
        self,
        store: Store,
        *,
        max_backoff_secs: float = 5.0,
        outage_tolerance_secs: float = OUTAGE_TOLERANCE_SECS,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._max_backoff = max_backoff_secs
        self._tolerance = outage_tolerance_secs
        self._clock = clock
        self._bus: EventBus | None = None
        self.stats = CoordinatorStats()

    def attach(self, bus: EventBus) -> None:
        """Subscribe to every event on the bus as the `coordinator` batch group."""
        self._bus = bus
        bus.subscribe_batch(GROUP, [ALL_EVENTS], self.on_batch)

    def entries_blocked(self) -> str | None:
        """Why new entries must wait (the store down past the tolerance), or None."""
        since = self.stats.down_since_monotonic
        if since is None or time.monotonic() - since < self._tolerance:
            return None
        return (
            f"the store has refused writes for {time.monotonic() - since:.0f} s, more than "
            f"store.outage_tolerance_secs ({self._tolerance:.0f}): no new entries until it is "
            f"back ({self.stats.last_error})"
        )

    async def on_batch(self, events: Sequence[DomainEvent]) -> None:
        """Write one batch; returns only once it is committed (the bus then acknowledges it)."""
        backoff = 0.1
        while True:
            try:
                new = await self._store.write(events)
            except DataError as exc:
                await self._isolate(events, exc)
                return
            except Exception as exc:  # any other failure is waited out: nothing is acked
                await self._failed(exc, len(events))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff) * random.uniform(0.8, 1.2)  # noqa: S311
                continue
            await self._written(len(events), new)
            return

    async def _isolate(self, events: Sequence[DomainEvent], first: DataError) -> None:
        """One of the events has a value the store refuses: write them one by one, and hand
        the refused ones back to the bus to dead-letter."""
        refused: list[DomainEvent] = []
        reason = str(first)
        for event in events:
            while True:
                try:
                    new = await self._store.write([event])
                except DataError as exc:
                    refused.append(event)
                    reason = str(exc)
                    break
                except Exception as exc:
                    await self._failed(exc, len(events))
                    await asyncio.sleep(self._max_backoff)
                    continue
                await self._written(1, new)
                break
        if refused:
            self.stats.rejected += len(refused)
            log.error("store_refused_events", count=len(refused), error=reason)
            raise RejectedEvents(refused, reason)

    async def _failed(self, exc: Exception, backlog: int) -> None:
        self.stats.store_failures += 1
        self.stats.last_error = describe(exc)
        if not self.stats.store_up:
            return
        self.stats.store_up = False
        self.stats.outages += 1
        self.stats.down_since_monotonic = time.monotonic()
        log.error("store_down", error=self.stats.last_error, backlog=backlog)
        await self._say(
            "store.down",
            f"the store refuses writes: {self.stats.last_error}. Nothing is lost: the events wait "
            "in Redis and are written when it is back",
            Severity.CRITICAL,
        )

    async def _written(self, count: int, new: int) -> None:
        if not self.stats.store_up:
            since = self.stats.down_since_monotonic or time.monotonic()
            down_secs = round(time.monotonic() - since, 1)
            log.info("store_back", after_secs=down_secs)
            self.stats.store_up = True
            self.stats.down_since_monotonic = None
            await self._say(
                "store.back",
                f"the store takes writes again after {down_secs} s; the backlog is being written",
                Severity.WARNING,
            )
        self.stats.batches += 1
        self.stats.events_written += new
        self.stats.duplicates_skipped += count - new
        self.stats.last_write_monotonic = time.monotonic()

    async def _say(self, code: str, message: str, severity: Severity) -> None:
        """An `error.raised` on the bus (it reaches the store too, once the store is back)."""
        if self._bus is None or self._clock is None:
            return
        now = self._clock.now().astimezone(UTC)
        try:
            await self._bus.publish(
                [
                    ErrorRaised(
                        id=ErrorRaised.id_for(f"{code}:{now.isoformat()}"),
                        occurred_at=now,
                        trading_day=now.date(),
                        source="coordinator",
                        code=code,
                        message=message,
                        severity=severity,
                    )
                ]
            )
        except TransientError as exc:  # the bus is down too: the log has said it
            log.warning("store_alert_not_published", code=code, error=str(exc))


def describe(exc: Exception) -> str:
    """A store failure as its cause and its fix, whatever kind of error it is."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "no space left" in lowered or "disk full" in lowered or "diskfull" in lowered:
        return (
            f"{text}: the database's disk is full: free space on the volume holding its data "
            "(or grow it); writing resumes by itself"
        )
    if isinstance(exc, ConfigError | TransientError | DataError):
        return text  # the adapters' messages already name the fix
    if isinstance(exc, PermissionError):
        return f"{text}: grant the store's user write access"
    return f"{type(exc).__name__}: {text}: see the store's logs; writing is retried"
