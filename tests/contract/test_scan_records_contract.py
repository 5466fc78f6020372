"""The `ScanRecords` contract: one suite run against the in-memory, DuckDB and PostgreSQL stores.

`records` is each store's `scan_records()` (the parametrized `store` of tests/contract/conftest.py),
migrated and empty; `durable` is the SQL stores' databases, for what only a database shows: records
read back by another store object (which knows none of the bars), and a database at version 3.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from fin_agent.adapters.memory import FixedCalendar
from fin_agent.domain.errors import DataError
from fin_agent.domain.gap_scanner import SymbolSnapshot, UniverseSnapshot
from fin_agent.domain.values import DailyBar, Headline, Premarket, Symbol, symbol
from fin_agent.ports.scan_records import RecordSize, ScanRecords
from fin_agent.ports.store import Store

if TYPE_CHECKING:
    from contract.conftest import Durable

pytestmark = pytest.mark.asyncio

AAPL, MSFT, NEWCO = symbol("AAPL"), symbol("MSFT"), symbol("NEWCO")
CALENDAR = FixedCalendar()
SESSIONS = [s.day for s in CALENDAR.sessions(date(2025, 1, 2), date(2025, 3, 31))]
WINDOW = 43


def bar(sym: Symbol, day: date, i: int) -> DailyBar:
    """A bar whose prices keep their trailing zeros (`12.10`): a record keeps them too."""
    close = Decimal(100 + i) + Decimal("0.10")
    return DailyBar(
        symbol=sym, session=day, open=close, high=close + 1, low=close - 1, close=close,
        volume=1_000_000 + i,
    )  # fmt: skip


HISTORY = {s: [bar(s, d, i) for i, d in enumerate(SESSIONS)] for s in (AAPL, MSFT)}


def snapshot(
    day_index: int, history: dict[Symbol, list[DailyBar]] | None = None
) -> UniverseSnapshot:
    """The scan of SESSIONS[day_index]: each symbol's last WINDOW bars before it, a pre-market,
    a headline for AAPL, and NEWCO with no bars and no pre-market."""
    history = history or HISTORY
    day = SESSIONS[day_index]
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=13)
    items = [
        SymbolSnapshot(
            symbol=s,
            daily_bars=tuple(b for b in history[s] if b.session < day)[-WINDOW:],
            premarket=Premarket(
                symbol=s,
                last=Decimal("105.50"),
                volume=None if s == MSFT else 60_000,
                as_of=at,
                quoted_prev_close=Decimal("104.10") if s == AAPL else None,
            ),
            headlines=(
                Headline(
                    symbol=s,
                    title='Beats, "raises" guidance',
                    source="wire",
                    published_at=at - timedelta(hours=1, microseconds=7),
                    url="https://x/1",
                ),
            )
            if s == AAPL
            else (),
        )
        for s in (MSFT, AAPL)  # not sorted: the record keeps the snapshot's order
    ]
    items.append(SymbolSnapshot(symbol=NEWCO, daily_bars=(), premarket=None))
    return UniverseSnapshot(
        day=day, taken_at=at, symbols=tuple(items), prev_session=SESSIONS[day_index - 1]
    )


@pytest.fixture
def records(store: Store) -> ScanRecords:
    """Each store's scan records, migrated and empty."""
    return store.scan_records()


async def test_a_record_rebuilds_exactly_the_snapshot_put(records: ScanRecords) -> None:
    given = snapshot(50)

    size = await records.put("gap:2025-03-14", given)
    found = await records.get("gap:2025-03-14")

    assert found == given
    assert found is not None
    assert str(found.symbols[1].daily_bars[-1].close) == str(given.symbols[1].daily_bars[-1].close)
    assert size == RecordSize(symbols=3, daily_bars=2 * WINDOW, new_bars=2 * WINDOW)


async def test_an_unknown_record_is_none(records: ScanRecords) -> None:
    assert await records.get("gap:1999-01-04") is None


