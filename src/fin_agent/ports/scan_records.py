"""The `ScanRecords` port: each scan's inputs kept as a compact record in the store.

A scan sees, for every symbol of the universe, its last daily bars, its pre-market figures and its
headlines. Consecutive days share all but one daily bar per symbol, so a store keeps each daily bar
once (a new version only when a later scan sees other values for the same symbol and session) and,
per record, what each symbol's scan saw: the sessions of its bars, its pre-market and headlines.
`get` rebuilds exactly the `UniverseSnapshot` that was `put`; the `scan.snapshot_taken` event on
the bus carries only the record's key and counts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from fin_agent.domain.errors import DataError
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import Symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSize:
    """What a record holds: symbols, daily bars over all of them, and the bars it stored new
    (0 when the record was stored already, or every bar it saw was stored by earlier records)."""

    symbols: int
    daily_bars: int
    new_bars: int = 0


class ScanRecordConflict(DataError):
    """A different snapshot was put under a record key the store holds already."""


class ScanRecords(Protocol):
    """The scans' inputs by record key (the day's key: strategy and trading day)."""

    async def put(self, key: str, snapshot: UniverseSnapshot) -> RecordSize:
        """Keep `snapshot` as record `key`, in one transaction. Idempotent: the same snapshot
        again stores nothing; a different one under a stored key raises `ScanRecordConflict`
        (other refusals of a snapshot a record cannot hold are `DataError`s)."""
        ...

    async def get(
        self, key: str, *, symbols: Collection[Symbol] | None = None
    ) -> UniverseSnapshot | None:
        """The snapshot stored as `key` (only the `symbols` given, in their stored order, when
        given), or None when there is no such record."""
        ...
