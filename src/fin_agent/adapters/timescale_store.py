"""`TimescaleStore`: the store port on PostgreSQL through an asyncpg pool, TimescaleDB when there.

Each write is one transaction: every table's rows are COPied into a temporary staging table, then
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` moves the new ones across, so a redelivered event
adds nothing. Every connection's `search_path` is the store's schema. A lost connection or a
database that is down raises `AdapterError` (transient); the pool reconnects on the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import date
from decimal import Decimal
from typing import Final, TypeVar
from urllib.parse import urlparse

import asyncpg
import structlog

from fin_agent.adapters.event_codec import EventCodec
from fin_agent.adapters.store_queries import (
    Query,
    days_query,
    decode_event,
    events_query,
    rows_query,
    table_of,
)
from fin_agent.adapters.store_rows import SIX_PLACES, TABLES, Kind, Projector, RowValues, Table
from fin_agent.adapters.timescale_migrations import (
    Conn,
    apply_migrations,
    check_schema_name,
    enable_timescale,
    ident,
)
from fin_agent.domain.errors import AdapterError, ConfigError, DataError, FinAgentError
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.store import Row, StoreInfo

log = structlog.get_logger(__name__)

T = TypeVar("T")
FEATURES: Final = ("hypertables", "compression", "retention")
_CONNECTION_LOST = (
    OSError,  # TimeoutError included
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)
"""The connection or the server went away: the statement may succeed on a fresh connection."""
_BROKEN = (*_CONNECTION_LOST, asyncpg.exceptions.InternalClientError)
"""Failures after which a connection is not trusted again (the protocol may be mid-error)."""
_UNAVAILABLE = (
    *_BROKEN,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
"""Failures of the connection or the server, not of the statement: transient."""


class TimescaleStore:
    """Events and their projections in PostgreSQL; hypertables when `timescaledb` is installed."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        codec: EventCodec,
        *,
        schema: str,
        where: str,
        bars_retention_days: int | None = 365,
        ping_timeout_secs: float = 2.0,
    ) -> None:
        self._pool = pool
        self._codec = codec
        self._projector = Projector(codec)
        self._schema = schema
        self._where = where
        self._bars_retention_days = bars_retention_days
        self._ping_timeout_secs = ping_timeout_secs
        self._closed = False

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
        bars_retention_days: int | None = 365,
        ping_timeout_secs: float = 2.0,
    ) -> TimescaleStore:
        """Open a pool on `dsn` whose connections use `schema`; AdapterError when unreachable."""
        check_schema_name(schema)
        if bars_retention_days is not None and bars_retention_days < 1:
            raise ConfigError(
                f"bars_retention_days is {bars_retention_days}: use at least 1, or None to keep "
                "every bar"
            )
        where = describe_dsn(dsn)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout_secs,
                timeout=connect_timeout_secs,
                server_settings={
                    "search_path": ident(schema),
                    "application_name": f"fin_agent {schema}"[:63],
                    "client_min_messages": "warning",  # no NOTICE for each IF NOT EXISTS
                },
            )
        except Exception as exc:
            raise _failure(exc, "connect", where) from exc
        return cls(
            pool,
            codec,
            schema=schema,
            where=where,
            bars_retention_days=bars_retention_days,
            ping_timeout_secs=ping_timeout_secs,
        )

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._schema

    # -- the port ---------------------------------------------------------------------------------

    async def migrate(self) -> StoreInfo:
        """Apply missing migrations, add the TimescaleDB features when available, say which."""

        async def run(con: Conn) -> StoreInfo:
            version = await apply_migrations(con, self._schema)
            timescale = await enable_timescale(
                con, self._schema, bars_retention_days=self._bars_retention_days
            )
            if timescale.version is not None:
                return StoreInfo(
                    backend="timescaledb",
                    schema_version=version,
                    features=FEATURES,
                    detail=f"timescaledb {timescale.version}",
                )
            return StoreInfo(
                backend="postgresql",
                schema_version=version,
                detail=f"plain PostgreSQL tables: {timescale.problem}",
            )

        info = await self._with_connection(run, "migrate the store schema")
        await self._pool.expire_connections()  # staging tables are re-created in the new shape
        log.info(
            "store_ready",
            backend=info.backend,
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

        async def run(con: Conn) -> int:
            new = 0
            async with con.transaction():
                for name, rows in tables.items():
                    inserted = await _copy_insert(con, TABLES[name], rows)
                    if name == "events":
                        new = inserted
            return new

        return await self._with_connection(run, f"write {len(events)} events")

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
        records = await self._fetch(query, doing=f"read {table}")
        return [dict(r.items()) for r in records]

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        records = await self._fetch(days_query(schema=self._schema), doing="read the days")
        return [r["trading_day"] for r in records]

    async def ping(self) -> None:
        """`SELECT 1` within `ping_timeout_secs`; AdapterError when the database does not answer."""

        async def run(con: Conn) -> None:
            await con.fetchval("SELECT 1", timeout=self._ping_timeout_secs)

        try:
            async with asyncio.timeout(self._ping_timeout_secs * 3):  # with a retry's reconnect
                await self._with_connection(run, "ping")
        except TimeoutError as exc:
            raise _failure(exc, "ping", self._where) from exc

    async def close(self) -> None:
        """Close every connection of the pool (idempotent); the store cannot be used afterwards."""
        self._closed = True
        await self._pool.close()

    # -- tests and tools ------------------------------------------------------------------------

    async def drop_schema(self) -> None:
        """Drop the store's schema and everything in it (tests and throwaway stores only)."""

        async def run(con: Conn) -> None:
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
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as con:
                    try:
                        return await run(con)
                    except _BROKEN:
                        with contextlib.suppress(asyncpg.InterfaceError):  # already released
                            con.terminate()  # never hand a half-dead connection out again
                        raise
            except FinAgentError:
                raise
            except _BROKEN as exc:
                if attempt == 1 and not isinstance(exc, TimeoutError):
                    log.warning("store_connection_lost", doing=doing, error=str(exc))
                    # the server likely dropped every connection (a restart): replace them all
                    await self._pool.expire_connections()
                    continue
                raise _failure(exc, doing, self._where) from exc
            except Exception as exc:
                raise _failure(exc, doing, self._where) from exc
        raise AssertionError("unreachable")  # pragma: no cover


async def _copy_insert(con: Conn, table: Table, rows: list[RowValues]) -> int:
    """COPY `rows` into the staging twin of `table`, move the new ones across; return how many."""
    stage = ident(f"stage_{table.name}")
    names = ", ".join(ident(n) for n in table.names)
    await con.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {ident(table.name)} INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    await con.copy_records_to_table(
        f"stage_{table.name}", records=_six_places(table, rows), columns=table.names
    )
    status = await con.execute(
        f"INSERT INTO {ident(table.name)} ({names}) "  # noqa: S608 - names come from TABLES
        f"SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
    )
    return int(status.rsplit(" ", 1)[-1])


def _six_places(table: Table, rows: list[RowValues]) -> list[RowValues]:
    """Numbers rounded half-even to the column's 6 places, as the other stores round them.

    The projector rounds its figures but not bar prices; PostgreSQL would round a split-adjusted
    price half away from zero, so a store could hold a different last digit than DuckDB.
    """
    numeric = [i for i, c in enumerate(table.columns) if c.kind is Kind.NUMERIC]
    if not numeric:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i in numeric:
            value = values[i]
            if isinstance(value, Decimal):
                values[i] = value.quantize(SIX_PLACES)
        out.append(tuple(values))
    return out


def describe_dsn(dsn: str) -> str:
    """`host:port/database` of a DSN, without user or password, for messages and logs."""
    try:
        url = urlparse(dsn)
        port = url.port or 5432
    except ValueError:
        return "the configured DSN"
    return f"{url.hostname or 'localhost'}:{port}{url.path or '/'}"


def _failure(exc: BaseException, doing: str, where: str) -> FinAgentError:
    """The error-tree exception for an asyncpg or socket failure, with what to check."""
    if isinstance(exc, FinAgentError):
        return exc
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return ConfigError(
            f"cannot {doing}: PostgreSQL at {where} refused the login ({reason}): check the user "
            "and password (the DSN or the store password secret)"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return ConfigError(
            f"cannot {doing}: {reason}: create the database at {where} or fix the DSN"
        )
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return ConfigError(
            f"cannot {doing}: {reason}: grant the store's user rights on the database and schema "
            "(or connect as the owner)"
        )
    if isinstance(exc, asyncpg.UndefinedTableError):
        return ConfigError(f"cannot {doing}: {reason}: run migrate() before using the store")
    if isinstance(exc, asyncpg.DataError):
        return DataError(f"cannot {doing}: PostgreSQL refused a value ({reason})")
    if isinstance(exc, _UNAVAILABLE):
        return AdapterError(
            f"cannot {doing}: PostgreSQL at {where} is unreachable ({reason}): check the host "
            "and port of the DSN and that PostgreSQL is running and accepting connections"
        )
    return AdapterError(f"cannot {doing}: PostgreSQL at {where} failed ({reason})")