async def test_consecutive_days_store_each_daily_bar_once(records: ScanRecords) -> None:
    await records.put("gap:d50", snapshot(50))

    size = await records.put("gap:d51", snapshot(51))

    assert size.new_bars == 2  # one new bar per symbol; the other 42 are stored already
    assert await records.get("gap:d50") == snapshot(50)
    assert await records.get("gap:d51") == snapshot(51)


async def test_a_revised_bar_is_a_new_version_and_each_day_reads_its_own(
    records: ScanRecords,
) -> None:
    revised_at = SESSIONS[45]
    split = {
        s: [replace(b, close=b.close / 2, low=b.low / 2) if b.session == revised_at else b
            for b in bars]
        for s, bars in HISTORY.items()
    }  # fmt: skip
    await records.put("gap:d50", snapshot(50))
    size = await records.put("gap:d51", snapshot(51, split))
    await records.put("gap:d52", snapshot(52))  # back to the first values: a third version

    assert size.new_bars == 4  # each symbol's revised bar and its new one
    assert await records.get("gap:d50") == snapshot(50)
    assert await records.get("gap:d51") == snapshot(51, split)
    assert await records.get("gap:d52") == snapshot(52)


async def test_putting_the_same_record_again_stores_nothing(records: ScanRecords) -> None:
    await records.put("gap:d50", snapshot(50))
    await records.put("gap:d51", snapshot(51))

    again = await records.put("gap:d50", snapshot(50))

    assert again.new_bars == 0
    assert await records.get("gap:d50") == snapshot(50)
    assert await records.get("gap:d51") == snapshot(51)


async def test_other_inputs_under_a_stored_key_are_refused(records: ScanRecords) -> None:
    await records.put("gap:d50", snapshot(50))

    with pytest.raises(DataError, match=r"scan record 'gap:d50' is stored already with other"):
        await records.put(
            "gap:d50", replace(snapshot(50), taken_at=snapshot(50).taken_at + timedelta(seconds=1))
        )
    assert await records.get("gap:d50") == snapshot(50)


async def test_a_snapshot_a_record_cannot_rebuild_is_refused(records: ScanRecords) -> None:
    given = snapshot(50)
    shuffled = replace(given.symbols[0], daily_bars=tuple(reversed(given.symbols[0].daily_bars)))

    with pytest.raises(DataError, match="its daily bars must be its own, oldest first"):
        await records.put("gap:d50", replace(given, symbols=(shuffled, *given.symbols[1:])))
    assert await records.get("gap:d50") is None


async def test_get_reads_only_the_symbols_asked_in_stored_order(records: ScanRecords) -> None:
    given = snapshot(50)
    await records.put("gap:d50", given)

    found = await records.get("gap:d50", symbols=[AAPL, MSFT, symbol("ZZZ")])

    assert found == replace(given, symbols=given.symbols[:2])


async def test_records_outlive_the_store_and_a_new_one_adds_versions(durable: Durable) -> None:
    first = await durable.open()
    await first.migrate()
    await first.scan_records().put("gap:d50", snapshot(50))
    revised_at = SESSIONS[49]
    split = {
        s: [replace(b, volume=b.volume * 2) if b.session == revised_at else b for b in bars]
        for s, bars in HISTORY.items()
    }
    await durable.close_all()

    second = await durable.open()
    await second.migrate()
    size = await second.scan_records().put("gap:d51", snapshot(51, split))

    assert size.new_bars == 4
    assert await second.scan_records().get("gap:d50") == snapshot(50)
    assert await second.scan_records().get("gap:d51") == snapshot(51, split)


async def test_a_database_at_version_3_gains_the_scan_record_tables(durable: Durable) -> None:
    store = await durable.open()
    await store.migrate()
    await durable.to_version(3)

    again = await durable.open()
    await again.migrate()
    await again.scan_records().put("gap:d50", snapshot(50))

    assert await again.scan_records().get("gap:d50") == snapshot(50)
