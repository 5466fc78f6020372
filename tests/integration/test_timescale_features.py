"""What only TimescaleDB does for the store, on a real TimescaleDB (FIN_AGENT_TEST_TIMESCALE).

Hypertables, compression after 7 days, retention (off unless configured, and then only of bars
written live), the continuous aggregates `bars_5m` and `bars_1d`, and the plain-table fallback when
the server has the extension but does not preload it (on a throwaway cluster restarted with and
without `shared_preload_libraries`). Each test works in its own schema, dropped at teardown.

Background jobs run on their own schedule; a test that needs one's effect runs it itself (`CALL
run_job`), so nothing here waits on the clock. Where a test needs a chunk written live long ago it
sets the chunk's creation time in TimescaleDB's catalog, as if it had been written back then.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.candles import candles_of
from fin_agent.adapters.storage.rows import TABLES
from fin_agent.adapters.storage.timescale_policies import RETENTION_PROC
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import BarsClosed, DomainEvent, ErrorRaised
from fin_agent.domain.values import Bar, symbol
from fin_agent.ports.store import CandleWidth
from pg_cluster import PostgresCluster, make_cluster, skip_or_fail, timescaledb_installed

pytestmark = pytest.mark.asyncio

CODEC = EventCodec(default_registry())
BACKTEST_DAY = date(2025, 3, 12)
SYMBOLS = ("AAA", "BBB", "CCC")

OpenStore = Callable[..., Awaitable[TimescaleStore]]


def minute(at: datetime, n: int, *, day: date, symbols: Sequence[str] = SYMBOLS) -> BarsClosed:
    """The bars of the minute starting `n` minutes after `at`, one per symbol."""
    start = at + timedelta(minutes=n)
    price = Decimal("20.00") + Decimal(n % 97) / 100
    bars = tuple(
        Bar(
            symbol=symbol(name),
            start=start,
            open=price,
            high=price + Decimal("0.10"),
            low=price - Decimal("0.07"),
            close=price + Decimal("0.02"),
            volume=100 + n + i,
        )
        for i, name in enumerate(symbols)
    )
    return BarsClosed(
        id=BarsClosed.id_for(f"features-{start.isoformat()}-{','.join(symbols)}"),
        occurred_at=start + timedelta(minutes=1),
        trading_day=day,
        bars=bars,
    )


def session(day: date, minutes: int = 390) -> list[BarsClosed]:
    """A regular session's minutes of `day` (09:30 New York in March: 13:30 UTC after the 9th)."""
    open_at = datetime(day.year, day.month, day.day, 13, 30, tzinfo=UTC)
    return [minute(open_at, n, day=day) for n in range(minutes)]


def error(n: int, at: datetime, day: date) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"features-error-{day}-{n}"),
        occurred_at=at + timedelta(seconds=n),
        trading_day=day,
        source="test",
        code="test.error",
        message=f"error {n}",
    )


@pytest_asyncio.fixture
async def admin(timescale_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to TimescaleDB, outside any store."""
    con = await asyncpg.connect(timescale_dsn)
    yield con
    await con.close()


@pytest_asyncio.fixture
async def open_store(timescale_dsn: str) -> AsyncIterator[OpenStore]:
    """`await open_store(schema=None, **options)`: a store on TimescaleDB; schemas dropped after."""
    stores: list[TimescaleStore] = []
    default_schema = f"tf_{uuid.uuid4().hex[:16]}"

    async def open_one(schema: str | None = None, **options: Any) -> TimescaleStore:
        store = await TimescaleStore.connect(
            timescale_dsn, CODEC, schema=schema or default_schema, **options
        )
        stores.append(store)
        return store

    yield open_one
    for store in stores:
        try:
            await store.drop_schema()
        finally:
            await store.close()


async def jobs(admin: asyncpg.Connection, schema: str) -> list[asyncpg.Record]:
    """Every job of `schema`: its tables' policies and its own procedures'."""
    return list(
        await admin.fetch(
            "SELECT job_id, proc_name, hypertable_name, config FROM timescaledb_information.jobs "
            "WHERE hypertable_schema = $1 OR proc_schema = $1 ORDER BY job_id",
            schema,
        )
    )


async def run_jobs(admin: asyncpg.Connection, schema: str, proc: str | None = None) -> int:
    """Run the schema's jobs (of `proc` only, when given) now, in this session; how many ran."""
    ran = 0
    for job in await jobs(admin, schema):
        if proc is not None and job["proc_name"] != proc:
            continue
        for attempt in range(20):  # the scheduler may be running the same job right now
            try:
                await admin.execute("CALL public.run_job($1)", job["job_id"])
                break
            except asyncpg.exceptions.LockNotAvailableError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.25)
        ran += 1
    return ran


