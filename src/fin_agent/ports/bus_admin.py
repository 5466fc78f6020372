"""What operators and metrics need of a durable bus beyond `EventBus`: its dead letters and its
counts. A Redis Streams bus has both; an in-memory bus has neither (the container hands None)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class DeadLetter(Protocol):
    """One dead-letter entry: why, from where, and the original fields as they were."""

    @property
    def id(self) -> str:
        """Its id in the dead-letter stream."""
        ...

    @property
    def stream(self) -> str:
        """The stream the original entry was on."""
        ...

    @property
    def entry_id(self) -> str:
        """The original entry's id."""
        ...

    @property
    def group(self) -> str:
        """The consumer group that gave up on it."""
        ...

    @property
    def reason(self) -> str:
        """Why it was dead-lettered (a code)."""
        ...

    @property
    def detail(self) -> str:
        """The error, in words."""
        ...

    @property
    def deliveries(self) -> int:
        """How many times it was delivered."""
        ...

    @property
    def fields(self) -> Mapping[str, str]:
        """The original entry's fields."""
        ...

    @property
    def event_type(self) -> str:
        """The original entry's event type, if it had one."""
        ...


class DeadLetters(Protocol):
    """The dead-letter stream of one bus: list, show, replay, purge."""

    async def count(self) -> int:
        """How many entries wait in the dead-letter stream."""
        ...

    async def oldest(self, limit: int = 100) -> Sequence[DeadLetter]:
        """The oldest `limit` dead letters."""
        ...

    async def get(self, dlq_id: str) -> DeadLetter:
        """One dead letter by its id (`DataError` naming it when there is none)."""
        ...

    async def replay(self, dlq_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Put entries back on their original streams; (dead-letter id, new entry id) pairs."""
        ...

    async def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        ...


class BusCounts(Protocol):
    """What the bus did since it started (counters only grow)."""

    @property
    def published(self) -> int:
        """Events published."""
        ...

    @property
    def duplicates(self) -> int:
        """Deliveries skipped as already handled."""
        ...

    @property
    def dead_lettered(self) -> int:
        """Entries moved to the dead letters."""
        ...

    @property
    def backpressure_waits(self) -> int:
        """Times a publisher waited for the consumers to catch up."""
        ...

    @property
    def reconnects(self) -> int:
        """Reconnections to the bus's server."""
        ...

    @property
    def claimed(self) -> int:
        """Entries claimed from a consumer that stopped."""
        ...


class BusStats(Protocol):
    """A durable bus's figures, read at each metrics scrape."""

    @property
    def counters(self) -> BusCounts:
        """What the bus has done."""
        ...

    @property
    def connected(self) -> bool:
        """Whether the last call to the bus's server succeeded."""
        ...

    async def group_stats(self) -> list[tuple[str, str, int, int]]:
        """(group, stream, lag, pending) of every group on the bus's streams."""
        ...

    async def dead_letter_count(self) -> int:
        """Entries waiting in the dead-letter stream."""
        ...
