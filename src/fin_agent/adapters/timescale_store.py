"""`TimescaleStore`: the store port on PostgreSQL through an asyncpg pool, TimescaleDB when there.

Each write is one transaction: every table's rows are COPied into a temporary staging table, then
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` moves the new ones across, so a redelivered event
adds nothing. Every connection's `search_path` is the store's schema. A lost connection or a
database that is down raises `AdapterError` (transient); the pool reconnects on the next call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import date
from typing import Final, TypeVar
from urllib.parse import urlparse

import asyncpg
import structlog

from fin_agent.adapters.event_codec import EventCodec
from fin_agent.adapters.event_codec_values import format_datetime
from fin_agent.adapters.store_rows import TABLES, Projector, RowValues, Table
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
_UNAVAILABLE = (
    *_CONNECTION_LOST,
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

        info = await self._with_connection(run, "migrate the store schema", retry=True)
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

        return await self._with_connection(run, f"write {len(events)} events", retry=True)

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        """Stored events in time order (then id), filtered by trading day and type."""
        _check_limit(limit)
        records = await self._fetch(
            "SELECT type, version, event_id, occurred_at, trace, data::text AS data FROM events "
            "WHERE ($1::date IS NULL OR trading_day = $1) "
            "AND ($2::text[] IS NULL OR type = ANY($2::text[])) "
            "ORDER BY occurred_at, event_id LIMIT $3",
            day,
            None if types is None else list(types),
            limit,
            doing="read events",
        )
        return [
            self._codec.decode(
                {
                    "type": r["type"],
                    "v": str(r["version"]),
                    "id": r["event_id"],
                    "ts": format_datetime(r["occurred_at"]),
                    "trace": r["trace"],
                    "data": r["data"],
                }
            ).event
            for r in records
        ]

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        """Rows of a projection table, oldest first (then by key), as plain Python values."""
        spec = TABLES.get(table)
        if spec is None:
            raise DataError(f"no table {table!r}: the store has {', '.join(sorted(TABLES))}")
        _check_limit(limit)
        columns = ", ".join(
            f"{ident(c.name)}::text AS {ident(c.name)}" if c.kind == "json" else ident(c.name)
            for c in spec.columns
        )
        order = ", ".join(map(ident, _order(spec)))
        records = await self._fetch(
            f"SELECT {columns} FROM {ident(spec.name)} "  # noqa: S608 - names come from TABLES
            f"WHERE ($1::date IS NULL OR trading_day = $1) ORDER BY {order} LIMIT $2",
            day,
            limit,
            doing=f"read {table}",
        )
        return [dict(r.items()) for r in records]

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        records = await self._fetch(
            "SELECT DISTINCT trading_day FROM events ORDER BY trading_day", doing="read the days"
        )
        return [r["trading_day"] for r in records]

    async def ping(self) -> None:
        """`SELECT 1` within `ping_timeout_secs`; AdapterError when the database does not answer."""

        async def run(con: Conn) -> None:
            await con.fetchval("SELECT 1", timeout=self._ping_timeout_secs)

        try:
            async with asyncio.timeout(self._ping_timeout_secs * 3):  # retry and reconnect included
                await self._with_connection(run, "ping", retry=True)
        except TimeoutError as exc:
            raise _failure(exc, "ping", self._where) from exc

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    # -- tests and tools ------------------------------------------------------------------------

    async def drop_schema(self) -> None:
        """Drop the store's schema and everything in it (tests and throwaway stores only)."""

        async def run(con: Conn) -> None:
            await con.execute(f"DROP SCHEMA IF EXISTS {ident(self._schema)} CASCADE")

        await self._with_connection(run, f"drop schema {self._schema}", retry=True)
        await self._pool.expire_connections()

    # -- helpers --------------------------------------------------------------------------------

    async def _fetch(self, sql: str, *args: object, doing: str) -> list[asyncpg.Record]:
        async def run(con: Conn) -> list[asyncpg.Record]:
            return list(await con.fetch(sql, *args))

        return await self._with_connection(run, doing, retry=True)

    async def _with_connection(
        self, run: Callable[[Conn], Awaitable[T]], doing: str, *, retry: bool
    ) -> T:
        """Run `run` on a pooled connection, mapping failures onto the error tree.

        A connection the server dropped while it sat in the pool (a restart, `pg_terminate_backend`)
        fails its first statement; everything here is idempotent (writes skip stored events, and
        a failed transaction stored nothing), so it is tried once more on a fresh connection.
        """
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as con:
                    return await run(con)
            except FinAgentError:
                raise
            except _CONNECTION_LOST as exc:
                if retry and attempt == 1 and not isinstance(exc, TimeoutError):
                    log.warning("store_connection_lost", doing=doing, error=str(exc))
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
    await con.copy_records_to_table(f"stage_{table.name}", records=rows, columns=table.names)
    status = await con.execute(
        f"INSERT INTO {ident(table.name)} ({names}) "  # noqa: S608 - names come from TABLES
        f"SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
    )
    return int(status.rsplit(" ", 1)[-1])


def _order(table: Table) -> tuple[str, ...]:
    """Oldest first, then by the rest of the unique key: a total, stable order."""
    return (table.time_column, *(c for c in table.key if c != table.time_column))


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, got {limit}")


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