async def count(admin: asyncpg.Connection, schema: str, table: str) -> int:
    return int(await admin.fetchval(f'SELECT count(*) FROM "{schema}"."{table}"'))  # noqa: S608


async def compress_everything(admin: asyncpg.Connection, schema: str) -> int:
    """Compress every chunk of every hypertable of `schema`; how many chunks are compressed."""
    for name in TABLES:
        chunks = await admin.fetch(
            "SELECT c::text AS chunk FROM public.show_chunks($1::regclass) c",
            f'"{schema}"."{name}"',
        )
        for row in chunks:
            # the store's own compression job may compress it between check and compress
            with contextlib.suppress(asyncpg.DuplicateObjectError):
                await admin.execute(
                    "SELECT public.compress_chunk($1::regclass, if_not_compressed => TRUE)",
                    row["chunk"],
                )
    compressed = await admin.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = $1 AND is_compressed",
        schema,
    )
    return int(compressed)


# -- what migrate() puts in place --------------------------------------------------------------


async def test_migrate_makes_compressed_hypertables_and_continuous_aggregates_and_drops_nothing(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    store = await open_store()

    with capture_logs() as logs:
        info = await store.migrate()
    again = await store.migrate()

    assert info == again
    assert info.backend == "timescaledb"
    assert info.features == ("hypertables", "compression", "continuous_aggregates")
    assert info.detail.startswith("timescaledb 2.")
    assert "compression after 7 days" in info.detail
    assert "every bar kept (store.bars_retention_days is null)" in info.detail
    [ready] = [entry for entry in logs if entry["event"] == "store_ready"]
    assert (ready["backend"], ready["mode"]) == ("timescaledb", "hypertables")
    hypertables = await admin.fetch(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = $1",
        store.schema,
    )
    assert {r["hypertable_name"]: r["compression_enabled"] for r in hypertables} == dict.fromkeys(
        TABLES, True
    )
    found = await jobs(admin, store.schema)
    compression = {
        r["hypertable_name"]: r["config"] for r in found if r["proc_name"] == "policy_compression"
    }
    assert sorted(compression) == sorted(TABLES)
    assert all('"compress_after": "7 days"' in config for config in compression.values())
    assert not [r for r in found if r["proc_name"] in ("policy_retention", RETENTION_PROC)]
    views = await admin.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = $1",
        store.schema,
    )
    assert {r["view_name"]: r["materialized_only"] for r in views} == {
        "bars_5m": True,
        "bars_1d": True,
    }
    refresh = [r for r in found if r["proc_name"] == "policy_refresh_continuous_aggregate"]
    assert len(refresh) == 2


