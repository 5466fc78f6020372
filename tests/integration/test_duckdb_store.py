"""`DuckDBStore` on a real file: it survives a reopen, refuses a newer schema, takes big batches,
and its daily bar cache shares the store's one connection."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.duckdb_migrations import DUCKDB
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.adapters.storage.rows import SCHEMA_VERSION, TABLES, Kind
from fin_agent.domain.errors import AdapterError, DataError
from fin_agent.domain.events import BarsClosed, DomainEvent, ErrorRaised, Severity
from fin_agent.domain.values import Bar, DailyBar, Symbol, symbol

pytestmark = pytest.mark.asyncio

DAY = date(2025, 3, 12)
OPEN = datetime(2025, 3, 12, 13, 30, tzinfo=UTC)
CODEC = EventCodec(default_registry())
DAILY_BAR_TABLES = ("daily_bars", "daily_bar_coverage")
SCAN_RECORD_TABLES = ("scan_records", "scan_inputs", "scan_bars")
AAPL = symbol("AAPL")


def minutes(count: int, symbols: int) -> list[BarsClosed]:
    """`count` minutes of bars of `symbols` symbols from the open: count * symbols bars."""
    names = [Symbol(f"S{i:04d}") for i in range(symbols)]
    events = []
    for minute in range(count):
        start = OPEN + timedelta(minutes=minute)
        price = Decimal(100 + minute % 7) + Decimal("0.0125")
        bars = tuple(
            Bar(
                symbol=name,
                start=start,
                open=price,
                high=price + Decimal("0.5"),
                low=price - Decimal("0.5"),
                close=price + Decimal("0.25"),
                volume=1000 + minute,
            )
            for name in names
        )
        events.append(
            BarsClosed(
                id=BarsClosed.id_for(f"{DAY}:{start.isoformat()}"),
                occurred_at=start + timedelta(minutes=1),
                trading_day=DAY,
                bars=bars,
            )
        )
    return events


def error(n: int) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"duckdb-test-{n}"),
        occurred_at=OPEN + timedelta(seconds=n),
        trading_day=DAY,
        source="test",
        code="feed_stalled",
        message=f"no bars for {n} seconds",
        severity=Severity.WARNING,
    )


async def test_a_file_store_keeps_its_rows_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "agent.duckdb"
    events: list[DomainEvent] = [*minutes(5, 3), error(1), error(2)]
    first = DuckDBStore(path, CODEC)
    info = await first.migrate()
    await first.write(events)
    bars = await first.rows("bars_1m")
    await first.close()

    again = DuckDBStore(path, CODEC)
    reopened = await again.migrate()
    try:
        assert (info.backend, info.features, info.detail) == ("duckdb", ("embedded",), str(path))
        assert reopened.schema_version == info.schema_version == SCHEMA_VERSION
        assert list(await again.events()) == sorted(events, key=lambda e: (e.occurred_at, e.id))
        assert await again.rows("bars_1m") == bars
        assert len(bars) == 15
        assert await again.write(events) == 0
        assert list(await again.days()) == [DAY]
    finally:
        await again.close()


async def test_a_database_with_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.duckdb"
    store = DuckDBStore(path, CODEC)
    await store.migrate()
    await store.close()
    newer = SCHEMA_VERSION + 1
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES ($1, current_timestamp)", [newer])
    con.close()

    reopened = DuckDBStore(path, CODEC)
    try:
        with pytest.raises(
            DataError,
            match=(
                rf"has schema version {newer}, newer than version {SCHEMA_VERSION} this fin_agent "
                "knows: upgrade fin_agent, or use another store file"
            ),
        ):
            await reopened.migrate()
    finally:
        await reopened.close()


async def test_migrate_records_each_version_once(tmp_path: Path) -> None:
    path = tmp_path / "versions.duckdb"
    store = DuckDBStore(path, CODEC)
    await store.migrate()
    await store.migrate()
    await store.close()

    con = duckdb.connect(str(path))
    versions = con.execute('SELECT "version" FROM schema_migrations').fetchall()
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()

    assert sorted(versions) == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert tables == {*TABLES, *DAILY_BAR_TABLES, *SCAN_RECORD_TABLES, "schema_migrations"}


async def test_released_schema_versions_are_frozen() -> None:
    # Released versions are history (duckdb_migrations.DUCKDB): to change the schema, append a
    # version altering it, instead of updating these digests.
    digests = [hashlib.sha256(DUCKDB[v].encode()).hexdigest() for v in (1, 2, 3, 4)]
    assert digests == [
        "828e9e0c0ecc4dc09da4b33ec7ff2268732e7f41cccd87ba5719f90400dbcec1",
        "5fc1de8c93351ede775e6498afa75007c8baca82e3c795759b39edd8380cfea4",
        "e497209dc85ca5eeddfe41dcda44a8ee67be5ccb93ad1d3a412e9fae44003685",
        "3207068d1c46f60ef5dda214d62202c92fe226e87f6837ac9253ee2eae2ec36e",
    ]
    assert sorted(DUCKDB) == list(range(1, SCHEMA_VERSION + 1))


DUCKDB_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.INT: "INTEGER",
    Kind.BIGINT: "BIGINT",
    Kind.NUMERIC: "DECIMAL(20,6)",
    Kind.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    Kind.DATE: "DATE",
    Kind.JSON: "JSON",
}


async def test_a_file_migrated_through_every_version_has_the_tables_of_the_shared_schema(
    tmp_path: Path,
) -> None:
    path = tmp_path / "schema.duckdb"
    store = DuckDBStore(path, CODEC)
    await store.migrate()
    await store.close()

    con = duckdb.connect(str(path))
    try:
        for table in TABLES.values():
            columns = con.execute(
                "SELECT column_name, data_type, is_nullable = 'YES', column_default "
                "FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
                [table.name],
            ).fetchall()
            [key] = con.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE table_name = $1 AND constraint_type = 'PRIMARY KEY'",
                [table.name],
            ).fetchall()

            assert [c[:3] for c in columns] == [
                (c.name, DUCKDB_TYPES[c.kind], c.nullable) for c in table.columns
            ], table.name
            presets = {name: preset for name, _, _, preset in columns if preset is not None}
            want = {"config_version": "''"} if "config_version" in table.names else {}
            assert presets == want, table.name
            assert tuple(key[0]) == table.key, table.name
    finally:
        con.close()


async def test_fifty_thousand_bars_write_in_one_call(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "bars.duckdb", CODEC)
    await store.migrate()
    events = minutes(250, 200)
    try:
        new = await store.write(events)

        assert new == 250
        bars = await store.rows("bars_1m")
        assert len(bars) == 50_000
        assert bars[0]["start"] == OPEN
        assert bars[0]["open"] == Decimal("100.012500")
        assert await store.write(events) == 0
    finally:
        await store.close()


async def test_an_in_memory_database_needs_no_file() -> None:
    store = DuckDBStore(None, CODEC)
    info = await store.migrate()
    try:
        assert info.detail == ":memory:"
        assert await store.write([error(1)]) == 1
        assert [e.id for e in await store.events()] == [error(1).id]
    finally:
        await store.close()


async def test_a_closed_store_refuses_calls_with_an_adapter_error(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "closed.duckdb", CODEC)
    await store.migrate()
    await store.close()
    await store.close()  # idempotent

    with pytest.raises(AdapterError, match=r"closed\.duckdb is closed: open a new DuckDBStore"):
        await store.ping()


async def test_an_unopenable_file_is_an_adapter_error(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "missing" / "dir" / "x.duckdb", CODEC)

    with pytest.raises(
        AdapterError, match=r"migrate failed \(IO Error: .*\): check that its folder"
    ):
        await store.migrate()
    with pytest.raises(AdapterError, match=r"ping failed \(IO Error: .*no other process has"):
        await store.ping()


async def test_a_write_before_migrate_says_to_migrate(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "unmigrated.duckdb", CODEC)
    try:
        with pytest.raises(
            DataError, match=r"write failed \(Catalog Error: .*call migrate\(\) first"
        ):
            await store.write([error(1)])
    finally:
        await store.close()


# -- the daily bar cache --------------------------------------------------------------------------


def daily(day: date, close: str, volume: int = 1_000_000) -> DailyBar:
    price = Decimal(close)
    return DailyBar(
        symbol=AAPL, session=day, open=price, high=price, low=price, close=price, volume=volume
    )


async def test_the_daily_bar_cache_and_writes_share_the_one_connection(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "shared.duckdb", CODEC)
    await store.migrate()
    cache = store.daily_bar_cache()
    bars = [daily(DAY - timedelta(days=n), f"{100 + n}.25") for n in range(1, 6)]
    try:
        await asyncio.gather(
            store.write(minutes(30, 20)),
            cache.put(AAPL, DAY - timedelta(days=5), DAY - timedelta(days=1), bars),
            *(store.write([error(n)]) for n in range(5)),
        )

        assert len(await store.rows("bars_1m")) == 600
        assert await cache.get(AAPL, DAY - timedelta(days=9), DAY) == sorted(
            bars, key=lambda b: b.session
        )
    finally:
        await store.close()


async def test_daily_bar_prices_are_kept_at_six_places_rounded_half_even(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "round.duckdb", CODEC)
    await store.migrate()
    cache = store.daily_bar_cache()
    given = [daily(date(2024, 3, 4), "10.0000005"), daily(date(2024, 3, 5), "10.0000015")]
    try:
        await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 5), given)

        got = await cache.get(AAPL, date(2024, 3, 4), date(2024, 3, 5))
        assert [str(b.close) for b in got] == ["10.000000", "10.000002"]
    finally:
        await store.close()


async def test_a_daily_bar_too_large_for_the_tables_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "large.duckdb", CODEC)
    await store.migrate()
    cache = store.daily_bar_cache()
    kept = [daily(date(2024, 3, 4), "10")]
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 4), kept)
    try:
        with pytest.raises(
            DataError,
            match=r"daily bar AAPL 2024-03-05: open 1E\+14 is too large for the cache \(below "
            r"100,000,000,000,000 only\): check the daily bar source's data",
        ):
            await cache.put(
                AAPL, date(2024, 3, 4), date(2024, 3, 5), [daily(date(2024, 3, 5), "1E14")]
            )
        # a volume past any real one is refused by the daily bar itself, before any cache
        with pytest.raises(
            DataError,
            match=r"daily bar AAPL 2024-03-05: volume must be a whole number of shares, "
            r"got 9223372036854775808",
        ):
            await cache.put(
                AAPL, date(2024, 3, 5), date(2024, 3, 5), [daily(date(2024, 3, 5), "1", 2**63)]
            )

        assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 4))
        assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == kept
    finally:
        await store.close()


async def test_the_daily_bar_cache_of_a_store_not_migrated_or_closed_says_what_to_do(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "cache.duckdb", CODEC)
    cache = store.daily_bar_cache()

    with pytest.raises(
        DataError, match=r"daily bar coverage failed \(Catalog Error: .*call migrate\(\) first"
    ):
        await cache.coverage(AAPL)
    await store.close()
    with pytest.raises(AdapterError, match=r"cache\.duckdb is closed: open a new DuckDBStore"):
        await cache.put(AAPL, DAY, DAY, [])


async def test_the_store_bounds_duckdbs_buffer_cache_with_its_memory_limit(tmp_path: Path) -> None:
    bounded = DuckDBStore(tmp_path / "bounded.duckdb", CODEC, memory_limit="64MB")
    default = DuckDBStore(tmp_path / "default.duckdb", CODEC)
    try:
        await bounded.migrate()
        await default.migrate()
        setting = "SELECT current_setting('memory_limit')"
        [(limit,)] = await bounded._run("check", lambda con: con.execute(setting).fetchall())
        [(unbounded,)] = await default._run("check", lambda con: con.execute(setting).fetchall())
    finally:
        await bounded.close()
        await default.close()

    assert limit == "61.0 MiB"  # 64 MB as DuckDB says it
    assert unbounded != limit
