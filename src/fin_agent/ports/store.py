"""The `Store` port: the durable, queryable record of every trading day.

A store keeps the raw event log and projects each event into plain tables (scans, plans, orders,
fills, trades, daily reports, 1-minute bars, errors, risk states). Writes are idempotent: an event
whose id is already stored adds nothing, so redelivery never duplicates a row. It also holds the
daily bars fetched for ATR and average volume (`daily_bar_cache`), which are no event's projection.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from fin_agent.domain.events import DomainEvent
from fin_agent.ports.daily_bar_cache import DailyBarCache

Row = Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreInfo:
    """What a store is and what it can do, as it says at start."""

    backend: str
    schema_version: int
    features: tuple[str, ...] = ()
    detail: str = ""


class Store(Protocol):
    """Keeps events and their projections; every write is one transaction."""

    async def migrate(self) -> StoreInfo:
        """Bring the schema to the latest version (idempotent) and say what the store is."""
        ...

    async def write(self, events: Sequence[DomainEvent]) -> int:
        """Store events and their projections in one transaction; return how many were new."""
        ...

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        """Stored events in time order (then id), filtered by trading day and type."""
        ...

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        """Rows of a projection table (`adapters.storage.rows.TABLES`), oldest first."""
        ...

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        ...

    def daily_bar_cache(self) -> DailyBarCache:
        """The daily bars this store keeps, so each day fetches only what is new (after `migrate`).

        Bound to the store: it shares the store's connection (or pool); not for use after `close`.
        """
        ...

    async def ping(self) -> None:
        """Raise `AdapterError` when the store cannot be used right now (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
