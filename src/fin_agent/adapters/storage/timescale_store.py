"""`TimescaleStore`: the store port on PostgreSQL through an asyncpg pool, TimescaleDB when there.

Each write is one transaction, COPied first and checked when something is stored already
(`timescale_writes`): a redelivered event adds nothing. Each pooled connection creates its staging
tables once, when it opens, and its `search_path` is the store's schema. A lost connection or a
database that is down raises `AdapterError` (transient); the pool reconnects on the next call.
The daily bar cache (`daily_bar_cache()`) shares the pool. What TimescaleDB adds, and how the
store falls back to plain tables without it, is `timescale_features`; candles come from its
continuous aggregates where it has them (`candles`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import date
from typing import Final, TypeVar

import asyncpg
import structlog
from tenacity import (
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_incrementing,
)
from tenacity.asyncio import AsyncRetrying

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.retrying import sleep_unless_zero
from fin_agent.adapters.storage.candles import (
    CAGGS,
    cagg_query,
    candles_query,
    refresh_window,
)
from fin_agent.adapters.storage.queries import (
    Query,
    days_query,
    decode_event,
    events_query,
    rows_query,
    table_of,
)
from fin_agent.adapters.storage.rows import Projector
from fin_agent.adapters.storage.scan_record_rows import BarMemo
from fin_agent.adapters.storage.timescale_daily_bars import TimescaleDailyBarCache
from fin_agent.adapters.storage.timescale_errors import (
    BROKEN,
    describe_dsn,
    failure,
    reconnectable,
)
from fin_agent.adapters.storage.timescale_features import (
    CONTINUOUS_AGGREGATES,
    Policies,
    Timescale,
    delete_schema_jobs,
    enable_timescale,
)
from fin_agent.adapters.storage.timescale_migrations import (
    Conn,
    apply_migrations,
    check_schema_name,
    ident,
)
from fin_agent.adapters.storage.timescale_scan_records import TimescaleScanRecords
from fin_agent.adapters.storage.timescale_writes import (
    checks_compressed_chunks,
    create_stages,
    write_batch,
)
from fin_agent.domain.errors import AdapterError, FinAgentError
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.daily_bar_cache import DailyBarCache
from fin_agent.ports.scan_records import ScanRecords
from fin_agent.ports.store import CandleWidth, Row, StoreInfo

log = structlog.get_logger(__name__)

T = TypeVar("T")


class TimescaleStore:
    """Events and their projections in PostgreSQL; hypertables when `timescaledb` is installed."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        codec: EventCodec,
        *,
        schema: str,
        where: str,
        policies: Policies | None = None,
        ping_timeout_secs: float = 2.0,
    ) -> None:
        self._pool = pool
        self._codec = codec
        self._projector = Projector(codec)
        self._schema = schema
        self._where = where
        self._policies = policies or Policies()
        self._ping_timeout_secs = ping_timeout_secs
        self._copy_first = False  # until migrate() has seen that unique indexes refuse every copy
        self._timescale: Timescale | None = None  # what migrate() found
        self._closed = False
        self._memo = BarMemo()  # the scan records' bars known stored, across their calls

    @classmethod
    async def connect(
        cls,
        dsn: str,
        codec: EventCodec,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 4,
        command_timeout_secs: float = 30,
        connect_timeout_secs: float = 10,
        compress_after_days: int | None = 7,
        bars_retention_days: int | None = None,
        ping_timeout_secs: float = 2.0,
    ) -> TimescaleStore:
        """Open a pool on `dsn` whose connections use `schema`; AdapterError when unreachable.

        `compress_after_days` and `bars_retention_days` (None: off, the default for retention)
        are the TimescaleDB policies `migrate()` puts in place (`timescale_features`)."""
        check_schema_name(schema)
        policies = Policies(
            compress_after_days=compress_after_days, bars_retention_days=bars_retention_days
        )
        where = describe_dsn(dsn)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout_secs,
                timeout=connect_timeout_secs,
                init=create_stages,
                server_settings={
                    "search_path": ident(schema),
                    "application_name": f"fin_agent {schema}"[:63],
                    "client_min_messages": "warning",  # no NOTICE for each IF NOT EXISTS
                },
            )
        except Exception as exc:
            raise failure(exc, "connect", where) from exc
        return cls(
            pool,
            codec,
            schema=schema,
            where=where,
            policies=policies,
            ping_timeout_secs=ping_timeout_secs,
        )

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._schema

    # -- the port ---------------------------------------------------------------------------------

    async def migrate(self) -> StoreInfo:
        """Apply missing migrations, turn on what TimescaleDB allows, say which mode is in force."""

        async def run(con: Conn) -> tuple[int, Timescale]:
            version = await apply_migrations(con, self._schema)
            return version, await enable_timescale(con, self._schema, self._policies)

        version, timescale = await self._with_connection(run, "migrate the store schema")
        await self._pool.expire_connections()  # no statement prepared against the old tables
        self._timescale = timescale
        self._copy_first = checks_compressed_chunks(timescale.version)
        info = StoreInfo(
            backend="postgresql" if timescale.version is None else "timescaledb",
            schema_version=version,
            features=timescale.features,
            detail=timescale.detail,
        )
        log.info(
            "store_ready",
            backend=info.backend,
            mode="plain tables" if timescale.version is None else "hypertables",
            schema=self._schema,
            schema_version=info.schema_version,
            features=list(info.features),
            detail=info.detail,
            where=self._where,
        )
        return info

    async def write(self, events: Sequence[DomainEvent]) -> int:
        """Store events and their projections in one transaction; return how many were new."""
        tables = self._projector.rows(events)
        if not tables:
            return 0

        copy_first = self._copy_first
        return await self._with_connection(
            lambda con: write_batch(con, tables, copy_first=copy_first),
            f"write {len(events)} events",
        )

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        """Stored events in time order (then id), filtered by trading day and type."""
        query = events_query(day=day, types=types, limit=limit, schema=self._schema)
        records = await self._fetch(query, doing="read events")
        return [
            decode_event(
                self._codec,
                event_id=r["event_id"],
                occurred_at=r["occurred_at"],
                event_type=r["type"],
                version=r["version"],
                trace=r["trace"],
                data=r["data"],
            )
            for r in records
        ]

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        """Rows of a projection table, oldest first (then by key), as plain Python values."""
        query = rows_query(table_of(table), day=day, limit=limit, schema=self._schema)
        return [dict(r.items()) for r in await self._fetch(query, doing=f"read {table}")]

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        records = await self._fetch(days_query(schema=self._schema), doing="read the days")
        return [r["trading_day"] for r in records]

    async def candles(
        self, width: CandleWidth, *, day: date | None = None, symbol: str | None = None
    ) -> Sequence[Row]:
        """Minute bars bucketed by `width`: from the continuous aggregate of that width, brought
        up to date over the window read first, else `time_bucket` (plain tables: `date_bin`).

        While a background refresh holds the aggregate, the candles are bucketed from `bars_1m`
        instead (the same answer): a read never waits on the refresh job."""
        timescale = self._timescale
        cagg = next((name for name, w in CAGGS.items() if w is width), None)
        plain = timescale is None or timescale.version is None
        ts = "public" if timescale is None else ident(timescale.ext_schema)
        bucketed = candles_query(
            width,
            dialect="postgres" if plain else "timescale",
            day=day,
            symbol=symbol,
            schema=self._schema,
            ts=ts,
        )
        if timescale is None or cagg is None or CONTINUOUS_AGGREGATES not in timescale.features:
            return [
                dict(r.items()) for r in await self._fetch(bucketed, doing=f"read {width} candles")
            ]
        query = cagg_query(cagg, day=day, symbol=symbol, schema=self._schema)
        start, end = refresh_window(day)

        async def run(con: Conn) -> list[Row]:
            try:
                await con.execute(
                    f"CALL {ts}.refresh_continuous_aggregate($1::regclass, $2::timestamptz, "
                    "$3::timestamptz)",
                    f"{ident(self._schema)}.{ident(cagg)}",
                    start,
                    end,
                )
            except asyncpg.exceptions.LockNotAvailableError:  # the refresh job is at work
                found = await con.fetch(bucketed.sql, *bucketed.params)
            else:
                found = await con.fetch(query.sql, *query.params)
            return [dict(r.items()) for r in found]

        return await self._with_connection(run, f"read {width} candles from {cagg}")

    def daily_bar_cache(self) -> DailyBarCache:
        """The daily bar cache in this schema, on the store's pool (`TimescaleDailyBarCache`)."""
        return TimescaleDailyBarCache(self._with_connection)

    def scan_records(self) -> ScanRecords:
        """The scan records in this schema, on the store's pool (`TimescaleScanRecords`)."""
        return TimescaleScanRecords(self._with_connection, self._memo)

    async def ping(self) -> None:
        """`SELECT 1` within `ping_timeout_secs`; AdapterError when the database does not answer."""

        async def run(con: Conn) -> None:
            await con.fetchval("SELECT 1", timeout=self._ping_timeout_secs)

        try:
            async with asyncio.timeout(self._ping_timeout_secs * 3):  # with a retry's reconnect
                await self._with_connection(run, "ping")
        except TimeoutError as exc:
            raise failure(exc, "ping", self._where) from exc

    async def close(self) -> None:
        """Close every connection of the pool (idempotent); the store cannot be used afterwards."""
        self._closed = True
        await self._pool.close()

    # -- tests and tools ------------------------------------------------------------------------

    async def drop_schema(self) -> None:
        """Drop the store's schema and everything in it (tests and throwaway stores only)."""

        async def run(con: Conn) -> None:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_BUSY),  # a background job at work on its tables
                wait=wait_incrementing(start=0.2, increment=0.2),  # 0.2 s, 0.4 s, ...
                stop=stop_after_attempt(_DROP_ATTEMPTS),
                reraise=True,
            ):
                with attempt:
                    await delete_schema_jobs(con, self._schema)
                    await con.execute(f"DROP SCHEMA IF EXISTS {ident(self._schema)} CASCADE")

        await self._with_connection(run, f"drop schema {self._schema}")
        await self._pool.expire_connections()

    # -- helpers --------------------------------------------------------------------------------

    async def _fetch(self, query: Query, *, doing: str) -> list[asyncpg.Record]:
        async def run(con: Conn) -> list[asyncpg.Record]:
            return list(await con.fetch(query.sql, *query.params))

        return await self._with_connection(run, doing)

    async def _with_connection(self, run: Callable[[Conn], Awaitable[T]], doing: str) -> T:
        """Run `run` on a pooled connection, mapping failures onto the error tree.

        A connection the server dropped while it sat in the pool (a restart, `pg_terminate_backend`)
        fails its first statement. Every call here is safe to repeat (a write skips stored events;
        a failed transaction stored nothing), so it runs once more on fresh connections. Were the
        COMMIT's reply lost after the commit, the repeated write would count 0 new events.
        """
        if self._closed:
            raise AdapterError(f"cannot {doing}: the store is closed: connect a new one")

        async def reconnect(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("store_connection_lost", doing=doing, error=str(error))
            # the server likely dropped every connection (a restart): replace them all
            await self._pool.expire_connections()

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(reconnectable),
                stop=stop_after_attempt(2),
                before_sleep=reconnect,
                sleep=sleep_unless_zero(asyncio.sleep),
                reraise=True,
            ):
                with attempt:
                    async with self._pool.acquire() as con:
                        try:
                            return await run(con)
                        except BROKEN:
                            with contextlib.suppress(asyncpg.InterfaceError):  # already released
                                con.terminate()  # never hand a half-dead connection out again
                            raise
        except FinAgentError:
            raise
        except Exception as exc:
            raise failure(exc, doing, self._where) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


_DROP_ATTEMPTS: Final = 10
_BUSY = (
    asyncpg.exceptions.InternalServerError,  # "tuple concurrently deleted" (a job's catalog row)
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.LockNotAvailableError,
)
