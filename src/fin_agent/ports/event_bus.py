"""The `EventBus` port: producers publish events; each consumer group handles every event once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Protocol

from fin_agent.domain.events import DomainEvent

Handler = Callable[[DomainEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[DomainEvent]], Awaitable[None]]
Observer = Callable[[str, str, float, bool], None]
"""Told of every handling: (group, event type, seconds, succeeded); for metrics."""
ALL_EVENTS = "*"


class RejectedEvents(Exception):
    """Raised by a batch handler that committed its batch except `events`, which it can never
    handle (a store refusing their values): the bus dead-letters those and acks the rest."""

    def __init__(self, events: Sequence[DomainEvent], reason: str) -> None:
        super().__init__(reason)
        self.events = tuple(events)
        self.reason = reason


class EventBus(Protocol):
    """Carries events from producers to consumer groups.

    Delivery is at least once; a group sees the events of one stream in publish order, and an
    event id it has already handled is not handed to it again.
    """

    @property
    def started_empty(self) -> bool:
        """True when the bus keeps entries across restarts and started without an earlier run's
        (a new Redis, or one that lost its data): what that run left unacknowledged is gone.
        An in-process bus keeps nothing across restarts and says False."""
        ...

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish events in order; returns once the bus accepted them (back-pressure may wait)."""
        ...

    def subscribe(self, group: str, event_types: Collection[str], handler: Handler) -> None:
        """Have group `group` call `handler` for every event of `event_types` ("*": all)."""
        ...

    def subscribe_batch(
        self, group: str, event_types: Collection[str], handler: BatchHandler
    ) -> None:
        """Have group `group` call `handler` with batches; entries are acked after it returns.

        A batch is what one read brings (full batches under load, small ones when idle); if the
        handler raises, none of the batch is acknowledged and all of it is delivered again.
        """
        ...

    async def start(self) -> None:
        """Connect and start delivering to the subscribed groups."""
        ...

    async def drain(
        self, timeout_secs: float | None = None, groups: Collection[str] | None = None
    ) -> None:
        """Wait until every group (or those in `groups`) has handled every event published so
        far; with `timeout_secs`, raise `DeadlineError` past it, else wait as long as it takes."""
        ...

    async def trim(self, retain_secs: float = 0.0) -> Mapping[str, int]:
        """Drop entries every group has handled and older than `retain_secs`; count per stream."""
        ...

    async def ping(self) -> None:
        """Raise `AdapterError` when the bus cannot carry events right now (readiness)."""
        ...

    async def stop(self) -> None:
        """Stop delivering, let in-flight handlers finish, and disconnect."""
        ...
