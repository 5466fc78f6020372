"""The scan's inputs as a record in the store: written before the event that refers to it, and
read back wherever a stored day needs them (resume, audit replay, the dashboard's risk).

`keep_record` waits out a store that refuses the write, as the coordinator does for events, so a
`scan.snapshot_taken` is never published for a record the store does not hold. A day whose record
the store holds already with other inputs (the agent stopped after keeping it, before its events
were stored, and scanned again on newer data; or a second agent scanned it) takes the stored
inputs: the first record rules, as the first stored event does, so every event of the day agrees
with one record. A snapshot no record can hold (`DataError`) ends the scan loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import structlog

from fin_agent.domain.errors import DataError
from fin_agent.domain.events import DomainEvent, SnapshotTaken
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import Symbol
from fin_agent.ports.scan_records import ScanRecordConflict, ScanRecords

log = structlog.get_logger(__name__)


async def keep_record(
    records: ScanRecords, key: str, snapshot: UniverseSnapshot, *, max_backoff_secs: float = 5.0
) -> UniverseSnapshot:
    """Store `snapshot` as record `key`, retrying with backoff until the store takes it; return
    the inputs the record holds: `snapshot`, or the stored ones of an earlier scan of the day."""
    backoff = 0.1
    while True:
        try:
            size = await records.put(key, snapshot)
        except ScanRecordConflict:
            stored = await records.get(key)
            if stored is None or stored.day != snapshot.day:
                raise
            log.warning(
                "scan_record_reused", record=key,
                detail="this day's scan was recorded before with other inputs (a restart before "
                "its events were stored, or a second agent): the recorded inputs are used",
            )  # fmt: skip
            return stored
        except DataError:
            raise
        except Exception as exc:  # the store is down or refusing: nothing is published meanwhile
            log.error("scan_record_not_stored", record=key, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_secs)
            continue
        log.info(
            "scan_record_stored", record=key, symbols=size.symbols, daily_bars=size.daily_bars,
            new_bars=size.new_bars,
        )  # fmt: skip
        return snapshot


async def snapshot_of(
    records: ScanRecords, event: SnapshotTaken, symbols: Collection[Symbol] | None = None
) -> UniverseSnapshot:
    """The inputs `event` refers to (its own when it carries them: a v3 event), of `symbols`
    only when given; `DataError` naming the fix when the store lacks its record."""
    if event.snapshot is not None:
        return event.snapshot
    found = await records.get(event.record, symbols=symbols)
    if found is None:
        raise DataError(
            f"the scan record {event.record!r} of {event.trading_day} is missing from the store "
            f"(event {event.id} refers to it): the store was restored without its scan_records, "
            "scan_inputs and scan_bars tables; restore them from the same backup"
        )
    return found


async def with_records(records: ScanRecords, events: Sequence[DomainEvent]) -> list[DomainEvent]:
    """`events` with each `scan.snapshot_taken`'s inputs attached (a stored day to fold)."""
    out: list[DomainEvent] = []
    for event in events:
        if isinstance(event, SnapshotTaken) and event.snapshot is None:
            event = event.with_snapshot(await snapshot_of(records, event))
        out.append(event)
    return out
