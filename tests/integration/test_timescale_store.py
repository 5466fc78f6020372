"""TimescaleStore on both database servers: migrations, COPY writes, idempotence, recovery.

Each test works in its own schema (`t_<uuid hex>`), dropped at teardown, and runs on the machine's
plain PostgreSQL (timescaledb installed but not preloaded: plain tables) and on TimescaleDB
(`pg_dsn`). What only TimescaleDB does (hypertables, compression, retention, continuous
aggregates) is in test_timescale_features.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypedDict, Unpack

import asyncpg
import pytest
import pytest_asyncio

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.rows import SCHEMA_VERSION, TABLES, Kind
from fin_agent.adapters.storage.timescale_migrations import LATEST_VERSION, MIGRATIONS
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.adapters.storage.timescale_writes import checks_compressed_chunks
from fin_agent.domain.errors import AdapterError, ConfigError, DataError
from fin_agent.domain.events import BarsClosed, DomainEvent, ErrorRaised
from fin_agent.domain.values import Bar, DailyBar, symbol

CODEC = EventCodec(default_registry())
DAY = date(2024, 1, 2)
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
DAILY_BAR_TABLES = ("daily_bars", "daily_bar_coverage")
SCAN_RECORD_TABLES = ("scan_records", "scan_inputs", "scan_bars")


class ConnectOptions(TypedDict, total=False):
    """The keywords of `TimescaleStore.connect` a test may set."""

    min_size: int
    max_size: int
    command_timeout_secs: float
    connect_timeout_secs: float
    bars_retention_days: int | None
    ping_timeout_secs: float


class OpenStore(Protocol):
    """The `open_store` fixture: a connected store in `schema` (the test's own by default)."""

    def __call__(
        self, schema: str | None = None, **options: Unpack[ConnectOptions]
    ) -> Awaitable[TimescaleStore]: ...


def bars_closed(minute: int, symbols: int = 2, day: date = DAY) -> BarsClosed:
    """One minute's bars of `symbols` symbols, with an id derived from the minute."""
    start = datetime.combine(day, OPEN.timetz()) + timedelta(minutes=minute)
    price = Decimal("10.00") + Decimal(minute) / 100
    bars = tuple(
        Bar(
            symbol=symbol(f"S{n:03d}"),
            start=start,
            open=price,
            high=price + Decimal("0.05"),
            low=price - Decimal("0.05"),
            close=price + Decimal("0.01"),
            volume=1_000 + n,
        )
        for n in range(symbols)
    )
    end = start + timedelta(minutes=1)
    return BarsClosed(
        id=BarsClosed.id_for(end.isoformat()), occurred_at=end, trading_day=day, bars=bars
    )


def error_raised(n: int, *, message: str = "feed stalled", day: date = DAY) -> ErrorRaised:
    at = datetime.combine(day, OPEN.timetz()) + timedelta(seconds=n)
    return ErrorRaised(
        id=ErrorRaised.id_for(f"{day}|{n}"),
        occurred_at=at,
        trading_day=day,
        source="feed.finnhub",
        code="feed_stalled",
        message=message,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest_asyncio.fixture
async def admin(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test database, outside any store."""
    con = await asyncpg.connect(pg_dsn)
    yield con
    await con.close()


@pytest_asyncio.fixture
async def open_store(pg_dsn: str) -> AsyncIterator[OpenStore]:
    """`await open_store(schema=None, **options)`: a connected store; schemas dropped at the end."""
    stores: list[TimescaleStore] = []
    default_schema = f"t_{uuid.uuid4().hex}"

    async def open_one(
        schema: str | None = None, **options: Unpack[ConnectOptions]
    ) -> TimescaleStore:
        store = await TimescaleStore.connect(
            pg_dsn, CODEC, schema=schema or default_schema, **options
        )
        stores.append(store)
        return store

    yield open_one
    for store in stores:
        try:
            await store.drop_schema()
        finally:
            await store.close()


@pytest_asyncio.fixture
async def store(open_store: OpenStore) -> TimescaleStore:
    """A migrated store in a fresh schema."""
    store = await open_store()
    await store.migrate()
    return store


async def count(admin: asyncpg.Connection, schema: str, table: str) -> int:
    return int(await admin.fetchval(f'SELECT count(*) FROM "{schema}"."{table}"'))  # noqa: S608


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_reach_the_schema_version_of_the_shared_tables() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    assert LATEST_VERSION == SCHEMA_VERSION


def test_released_migrations_are_frozen() -> None:
    # Released versions are history (timescale_migrations.MIGRATIONS): to change the schema,
    # append a version altering it, instead of updating these digests.
    digests = [hashlib.sha256(m.sql.encode()).hexdigest() for m in MIGRATIONS[:4]]
    assert digests == [
        "aad88a34d20a49a6b805e659154945b89914b59c5ab587f2a03f6d0155cd5724",
        "c2fd7ce8650e4a01e5aaeeaca29b19cb717204220b6f4e793b23dacaf3d165e8",
        "ae8ad0c3767fcc729fab6156834f2a2f6e114ef1d48649d2eb510e29c1ea2cf6",
        "f9a49a647fe67b2e40661ee4d1d71dc3d6cdfaeb180ce32fbed841347a758f59",
    ]


PG_TYPES = {
    Kind.TEXT: "text",
    Kind.INT: "integer",
    Kind.BIGINT: "bigint",
    Kind.NUMERIC: "numeric(20,6)",
    Kind.TIMESTAMP: "timestamp with time zone",
    Kind.DATE: "date",
    Kind.JSON: "jsonb",
}


@pytest.mark.asyncio
async def test_a_schema_migrated_through_every_version_has_the_columns_of_the_shared_tables(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    for table in TABLES.values():
        columns = await admin.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) AS preset FROM pg_attribute "
            "LEFT JOIN pg_attrdef d ON d.adrelid = attrelid AND d.adnum = attnum "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            f'"{store.schema}"."{table.name}"',
        )

        assert [(r["attname"], r["type"], r["attnotnull"]) for r in columns] == [
            (c.name, PG_TYPES[c.kind], not c.nullable) for c in table.columns
        ], table.name
        presets = {r["attname"]: r["preset"] for r in columns if r["preset"] is not None}
        want = {"config_version": "''::text"} if "config_version" in table.names else {}
        assert presets == want, table.name


@pytest.mark.asyncio
async def test_migrate_creates_every_table_and_records_each_version_once(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    store = await open_store()

    first = await store.migrate()
    second = await store.migrate()

    assert first == second
    assert first.schema_version == SCHEMA_VERSION
    versions = await admin.fetch(
        f'SELECT version, description FROM "{store.schema}".schema_migrations ORDER BY 1'  # noqa: S608
    )
    assert [tuple(r) for r in versions] == [(m.version, m.description) for m in MIGRATIONS]
    tables = await admin.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
        "AND table_type = 'BASE TABLE'",
        store.schema,
    )
    assert {r["table_name"] for r in tables} == {
        *TABLES,
        *DAILY_BAR_TABLES,
        *SCAN_RECORD_TABLES,
        "schema_migrations",
    }


@pytest.mark.asyncio
async def test_two_stores_migrating_together_apply_each_version_once(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    one = await open_store()
    two = await open_store(one.schema)

    infos = await asyncio.gather(one.migrate(), two.migrate())

    assert infos[0] == infos[1]
    rows = await admin.fetch(
        f'SELECT version FROM "{one.schema}".schema_migrations'  # noqa: S608
    )
    assert sorted(r["version"] for r in rows) == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.asyncio
async def test_migrate_refuses_a_database_at_a_newer_version(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    newer = SCHEMA_VERSION + 1
    await admin.execute(
        f'INSERT INTO "{store.schema}".schema_migrations (version, description) '  # noqa: S608
        "VALUES ($1, 'from a newer agent')",
        newer,
    )

    with pytest.raises(
        ConfigError,
        match=rf"the database schema '{store.schema}' is at version {newer} but this agent knows "
        rf"versions up to {SCHEMA_VERSION}: upgrade the agent",
    ):
        await store.migrate()


@pytest.mark.asyncio
async def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(pg_dsn: str) -> None:
    with pytest.raises(ConfigError, match=r"store schema 'Bad-Name' is not a valid name"):
        await TimescaleStore.connect(pg_dsn, CODEC, schema="Bad-Name")


# -- writes -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_50k_bar_write_in_one_call_stores_every_bar(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    events = [bars_closed(minute, symbols=100) for minute in range(500)]

    new = await store.write(events)

    assert new == 500
    assert await count(admin, store.schema, "bars_1m") == 50_000
    assert await count(admin, store.schema, "events") == 500


@pytest.mark.asyncio
async def test_rewriting_stored_events_adds_nothing_and_counts_only_new_ones(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    first = [bars_closed(0), bars_closed(1), error_raised(1)]
    await store.write(first)

    again = await store.write(first)
    mixed = await store.write([*first, bars_closed(2), error_raised(2)])

    assert again == 0
    assert mixed == 2
    assert await count(admin, store.schema, "events") == 5
    assert await count(admin, store.schema, "bars_1m") == 6
    assert await count(admin, store.schema, "errors") == 2


@pytest.mark.asyncio
async def test_a_write_is_one_transaction_a_refused_value_stores_nothing(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    poisoned = error_raised(9, message="nul \x00 byte")  # PostgreSQL text cannot hold NUL

    with pytest.raises(DataError, match=r"cannot write 2 events: PostgreSQL refused a value"):
        await store.write([bars_closed(0), poisoned])

    assert await count(admin, store.schema, "events") == 0
    assert await count(admin, store.schema, "bars_1m") == 0


@pytest.mark.asyncio
async def test_a_new_event_with_a_stored_bar_adds_the_event_whether_migrated_here_or_not(
    store: TimescaleStore, open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    other = await open_store(store.schema)  # not migrated by this store: always writes checked
    await store.write([bars_closed(0, symbols=2)])
    carrying = dataclasses.replace(  # minute 0's bars again, under another id, with a third
        bars_closed(0, symbols=3), id=BarsClosed.id_for("minute 0 again")
    )

    assert await store.write([carrying, bars_closed(1)]) == 2
    elsewhere = dataclasses.replace(carrying, id=BarsClosed.id_for("minute 0, elsewhere"))
    assert await other.write([elsewhere]) == 1
    assert await store.write([carrying]) == 0

    assert await count(admin, store.schema, "events") == 4
    assert await count(admin, store.schema, "bars_1m") == 5


def test_only_a_timescaledb_that_checks_compressed_chunks_is_written_copy_first() -> None:
    assert checks_compressed_chunks(None)  # plain PostgreSQL
    assert checks_compressed_chunks("2.11.0")
    assert checks_compressed_chunks("2.17.2")
    assert checks_compressed_chunks("10.0.0-dev")
    assert not checks_compressed_chunks("2.10.3")
    assert not checks_compressed_chunks("1.7.5")
    assert not checks_compressed_chunks("unknown")


@pytest.mark.asyncio
async def test_writing_nothing_returns_zero(store: TimescaleStore) -> None:
    assert await store.write([]) == 0


# -- reads --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_events_come_back_decoded_in_time_order_filtered_by_day_and_type(
    store: TimescaleStore,
) -> None:
    later = date(2024, 1, 3)
    events: list[DomainEvent] = [
        error_raised(5),
        bars_closed(0),
        error_raised(-3600),
        bars_closed(-60, day=later),
        error_raised(1, day=later),
    ]
    await store.write(events)

    everything = await store.events()
    first_day = await store.events(day=DAY)
    errors = await store.events(types={"error.raised"})
    two = await store.events(limit=2)

    assert everything == sorted(events, key=lambda e: (e.occurred_at, e.id))
    assert first_day == sorted(events[:3], key=lambda e: (e.occurred_at, e.id))
    assert errors == [events[2], events[0], events[4]]
    assert two == everything[:2]
    assert await store.days() == [DAY, later]


@pytest.mark.asyncio
async def test_rows_are_python_values_under_the_column_names_of_the_table(
    store: TimescaleStore,
) -> None:
    event = bars_closed(0, symbols=1)
    await store.write([event])

    [row] = await store.rows("bars_1m", day=DAY)

    assert row == {
        "symbol": "S000",
        "start": OPEN,
        "trading_day": DAY,
        "open": Decimal("10.000000"),
        "high": Decimal("10.050000"),
        "low": Decimal("9.950000"),
        "close": Decimal("10.010000"),
        "volume": 1_000,
        "event_id": event.id,
    }
    start = row["start"]
    assert isinstance(start, datetime)
    assert start.tzinfo is UTC
    assert await store.rows("bars_1m", day=date(2024, 1, 3)) == []


@pytest.mark.asyncio
async def test_rows_of_an_unknown_table_name_the_tables(store: TimescaleStore) -> None:
    with pytest.raises(DataError, match=r"no table 'bars': choose one of bars_1m, daily_reports"):
        await store.rows("bars")


# -- failures and recovery ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_store_recovers_after_its_backends_are_terminated(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    await store.write([bars_closed(0)])
    for minute in range(1, 4):
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            f"fin_agent {store.schema}",
        )
        assert killed >= 1

        new = await store.write([bars_closed(minute)])  # the pooled connection is dead
        await store.ping()

        assert new == 1
    assert await count(admin, store.schema, "events") == 4


@pytest.mark.asyncio
async def test_a_database_refusing_connections_gives_adapter_error_then_recovers(
    pg_dsn: str, admin: asyncpg.Connection
) -> None:
    database = f"t_{uuid.uuid4().hex}"  # its own database: closing it disturbs no other test
    await admin.execute(f'CREATE DATABASE "{database}"')
    store = await TimescaleStore.connect(
        pg_dsn.rsplit("/", 1)[0] + "/" + database, CODEC, schema="fin_agent"
    )
    try:
        await store.migrate()
        await store.write([bars_closed(0)])
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )

        with pytest.raises(AdapterError, match=rf"cannot ping: PostgreSQL at .*/{database} "):
            await store.ping()
        with pytest.raises(AdapterError, match=r"cannot write 1 events: PostgreSQL at "):
            await store.write([bars_closed(1)])
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await store.ping()
        new = await store.write([bars_closed(1)])

        assert new == 1
        assert [e.id for e in await store.events()] == [bars_closed(0).id, bars_closed(1).id]
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await store.close()
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


@pytest.mark.asyncio
async def test_connecting_to_a_closed_port_gives_adapter_error_saying_what_to_check() -> None:
    port = closed_port()

    with pytest.raises(
        AdapterError,
        match=rf"cannot connect: PostgreSQL at 127\.0\.0\.1:{port}/test is unreachable "
        r"\(ConnectionRefusedError: .*\): check the host and port of the DSN and that PostgreSQL "
        r"is running and accepting connections",
    ):
        await TimescaleStore.connect(f"postgresql://postgres@127.0.0.1:{port}/test", CODEC)


@pytest.mark.asyncio
async def test_a_closed_store_says_so(pg_dsn: str) -> None:
    store = await TimescaleStore.connect(pg_dsn, CODEC, schema=f"t_{uuid.uuid4().hex}")
    await store.close()

    with pytest.raises(AdapterError, match=r"cannot ping: the store is closed: connect a new one"):
        await store.ping()


# -- the daily bar cache ------------------------------------------------------------------------


def daily(sym: str, day: date, close: Decimal) -> DailyBar:
    return DailyBar(
        symbol=symbol(sym), session=day, open=close, high=close, low=close, close=close, volume=1
    )


def weekdays(start: date, end: date, close: Decimal, sym: str = "AAPL") -> list[DailyBar]:
    found, day = [], start
    while day <= end:
        if day.weekday() < 5:
            found.append(daily(sym, day, close))
        day += timedelta(days=1)
    return found


@pytest.mark.asyncio
async def test_two_agents_caching_one_symbol_at_once_put_one_after_the_other(
    store: TimescaleStore, open_store: OpenStore
) -> None:
    other = await open_store(store.schema)
    names = [f"S{n:02d}" for n in range(8)]
    start, end = date(2024, 3, 4), date(2024, 3, 22)

    await asyncio.gather(
        *(
            put
            for name in names
            for put in (
                store.daily_bar_cache().put(
                    symbol(name), start, date(2024, 3, 15), weekdays(start, end, Decimal(1), name)
                ),
                other.daily_bar_cache().put(
                    symbol(name), date(2024, 3, 11), end, weekdays(start, end, Decimal(2), name)
                ),
            )
        )
    )

    for name in names:
        cache = store.daily_bar_cache()
        assert await cache.coverage(symbol(name)) == (start, end)
        got = await cache.get(symbol(name), start, end)
        assert [b.session for b in got] == [b.session for b in weekdays(start, end, Decimal(1))]
        overlap = {b.close for b in got if date(2024, 3, 11) <= b.session <= date(2024, 3, 15)}
        assert len(overlap) == 1  # one put's bars throughout: the one that went second


@pytest.mark.asyncio
async def test_daily_bar_prices_are_rounded_half_even_like_duckdb_not_half_up(
    store: TimescaleStore, admin: asyncpg.Connection
) -> None:
    given = [
        daily("AAPL", date(2024, 3, 4), Decimal("10.0000005")),
        daily("AAPL", date(2024, 3, 5), Decimal("10.0000015")),
    ]

    await store.daily_bar_cache().put(symbol("AAPL"), date(2024, 3, 4), date(2024, 3, 5), given)

    got = await store.daily_bar_cache().get(symbol("AAPL"), date(2024, 3, 4), date(2024, 3, 5))
    assert [str(b.close) for b in got] == ["10.000000", "10.000002"]
    assert await count(admin, store.schema, "daily_bars") == 2
    assert await count(admin, store.schema, "daily_bar_coverage") == 1


@pytest.mark.asyncio
async def test_the_daily_bar_cache_of_a_store_not_migrated_says_to_migrate(
    open_store: OpenStore,
) -> None:
    store = await open_store()

    with pytest.raises(
        ConfigError,
        match=r"cannot read the daily bar coverage of AAPL: UndefinedTableError: .* run "
        r"migrate\(\) before using the store",
    ):
        await store.daily_bar_cache().coverage(symbol("AAPL"))


@pytest.mark.asyncio
async def test_the_daily_bar_cache_of_a_closed_store_says_so(pg_dsn: str) -> None:
    store = await TimescaleStore.connect(pg_dsn, CODEC, schema=f"t_{uuid.uuid4().hex}")
    cache = store.daily_bar_cache()
    await store.close()

    with pytest.raises(
        AdapterError, match=r"cannot cache the daily bars of AAPL: the store is closed"
    ):
        await cache.put(symbol("AAPL"), DAY, DAY, [])
