"""The `TimescaleStore` schema: versioned, idempotent migrations and the TimescaleDB features.

Migrations are an ordered list of (version, description, SQL), each applied in its own transaction
under a per-schema `pg_advisory_xact_lock` and recorded in `schema_migrations`, so two agents that
start together apply each exactly once; a database at a newer version than this code is refused.
When the `timescaledb` extension is available, each table of `TABLES` becomes a hypertable on its
time column, compressed after 7 days, and `bars_1m` gets a retention policy. That step is idempotent
and runs at every start, so tables created before the extension was installed are converted (data
migrated). The daily bar cache's tables (version 2) stay plain: small, and updated in place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import structlog
from asyncpg import (
    DuplicateObjectError,
    DuplicateSchemaError,
    DuplicateTableError,
    PostgresError,
    Record,
    UniqueViolationError,
)
from asyncpg.pool import PoolConnectionProxy

from fin_agent.adapters.storage.rows import TABLES, Kind, Table
from fin_agent.adapters.storage.schema_history import POSTGRES
from fin_agent.domain.errors import ConfigError

log = structlog.get_logger(__name__)

Conn: TypeAlias = "PoolConnectionProxy[Record]"

SQL_TYPES: Final[Mapping[Kind, str]] = {
    Kind.TEXT: "text",
    Kind.INT: "integer",
    Kind.BIGINT: "bigint",
    Kind.NUMERIC: "numeric(20, 6)",
    Kind.TIMESTAMP: "timestamptz",
    Kind.DATE: "date",
    Kind.JSON: "jsonb",
}
COMPRESS_AFTER: Final = "7 days"
SEGMENT_BY: Final[Mapping[str, tuple[str, ...]]] = {"bars_1m": ("symbol",), "events": ("type",)}
"""Compression segments: the columns queries filter on; the other tables stay unsegmented."""

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fin_agent.store'), hashtext($1))"
_EXTENSION_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('fin_agent.store'), hashtext('timescaledb'))"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema version: what it does and the SQL that gets there from the previous one."""

    version: int
    description: str
    sql: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Timescale:
    """Whether the TimescaleDB features are on: the extension's version, or why they are off."""

    version: str | None
    problem: str = ""


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def check_schema_name(schema: str) -> str:
    """The schema name, or ConfigError when it is not a plain lowercase identifier."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(
            f"store schema {schema!r} is not a valid name: use lowercase letters, digits and "
            "underscores, at most 63, not starting with a digit"
        )
    return schema


MIGRATIONS: Final[Sequence[Migration]] = (
    Migration(
        version=1,
        description="event log and projection tables, unique on (key, time)",
        sql=POSTGRES[1],
    ),
    Migration(
        version=2,
        description="daily bar cache: bars by symbol and session, and each symbol's covered range",
        sql=POSTGRES[2],
    ),
    Migration(
        version=3,
        description="config_version on scan_candidates, scan_rejections, plans, orders, trades",
        sql=POSTGRES[3],
    ),
)
"""Every version in order, its SQL frozen in `schema_history.POSTGRES` (never edit a released one:
change TABLES, bump SCHEMA_VERSION, append; tests check the versions agree and pin the digests).
v2's daily bar tables are no projection: plain tables (not hypertables), outside TABLES."""
LATEST_VERSION: Final = MIGRATIONS[-1].version


_CREATED_MEANWHILE = (
    UniqueViolationError,
    DuplicateSchemaError,
    DuplicateTableError,
    DuplicateObjectError,
)
"""What `CREATE ... IF NOT EXISTS` raises for an object another agent created while this one waited
for the lock: taking an advisory lock does not refresh the session's catalog cache, which may still
say the schema is missing (seen on connections holding a temporary table, as the store's pooled
connections do). The next transaction starts with a fresh cache, so it is run once more."""


