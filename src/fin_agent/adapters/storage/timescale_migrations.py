"""The `TimescaleStore` schema: versioned, idempotent migrations.

Migrations are an ordered list of (version, description, SQL), each applied in its own transaction
under a per-schema `pg_advisory_xact_lock` and recorded in `schema_migrations`, so two agents that
start together apply each exactly once; a database at a newer version than this code is refused.
The TimescaleDB features (hypertables, compression, retention, continuous aggregates) are no
migration: `timescale_features.enable_timescale` turns on what the server allows at every start.
The daily bar cache's tables (version 2) stay plain: small, and updated in place. The SQL of each
released version is kept here as text, frozen (what each one changed: `duckdb_migrations.DUCKDB`).
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


# The SQL of each released version, frozen history: never edit one; a change is a new version.
_POSTGRES_V1: Final = """\
CREATE TABLE IF NOT EXISTS "events" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "type" text NOT NULL,
    "version" integer NOT NULL,
    "trace" text NOT NULL,
    "data" jsonb NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "events_key" ON "events" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "events_day" ON "events" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "bars_1m" (
    "symbol" text NOT NULL,
    "start" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "open" numeric(20, 6) NOT NULL,
    "high" numeric(20, 6) NOT NULL,
    "low" numeric(20, 6) NOT NULL,
    "close" numeric(20, 6) NOT NULL,
    "volume" bigint NOT NULL,
    "event_id" text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "bars_1m_key" ON "bars_1m" ("symbol", "start");
CREATE INDEX IF NOT EXISTS "bars_1m_day" ON "bars_1m" (trading_day, "start");
CREATE TABLE IF NOT EXISTS "scan_candidates" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "symbol" text NOT NULL,
    "rank" integer NOT NULL,
    "side" text NOT NULL,
    "prev_close" numeric(20, 6) NOT NULL,
    "pm_last" numeric(20, 6) NOT NULL,
    "pm_volume" bigint,
    "gap_pct" numeric(20, 6) NOT NULL,
    "atr" numeric(20, 6) NOT NULL,
    "adv" numeric(20, 6) NOT NULL,
    "history_bars" integer NOT NULL,
    "headline_count" integer NOT NULL,
    "top_headline" text,
    "skipped_rules" text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "scan_candidates_key" \
ON "scan_candidates" ("event_id", "symbol", "occurred_at");
CREATE INDEX IF NOT EXISTS "scan_candidates_day" \
ON "scan_candidates" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "scan_rejections" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "symbol" text NOT NULL,
    "rule" text NOT NULL,
    "detail" text NOT NULL,
    "gap_pct" numeric(20, 6)
);
CREATE UNIQUE INDEX IF NOT EXISTS "scan_rejections_key" \
ON "scan_rejections" ("event_id", "symbol", "occurred_at");
CREATE INDEX IF NOT EXISTS "scan_rejections_day" \
ON "scan_rejections" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "plans" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "plan_id" text NOT NULL,
    "symbol" text NOT NULL,
    "side" text NOT NULL,
    "rank" integer NOT NULL,
    "entry" numeric(20, 6) NOT NULL,
    "stop" numeric(20, 6) NOT NULL,
    "target" numeric(20, 6) NOT NULL,
    "qty" integer NOT NULL,
    "atr" numeric(20, 6) NOT NULL,
    "or_high" numeric(20, 6) NOT NULL,
    "or_low" numeric(20, 6) NOT NULL,
    "entry_from" timestamptz NOT NULL,
    "entry_until" timestamptz NOT NULL,
    "strategy" text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "plans_key" ON "plans" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "plans_day" ON "plans" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "plan_states" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "plan_id" text NOT NULL,
    "symbol" text NOT NULL,
    "state" text NOT NULL,
    "detail" text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "plan_states_key" \
ON "plan_states" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "plan_states_day" ON "plan_states" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "orders" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "client_order_id" text NOT NULL,
    "symbol" text NOT NULL,
    "side" text NOT NULL,
    "qty" integer NOT NULL,
    "trigger" numeric(20, 6) NOT NULL,
    "stop" numeric(20, 6) NOT NULL,
    "target" numeric(20, 6) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "orders_key" ON "orders" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "orders_day" ON "orders" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "fills" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "client_order_id" text NOT NULL,
    "symbol" text NOT NULL,
    "side" text NOT NULL,
    "kind" text NOT NULL,
    "qty" integer NOT NULL,
    "price" numeric(20, 6) NOT NULL,
    "commission" numeric(20, 6) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "fills_key" ON "fills" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "fills_day" ON "fills" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "trades" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "plan_id" text NOT NULL,
    "symbol" text NOT NULL,
    "side" text NOT NULL,
    "qty" integer NOT NULL,
    "entry_price" numeric(20, 6) NOT NULL,
    "exit_price" numeric(20, 6) NOT NULL,
    "entry_at" timestamptz NOT NULL,
    "exit_at" timestamptz NOT NULL,
    "exit_reason" text NOT NULL,
    "gross_pnl" numeric(20, 6) NOT NULL,
    "commission" numeric(20, 6) NOT NULL,
    "net_pnl" numeric(20, 6) NOT NULL,
    "r_multiple" numeric(20, 6) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "trades_key" ON "trades" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "trades_day" ON "trades" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "daily_reports" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "strategy" text NOT NULL,
    "candidates" integer NOT NULL,
    "plans" integer NOT NULL,
    "plans_rejected" integer NOT NULL,
    "start_equity" numeric(20, 6) NOT NULL,
    "end_equity" numeric(20, 6) NOT NULL,
    "net_pnl" numeric(20, 6) NOT NULL,
    "gross_pnl" numeric(20, 6) NOT NULL,
    "commissions" numeric(20, 6) NOT NULL,
    "trades" integer NOT NULL,
    "wins" integer NOT NULL,
    "losses" integer NOT NULL,
    "win_rate" numeric(20, 6) NOT NULL,
    "avg_r" numeric(20, 6) NOT NULL,
    "max_drawdown" numeric(20, 6) NOT NULL,
    "max_drawdown_pct" numeric(20, 6) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "daily_reports_key" \
