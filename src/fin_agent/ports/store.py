"""The `Store` port: the durable record of every event of every trading day."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Protocol

from fin_agent.domain.events import DomainEvent


class Store(Protocol):
    """Keeps events; writing the same event id twice keeps one copy."""

    async def append(self, events: Sequence[DomainEvent]) -> None:
        """Persist events, ignoring any whose id is already stored."""
        ...

    async def events(
        self, *, day: date | None = None, types: Collection[str] | None = None
    ) -> Sequence[DomainEvent]:
        """Return stored events, in the order they were appended, filtered by day and type."""
        ...
