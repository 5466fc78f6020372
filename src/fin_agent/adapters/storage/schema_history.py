"""The SQL of every released store schema version, for DuckDB and PostgreSQL: history, never edited.

`DUCKDB[n]` and `POSTGRES[n]` bring a database at version n - 1 to version n; each store applies
the missing ones in order, in a transaction each (`DuckDBStore.migrate`, `timescale_migrations`).
Version 1 was generated from `rows.TABLES` as it stood then and is kept here as text, so a
change of `TABLES` cannot rewrite it: a change is a new version appended for both engines (and
`SCHEMA_VERSION` bumped). Tests pin the digests of the released texts and check that a database
migrated through all of them has exactly the columns of `TABLES`.

- v1: the event log and the projection tables, unique on (key, time).
- v2: the daily bar cache: bars by symbol and session, and each symbol's covered range (plain
  tables, outside `TABLES`).
- v3: `config_version` (the config's content hash, `''` when unknown) on the projections of the
  events that carry one: `scan_candidates`, `scan_rejections`, `plans`, `orders`, `trades`. Rows
  stored before keep `''`; their events in `events` still hold the version. TimescaleDB adds a
  NOT NULL column with a default to a compressed hypertable from 2.6.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

_DUCKDB_V1: Final = """\
CREATE TABLE IF NOT EXISTS "events" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "type" VARCHAR NOT NULL,
    "version" INTEGER NOT NULL,
    "trace" VARCHAR NOT NULL,
    "data" JSON NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "bars_1m" (
    "symbol" VARCHAR NOT NULL,
    "start" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "open" DECIMAL(20, 6) NOT NULL,
    "high" DECIMAL(20, 6) NOT NULL,
    "low" DECIMAL(20, 6) NOT NULL,
    "close" DECIMAL(20, 6) NOT NULL,
    "volume" BIGINT NOT NULL,
    "event_id" VARCHAR NOT NULL,
    PRIMARY KEY ("symbol", "start")
);
CREATE TABLE IF NOT EXISTS "scan_candidates" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "rank" INTEGER NOT NULL,
    "side" VARCHAR NOT NULL,
    "prev_close" DECIMAL(20, 6) NOT NULL,
    "pm_last" DECIMAL(20, 6) NOT NULL,
    "pm_volume" BIGINT,
    "gap_pct" DECIMAL(20, 6) NOT NULL,
    "atr" DECIMAL(20, 6) NOT NULL,
    "adv" DECIMAL(20, 6) NOT NULL,
    "history_bars" INTEGER NOT NULL,
    "headline_count" INTEGER NOT NULL,
    "top_headline" VARCHAR,
    "skipped_rules" VARCHAR NOT NULL,
    PRIMARY KEY ("event_id", "symbol", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "scan_rejections" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "rule" VARCHAR NOT NULL,
    "detail" VARCHAR NOT NULL,
    "gap_pct" DECIMAL(20, 6),
    PRIMARY KEY ("event_id", "symbol", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "plans" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "plan_id" VARCHAR NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "side" VARCHAR NOT NULL,
    "rank" INTEGER NOT NULL,
    "entry" DECIMAL(20, 6) NOT NULL,
    "stop" DECIMAL(20, 6) NOT NULL,
    "target" DECIMAL(20, 6) NOT NULL,
    "qty" INTEGER NOT NULL,
    "atr" DECIMAL(20, 6) NOT NULL,
    "or_high" DECIMAL(20, 6) NOT NULL,
    "or_low" DECIMAL(20, 6) NOT NULL,
    "entry_from" TIMESTAMPTZ NOT NULL,
    "entry_until" TIMESTAMPTZ NOT NULL,
    "strategy" VARCHAR NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "plan_states" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "plan_id" VARCHAR NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "state" VARCHAR NOT NULL,
    "detail" VARCHAR NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "orders" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "client_order_id" VARCHAR NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "side" VARCHAR NOT NULL,
    "qty" INTEGER NOT NULL,
    "trigger" DECIMAL(20, 6) NOT NULL,
    "stop" DECIMAL(20, 6) NOT NULL,
    "target" DECIMAL(20, 6) NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "fills" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "client_order_id" VARCHAR NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "side" VARCHAR NOT NULL,
    "kind" VARCHAR NOT NULL,
    "qty" INTEGER NOT NULL,
    "price" DECIMAL(20, 6) NOT NULL,
    "commission" DECIMAL(20, 6) NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "trades" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "plan_id" VARCHAR NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "side" VARCHAR NOT NULL,
    "qty" INTEGER NOT NULL,
    "entry_price" DECIMAL(20, 6) NOT NULL,
    "exit_price" DECIMAL(20, 6) NOT NULL,
    "entry_at" TIMESTAMPTZ NOT NULL,
    "exit_at" TIMESTAMPTZ NOT NULL,
    "exit_reason" VARCHAR NOT NULL,
    "gross_pnl" DECIMAL(20, 6) NOT NULL,
    "commission" DECIMAL(20, 6) NOT NULL,
    "net_pnl" DECIMAL(20, 6) NOT NULL,
    "r_multiple" DECIMAL(20, 6) NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "daily_reports" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "strategy" VARCHAR NOT NULL,
    "candidates" INTEGER NOT NULL,
    "plans" INTEGER NOT NULL,
    "plans_rejected" INTEGER NOT NULL,
    "start_equity" DECIMAL(20, 6) NOT NULL,
    "end_equity" DECIMAL(20, 6) NOT NULL,
    "net_pnl" DECIMAL(20, 6) NOT NULL,
    "gross_pnl" DECIMAL(20, 6) NOT NULL,
    "commissions" DECIMAL(20, 6) NOT NULL,
    "trades" INTEGER NOT NULL,
    "wins" INTEGER NOT NULL,
    "losses" INTEGER NOT NULL,
    "win_rate" DECIMAL(20, 6) NOT NULL,
    "avg_r" DECIMAL(20, 6) NOT NULL,
    "max_drawdown" DECIMAL(20, 6) NOT NULL,
    "max_drawdown_pct" DECIMAL(20, 6) NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "errors" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "source" VARCHAR NOT NULL,
    "code" VARCHAR NOT NULL,
    "message" VARCHAR NOT NULL,
    "severity" VARCHAR NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
CREATE TABLE IF NOT EXISTS "risk_states" (
    "event_id" VARCHAR NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "trading_day" DATE NOT NULL,
    "previous" VARCHAR NOT NULL,
    "current" VARCHAR NOT NULL,
    "reason" VARCHAR NOT NULL,
    "detail" VARCHAR NOT NULL,
    PRIMARY KEY ("event_id", "occurred_at")
);
"""

_DUCKDB_V2: Final = """\
CREATE TABLE IF NOT EXISTS "daily_bars" (
    "symbol" VARCHAR NOT NULL,
    "session" DATE NOT NULL,
    "open" DECIMAL(20, 6) NOT NULL,
    "high" DECIMAL(20, 6) NOT NULL,
    "low" DECIMAL(20, 6) NOT NULL,
    "close" DECIMAL(20, 6) NOT NULL,
    "volume" BIGINT NOT NULL,
    PRIMARY KEY ("symbol", "session")
);
CREATE TABLE IF NOT EXISTS "daily_bar_coverage" (
    "symbol" VARCHAR PRIMARY KEY,
    "first_day" DATE NOT NULL,
    "last_day" DATE NOT NULL,
    CHECK ("first_day" <= "last_day")
);
"""

_DUCKDB_V3: Final = """\
ALTER TABLE "scan_candidates" ADD COLUMN "config_version" VARCHAR NOT NULL DEFAULT '';
ALTER TABLE "scan_rejections" ADD COLUMN "config_version" VARCHAR NOT NULL DEFAULT '';
ALTER TABLE "plans" ADD COLUMN "config_version" VARCHAR NOT NULL DEFAULT '';
ALTER TABLE "orders" ADD COLUMN "config_version" VARCHAR NOT NULL DEFAULT '';
ALTER TABLE "trades" ADD COLUMN "config_version" VARCHAR NOT NULL DEFAULT '';
"""

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

DUCKDB: Final[Mapping[int, str]] = {1: _DUCKDB_V1, 2: _DUCKDB_V2, 3: _DUCKDB_V3}
"""DuckDB: schema version -> the SQL that brings a database at the version before to it."""
POSTGRES: Final[Mapping[int, str]] = {1: _POSTGRES_V1, 2: _POSTGRES_V2, 3: _POSTGRES_V3}
"""PostgreSQL: schema version -> the SQL that brings a schema at the version before to it."""