ON "daily_reports" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "daily_reports_day" \
ON "daily_reports" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "errors" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "source" text NOT NULL,
    "code" text NOT NULL,
    "message" text NOT NULL,
    "severity" text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "errors_key" ON "errors" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "errors_day" ON "errors" (trading_day, "occurred_at");
CREATE TABLE IF NOT EXISTS "risk_states" (
    "event_id" text NOT NULL,
    "occurred_at" timestamptz NOT NULL,
    "trading_day" date NOT NULL,
    "previous" text NOT NULL,
    "current" text NOT NULL,
    "reason" text NOT NULL,
    "detail" text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "risk_states_key" \
ON "risk_states" ("event_id", "occurred_at");
CREATE INDEX IF NOT EXISTS "risk_states_day" ON "risk_states" (trading_day, "occurred_at");
"""

_POSTGRES_V2: Final = """\
CREATE TABLE IF NOT EXISTS "daily_bars" (
    "symbol" text NOT NULL,
    "session" date NOT NULL,
    "open" numeric(20, 6) NOT NULL,
    "high" numeric(20, 6) NOT NULL,
    "low" numeric(20, 6) NOT NULL,
    "close" numeric(20, 6) NOT NULL,
    "volume" bigint NOT NULL,
    PRIMARY KEY ("symbol", "session")
);
CREATE TABLE IF NOT EXISTS "daily_bar_coverage" (
    "symbol" text PRIMARY KEY,
    "first_day" date NOT NULL,
    "last_day" date NOT NULL,
    CHECK ("first_day" <= "last_day")
);
"""

_POSTGRES_V3: Final = """\
ALTER TABLE "scan_candidates" ADD COLUMN "config_version" text NOT NULL DEFAULT '';
ALTER TABLE "scan_rejections" ADD COLUMN "config_version" text NOT NULL DEFAULT '';
ALTER TABLE "plans" ADD COLUMN "config_version" text NOT NULL DEFAULT '';
ALTER TABLE "orders" ADD COLUMN "config_version" text NOT NULL DEFAULT '';
ALTER TABLE "trades" ADD COLUMN "config_version" text NOT NULL DEFAULT '';
"""

_POSTGRES_V4: Final = """\
CREATE TABLE IF NOT EXISTS "scan_records" (
    "record" text PRIMARY KEY,
    "trading_day" date NOT NULL,
    "taken_at" timestamptz NOT NULL,
    "prev_session" date,
    "seq" integer NOT NULL UNIQUE,
    "symbols" integer NOT NULL,
    "daily_bars" integer NOT NULL
);
CREATE TABLE IF NOT EXISTS "scan_inputs" (
    "record" text NOT NULL,
    "position" integer NOT NULL,
    "symbol" text NOT NULL,
    "sessions" text NOT NULL,
    "bars" integer NOT NULL,
    "pm_last" text,
    "pm_volume" bigint,
    "pm_as_of" timestamptz,
    "pm_quoted_prev_close" text,
    "headlines" text,
    PRIMARY KEY ("record", "position")
);
CREATE TABLE IF NOT EXISTS "scan_bars" (
    "symbol" text NOT NULL,
    "session" date NOT NULL,
    "seq" integer NOT NULL,
    "open" text NOT NULL,
    "high" text NOT NULL,
    "low" text NOT NULL,
    "close" text NOT NULL,
    "volume" bigint NOT NULL,
    PRIMARY KEY ("symbol", "session", "seq")
);
"""


MIGRATIONS: Final[Sequence[Migration]] = (
    Migration(
        version=1,
        description="event log and projection tables, unique on (key, time)",
        sql=_POSTGRES_V1,
    ),
    Migration(
        version=2,
        description="daily bar cache: bars by symbol and session, and each symbol's covered range",
        sql=_POSTGRES_V2,
    ),
    Migration(
        version=3,
        description="config_version on scan_candidates, scan_rejections, plans, orders, trades",
        sql=_POSTGRES_V3,
    ),
    Migration(
        version=4,
        description="scan records: scan_records, scan_inputs and scan_bars (each bar once)",
        sql=_POSTGRES_V4,
    ),
)
"""Every version in order, its SQL frozen above (never edit a released one: change TABLES, bump
SCHEMA_VERSION, append; tests check the versions agree and pin the digests).
v2's daily bar tables are no projection: plain tables (not hypertables), outside TABLES; so are
v4's scan record tables (`scan_record_rows`)."""
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
