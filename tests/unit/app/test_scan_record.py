"""The scan's record before its event: a day publishes `scan.snapshot_taken` only once the store
holds the record it refers to, goes on from the recorded inputs when its day was recorded before
(a restart), refuses a record of another day under its key, and a stored v3 event (its snapshot
inline) needs no record."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import date, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import structlog

from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.memory import FixedCalendar, FixedClock, InMemoryEventBus
from fin_agent.adapters.simulator.market import SimulatedMarket
from fin_agent.adapters.storage.memory_scan_records import InMemoryScanRecords
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.scan_record import snapshot_of, with_records
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.errors import AdapterError, DataError
from fin_agent.domain.events import ScanCompleted, SnapshotTaken
from fin_agent.domain.gap_scanner import GapScanner, UniverseSnapshot
from fin_agent.domain.rules import Strategy
from fin_agent.domain.values import Symbol
from fin_agent.ports.scan_records import RecordSize, ScanRecords

pytestmark = pytest.mark.asyncio

NY = ZoneInfo("America/New_York")
CALENDAR = FixedCalendar()
MARKET = SimulatedMarket(seed=7, calendar=CALENDAR, universe_size=20)
SESSION = CALENDAR.session(date(2025, 3, 3))
KEY = "gap_and_go:2025-03-03"


def new_day(bus: InMemoryEventBus, records: ScanRecords) -> TradingDay:
    assert SESSION is not None
    strategy = Strategy()
    ports = DayPorts(
        clock=FixedClock(SESSION.open),
        market=MARKET,
        news=MARKET,
        orders=PaperBroker(strategy.costs),
        bus=bus,
        records=records,
    )
    return TradingDay(
        session=SESSION,
        times=DayTimes.of(SESSION, strategy, NY, time(9, 0)),
        strategy=strategy,
        start_equity=Decimal(100_000),
        ports=ports,
    )


class RefusingRecords:
    """Scan records whose store refuses the first `refusals` puts, noting what the bus held at
    each attempt."""

    def __init__(self, refusals: int, bus: InMemoryEventBus) -> None:
        self.inner = InMemoryScanRecords()
        self.refusals = refusals
        self.bus = bus
        self.published_at_put: list[int] = []

    async def put(self, key: str, snapshot: UniverseSnapshot) -> RecordSize:
        self.published_at_put.append(len(self.bus.published))
        if self.refusals:
            self.refusals -= 1
            raise AdapterError("the store refuses writes (test)")
        return await self.inner.put(key, snapshot)

    async def get(
        self, key: str, *, symbols: Collection[Symbol] | None = None
    ) -> UniverseSnapshot | None:
        return await self.inner.get(key, symbols=symbols)


async def test_the_event_is_published_only_once_the_store_holds_its_record() -> None:
    bus = InMemoryEventBus()
    records = RefusingRecords(2, bus)

    await new_day(bus, records).scan()

    [taken] = [e for e in bus.published if isinstance(e, SnapshotTaken)]
    assert records.published_at_put == [0, 0, 0]  # nothing went out while the store refused
    assert (taken.record, taken.snapshot) == (KEY, None)
    stored = await records.get(KEY)
    assert stored is not None
    assert (taken.symbols, taken.daily_bars) == (
        len(stored.symbols),
        sum(len(s.daily_bars) for s in stored.symbols),
    )


async def test_a_scan_again_stores_nothing_and_a_day_recorded_before_goes_on_from_its_record() -> (
    None
):
    records = InMemoryScanRecords()
    await new_day(InMemoryEventBus(), records).scan()
    again = InMemoryEventBus()
    await new_day(again, records).scan()  # a redelivered or repeated scan: the same record
    stored = await records.get(KEY)
    assert stored is not None
    # an earlier run kept other inputs (fewer symbols, taken earlier), then stopped before its
    # events were stored; this run collects anew and must go on from what was recorded
    earlier = replace(
        stored, symbols=stored.symbols[:12], taken_at=stored.taken_at - timedelta(seconds=1)
    )
    other = InMemoryScanRecords()
    await other.put(KEY, earlier)
    restarted = InMemoryEventBus()

    with structlog.testing.capture_logs() as logs:
        result = await new_day(restarted, other).scan()

    assert await other.get(KEY) == earlier  # the record is never rewritten
    assert result == GapScanner(Strategy().scan).scan(earlier)
    [completed] = [e for e in restarted.published if isinstance(e, ScanCompleted)]
    assert completed.result == result
    [taken] = [e for e in restarted.published if isinstance(e, SnapshotTaken)]
    assert (taken.record, taken.symbols) == (KEY, 12)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["scan_record_reused"]
    assert any(isinstance(e, SnapshotTaken) for e in again.published)


async def test_a_record_of_another_day_under_the_key_is_refused_publishing_nothing() -> None:
    records = InMemoryScanRecords()
    await new_day(InMemoryEventBus(), records).scan()
    stored = await records.get(KEY)
    assert stored is not None
    other = InMemoryScanRecords()
    await other.put(KEY, replace(stored, day=stored.day - timedelta(days=1)))
    refused = InMemoryEventBus()

    with pytest.raises(DataError, match="is stored already with another day"):
        await new_day(refused, other).scan()
    assert refused.published == []


async def test_a_v3_event_keeps_its_snapshot_and_a_missing_record_is_refused() -> None:
    bus, records = InMemoryEventBus(), InMemoryScanRecords()
    await new_day(bus, records).scan()
    [taken] = [e for e in bus.published if isinstance(e, SnapshotTaken)]
    inline = replace(taken, record="", snapshot=await snapshot_of(records, taken))  # a v3 event

    assert await with_records(InMemoryScanRecords(), [inline]) == [inline]
    with pytest.raises(DataError, match=r"is missing from the store .* restore them"):
        await snapshot_of(InMemoryScanRecords(), taken)