async def test_every_bar_of_a_2025_day_is_kept_after_every_job_ran(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    store = await open_store()
    await store.migrate()
    day = session(BACKTEST_DAY)

    assert await store.write(day) == len(day)
    ran = await run_jobs(admin, store.schema)  # compression and the aggregates' refreshes

    assert ran == len(TABLES) + 2
    assert await count(admin, store.schema, "bars_1m") == len(day) * len(SYMBOLS) == 1_170
    assert await count(admin, store.schema, "events") == len(day)
    assert await admin.fetchval(
        "SELECT bool_and(is_compressed) FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = $1 AND hypertable_name = 'bars_1m'",
        store.schema,
    )  # the policy compressed the old chunk: still every row
    assert len(await store.rows("bars_1m", day=BACKTEST_DAY)) == 1_170


# -- retention -----------------------------------------------------------------------------------


async def chunk_of(admin: asyncpg.Connection, schema: str, at: datetime) -> str:
    name = await admin.fetchval(
        "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = $1 AND hypertable_name = 'bars_1m' "
        "AND range_start <= $2 AND $2 < range_end",
        schema,
        at,
    )
    assert name is not None, f"no bars_1m chunk holds {at}"
    return str(name)


async def test_retention_drops_only_bars_written_live_longer_ago_than_the_setting(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    store = await open_store(bars_retention_days=30)
    info = await store.migrate()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    backtest = session(BACKTEST_DAY, minutes=30)  # back-dated: written now, about 2025
    live_now = [minute(now - timedelta(minutes=10), n, day=now.date()) for n in range(5)]
    aged_at = now - timedelta(days=60)
    aged = [minute(aged_at, n, day=aged_at.date()) for n in range(5)]
    await store.write([*backtest, *live_now, *aged])
    aged_chunk = await chunk_of(admin, store.schema, aged_at)
    # as if the agent had written those bars live, 60 days ago
    await admin.execute(
        "UPDATE _timescaledb_catalog.chunk SET creation_time = $2 "
        "WHERE format('%I.%I', schema_name, table_name) = $1",
        aged_chunk,
        aged_at,
    )

    assert "retention" in info.features
    assert "live bars dropped after 30 days, back-dated bars kept" in info.detail
    assert await run_jobs(admin, store.schema, RETENTION_PROC) == 1

    kept = {(r["symbol"], r["start"]) for r in await store.rows("bars_1m")}
    assert kept == {(b.symbol, b.start) for e in [*backtest, *live_now] for b in e.bars}
    assert await count(admin, store.schema, "events") == len(backtest) + 10  # never dropped
    assert await run_jobs(admin, store.schema, RETENTION_PROC) == 1  # nothing more to drop
    assert len(await store.rows("bars_1m")) == len(kept)


async def test_turning_retention_off_removes_its_job_and_an_older_agents_retention_policy(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    with_retention = await open_store(bars_retention_days=30)
    await with_retention.migrate()
    await with_retention.write(session(BACKTEST_DAY, minutes=10))
    # what an older agent left: TimescaleDB's policy, which drops by timestamps (back-dated rows);
    # its first run an hour away, so the background worker cannot drop the rows before migrate()
    await admin.execute(
        "SELECT public.add_retention_policy($1::regclass, INTERVAL '365 days', "
        "initial_start => now() + INTERVAL '1 hour')",
        f'"{with_retention.schema}"."bars_1m"',
    )
    assert {r["proc_name"] for r in await jobs(admin, with_retention.schema)} >= {
        "policy_retention",
        RETENTION_PROC,
    }

    without = await open_store(with_retention.schema)  # bars_retention_days: None, the default
    with capture_logs() as logs:
        info = await without.migrate()

    procs = {r["proc_name"] for r in await jobs(admin, without.schema)}
    assert "policy_retention" not in procs
    assert RETENTION_PROC not in procs
    assert "retention" not in info.features
    assert any(e["event"] == "store_retention_policy_removed" for e in logs)
    assert await count(admin, without.schema, "bars_1m") == 30


# -- compression ---------------------------------------------------------------------------------


async def test_compressed_chunks_stay_correct_under_late_writes_and_redelivery(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    store = await open_store()
    await store.migrate()
    checked = await open_store(store.schema)  # not migrated: it always writes the checked way
    day = session(BACKTEST_DAY, minutes=60)
    open_at = day[0].bars[0].start
    errors = [error(n, open_at, BACKTEST_DAY) for n in range(20)]
    early = [e for n, e in enumerate(day) if n % 2 == 0] + errors[:10]
    late = [e for n, e in enumerate(day) if n % 2 == 1] + errors[10:]
    carrier = dataclasses.replace(  # a new event carrying stored bars and one new bar
        minute(open_at, 0, day=BACKTEST_DAY, symbols=(*SYMBOLS, "DDD")),
        id=BarsClosed.id_for("features-carrier"),
    )
    await store.write(early)

    assert await compress_everything(admin, store.schema) >= 3  # events, bars_1m, errors
    assert await store.write(early) == 0  # redelivered into compressed chunks: COPY refused
    assert await checked.write(early) == 0  # and ON CONFLICT DO NOTHING skips them
    assert await store.write([*late, carrier]) == len(late) + 1  # late writes into them
    assert await store.write([*early, *late]) == 0
    assert await checked.write([*late, carrier]) == 0

    everything: list[DomainEvent] = [*early, *late, carrier]
    assert await store.events() == sorted(everything, key=lambda e: (e.occurred_at, e.id))
    bars = await store.rows("bars_1m")
    assert len(bars) == len(day) * len(SYMBOLS) + 1
    assert {(r["symbol"], r["start"]): r["event_id"] for r in bars} == {
        **{(b.symbol, b.start): e.id for e in day for b in e.bars},
        (symbol("DDD"), open_at): carrier.id,
    }
    assert await count(admin, store.schema, "errors") == len(errors)
    for width in (CandleWidth.M5, CandleWidth.D1):
        assert await store.candles(width) == candles_of(bars, width)
    await compress_everything(admin, store.schema)  # recompressed: the same answers
    assert await store.rows("bars_1m") == bars


async def test_a_changed_compression_setting_replaces_the_policy_and_null_removes_it(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    first = await open_store()
    await first.migrate()
    later = await open_store(first.schema, compress_after_days=14)
    await later.migrate()
    configs = [r["config"] for r in await jobs(admin, first.schema)]
    assert sum('"compress_after": "14 days"' in c for c in configs) == len(TABLES)
    assert not any('"compress_after": "7 days"' in c for c in configs)

    off = await open_store(first.schema, compress_after_days=None)
    info = await off.migrate()

    procs = [r["proc_name"] for r in await jobs(admin, first.schema)]
    assert "policy_compression" not in procs
    assert "compression" not in info.features
    assert "compression off (store.compress_after_days is null)" in info.detail


# -- continuous aggregates -----------------------------------------------------------------------


async def test_candles_read_from_the_continuous_aggregates_which_hold_them_after(
    open_store: OpenStore, admin: asyncpg.Connection
) -> None:
    store = await open_store()
    await store.migrate()
    day = session(BACKTEST_DAY, minutes=120)
    await store.write(day)
    bars = await store.rows("bars_1m")

    five = await store.candles(CandleWidth.M5, day=BACKTEST_DAY)
    daily = await store.candles(CandleWidth.D1, day=BACKTEST_DAY)

    assert five == candles_of(bars, CandleWidth.M5)
    assert len(five) == 24 * len(SYMBOLS)
    assert daily == candles_of(bars, CandleWidth.D1)
    materialized = await admin.fetch(
        f'SELECT "symbol", "start", "open", "close", "volume", "minutes" '  # noqa: S608
        f'FROM "{store.schema}"."bars_5m" ORDER BY "start", "symbol"'
    )
    assert [tuple(r) for r in materialized] == [
        (r["symbol"], r["start"], r["open"], r["close"], r["volume"], r["minutes"]) for r in five
    ]
    [day_row] = [r for r in daily if r["symbol"] == "AAA"]
    assert day_row["start"] == datetime(2025, 3, 12, 4, 0, tzinfo=UTC)  # New York's midnight
    assert day_row["minutes"] == 120


# -- installed but not preloaded: a throwaway cluster --------------------------------------------


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A throwaway cluster on which timescaledb is installed, started without preloading it."""
    cluster = make_cluster(preload=False)
    if not timescaledb_installed(cluster.bin_dir):
        cluster.destroy()
        skip_or_fail("timescaledb is not installed: run `../shared/tools/timescaledb install`")
    try:
        yield cluster
    finally:
        cluster.destroy()


async def test_installed_but_not_preloaded_starts_with_plain_tables_then_converts_them(
    cluster: PostgresCluster,
) -> None:
    schema = "fin_agent"
    events = session(BACKTEST_DAY, minutes=20)

    plain = await TimescaleStore.connect(cluster.dsn, CODEC, schema=schema)
    try:
        with capture_logs() as logs:
            info = await plain.migrate()
        assert await plain.write(events) == len(events)
    finally:
        await plain.close()

    fix = "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL"
    assert info.backend == "postgresql"
    assert info.features == ()
    assert info.detail == (
        f"plain PostgreSQL tables; timescaledb is installed but not preloaded: {fix}"
    )
    [warning] = [e for e in logs if e["event"] == "store_plain_tables"]
    assert warning["log_level"] == "warning"
    assert fix in warning["reason"]
    [ready] = [e for e in logs if e["event"] == "store_ready"]
    assert (ready["backend"], ready["mode"]) == ("postgresql", "plain tables")

    cluster.stop()
    cluster.preload = True
    cluster.start()
    converted = await TimescaleStore.connect(cluster.dsn, CODEC, schema=schema)
    try:
        upgraded = await converted.migrate()
        assert upgraded.backend == "timescaledb"
        assert "hypertables" in upgraded.features
        assert len(await converted.rows("bars_1m")) == len(events) * len(SYMBOLS)
        assert await converted.write(events) == 0
    finally:
        await converted.close()

    cluster.stop()
    cluster.preload = False
    cluster.start()
    with pytest.raises(
        ConfigError,
        match=r"this database has the timescaledb extension but the server does not preload it, "
        rf"so PostgreSQL ends every session that changes a table: {fix}",
    ):
        await TimescaleStore.connect(cluster.dsn, CODEC, schema=schema)
