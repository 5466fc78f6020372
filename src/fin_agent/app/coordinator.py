"""`Coordinator`: persists every event and the market's bars in batches, acked after commit.

It is the bus's `coordinator` batch group: each batch is written to the store in one transaction,
and only when `write` returns does the bus acknowledge its entries. While the store is down the
coordinator keeps retrying the same batch (with backoff) instead of failing it, so the backlog
stays pending in Redis, nothing is dead-lettered for an outage, and readiness says the store
is down.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from fin_agent.domain.errors import TransientError
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.event_bus import ALL_EVENTS, EventBus
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)
GROUP = "coordinator"


@dataclass(slots=True)
class CoordinatorStats:
    """What the coordinator has done, for readiness and metrics."""

    batches: int = 0
    events_written: int = 0
    duplicates_skipped: int = 0
    store_failures: int = 0
    store_up: bool = True
    last_error: str = ""
    last_write_monotonic: float = 0.0


class Coordinator:
    """Writes batches of events to the store; retries transient store failures in place."""

    def __init__(
        self,
        store: Store,
        *,
        max_backoff_secs: float = 5.0,
        give_up_after_secs: float | None = None,
    ) -> None:
        self._store = store
        self._max_backoff = max_backoff_secs
        self._give_up_after = give_up_after_secs
        self.stats = CoordinatorStats()

    def attach(self, bus: EventBus) -> None:
        """Subscribe to every event on the bus as the `coordinator` batch group."""
        bus.subscribe_batch(GROUP, [ALL_EVENTS], self.on_batch)

    async def on_batch(self, events: Sequence[DomainEvent]) -> None:
        """Write one batch; returns only once it is committed (the bus then acknowledges it)."""
        started = time.monotonic()
        backoff = 0.1
        while True:
            try:
                new = await self._store.write(events)
            except TransientError as exc:
                self.stats.store_failures += 1
                self.stats.last_error = str(exc)
                if self.stats.store_up:
                    log.error("store_down", error=str(exc), backlog=len(events))
                self.stats.store_up = False
                waited = time.monotonic() - started
                if self._give_up_after is not None and waited > self._give_up_after:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff) * random.uniform(0.8, 1.2)  # noqa: S311
                continue
            if not self.stats.store_up:
                log.info("store_back", after_secs=round(time.monotonic() - started, 1))
            self.stats.store_up = True
            self.stats.batches += 1
            self.stats.events_written += new
            self.stats.duplicates_skipped += len(events) - new
            self.stats.last_write_monotonic = time.monotonic()
            return
