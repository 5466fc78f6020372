"""The `TimescaleStore` schema: versioned, idempotent migrations.

Migrations are an ordered list of (version, description, SQL), each applied in its own transaction
under a per-schema `pg_advisory_xact_lock` and recorded in `schema_migrations`, so two agents that
start together apply each exactly once; a database at a newer version than this code is refused.
The TimescaleDB features (hypertables, compression, retention, continuous aggregates) are no
migration: `timescale_features.enable_timescale` turns on what the server allows at every start.
The daily bar cache's tables (version 2) stay plain: small, and updated in place.
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
    Record,
    UniqueViolationError,
)
from asyncpg.pool import PoolConnectionProxy

from fin_agent.adapters.storage.rows import Kind
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
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
LOCK: Final = "SELECT pg_advisory_xact_lock(hashtext('fin_agent.store'), hashtext($1))"
"""The schema's lock: migrations and the TimescaleDB features of one schema, one agent at a time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema version: what it does and the SQL that gets there from the previous one."""

    version: int
    description: str
    sql: str


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
            await con.execute(LOCK, schema)
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
        await con.execute(LOCK, schema)
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