async def apply_migrations(con: Conn, schema: str) -> int:
    """Create the schema and apply every missing migration; return the version now in place."""
    try:
        current = await _create_schema(con, schema)
    except _CREATED_MEANWHILE:
        log.info("store_schema_created_meanwhile", schema=schema)
        current = await _create_schema(con, schema)
    if current > LATEST_VERSION:
        raise ConfigError(
            f"the database schema {schema!r} is at version {current} but this agent knows "
            f"versions up to {LATEST_VERSION}: upgrade the agent (or point it at another schema)"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        async with con.transaction():
            await con.execute(_LOCK, schema)
            if await _version(con) >= migration.version:
                continue  # another agent applied it while this one waited for the lock
            await con.execute(migration.sql)
            await con.execute(
                "INSERT INTO schema_migrations (version, applied_at, description) "
                "VALUES ($1, now(), $2)",
                migration.version,
                migration.description,
            )
        log.info(
            "store_migration_applied",
            schema=schema,
            version=migration.version,
            description=migration.description,
        )
    return await _version(con)


async def _create_schema(con: Conn, schema: str) -> int:
    """The schema and its `schema_migrations` table, made when missing; the version in place."""
    async with con.transaction():
        await con.execute(_LOCK, schema)
        await con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
        await con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now(),"
            " description text NOT NULL)"
        )
        return await _version(con)


async def _version(con: Conn) -> int:
    version = await con.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
    return int(version)


async def enable_timescale(con: Conn, schema: str, *, bars_retention_days: int | None) -> Timescale:
    """Turn the tables into compressed hypertables when `timescaledb` is available (idempotent)."""
    async with con.transaction():
        await con.execute(_LOCK, schema)
        await con.execute(_EXTENSION_LOCK)
        installed = await _installed(con)
        if installed is None:
            available = await con.fetchval(
                "SELECT true FROM pg_available_extensions WHERE name = 'timescaledb'"
            )
            if not available:
                return Timescale(version=None, problem="the timescaledb extension is not available")
            try:
                async with con.transaction():  # a savepoint: a refusal leaves plain tables
                    await con.execute(
                        "CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public"
                    )
            except PostgresError as exc:
                return Timescale(
                    version=None,
                    problem=f"CREATE EXTENSION timescaledb failed ({exc}): install it as a "
                    "superuser and preload it (shared_preload_libraries)",
                )
            installed = await _installed(con)
            if installed is None:
                return Timescale(version=None, problem="the timescaledb extension did not install")
        version, ext_schema = installed
        for table in TABLES.values():
            await _hypertable(con, schema, ident(ext_schema), table)
        await _retention(con, schema, ident(ext_schema), bars_retention_days)
    return Timescale(version=version)


async def _installed(con: Conn) -> tuple[str, str] | None:
    row = await con.fetchrow(
        "SELECT e.extversion, n.nspname FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb'"
    )
    return None if row is None else (str(row[0]), str(row[1]))


async def _hypertable(con: Conn, schema: str, ts: str, table: Table) -> None:
    relation = f"{ident(schema)}.{ident(table.name)}"
    await con.execute(
        f"SELECT {ts}.create_hypertable(relation => $1::regclass, time_column_name => $2::name, "
        "if_not_exists => TRUE, migrate_data => TRUE)",
        relation,
        table.time_column,
    )
    enabled = await con.fetchval(
        "SELECT compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = $1 AND hypertable_name = $2",
        schema,
        table.name,
    )
    if not enabled:
        segment_by = SEGMENT_BY.get(table.name, ())
        # plain names: TimescaleDB parses these option strings itself
        order_by = [f"{table.time_column} DESC"] + [
            c for c in table.key if c != table.time_column and c not in segment_by
        ]
        options = [
            "timescaledb.compress",
            f"timescaledb.compress_orderby = '{', '.join(order_by)}'",
        ]
        if segment_by:
            options.append(f"timescaledb.compress_segmentby = '{', '.join(segment_by)}'")
        await con.execute(f"ALTER TABLE {relation} SET ({', '.join(options)})")
    await con.execute(
        f"SELECT {ts}.add_compression_policy($1::regclass, compress_after => "
        f"INTERVAL '{COMPRESS_AFTER}', if_not_exists => TRUE)",
        relation,
    )


async def _retention(con: Conn, schema: str, ts: str, days: int | None) -> None:
    relation = f"{ident(schema)}.{ident('bars_1m')}"
    same = await con.fetchval(
        "SELECT (config->>'drop_after')::interval = make_interval(days => $3::int) "
        "FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' "
        "AND hypertable_schema = $1 AND hypertable_name = $2",
        schema,
        "bars_1m",
        days or 0,
    )
    if same and days is not None:
        return
    if same is not None:
        await con.execute(
            f"SELECT {ts}.remove_retention_policy($1::regclass, if_exists => TRUE)", relation
        )
    if days is not None:
        await con.execute(
            f"SELECT {ts}.add_retention_policy($1::regclass, "
            "drop_after => make_interval(days => $2::int))",
            relation,
            days,
        )
