"""The DuckDB store's migrations: the SQL of every released schema version, frozen history.

`DUCKDB[n]` brings a file at version n - 1 to version n (`DuckDBStore.migrate`); never edit one.
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

_DUCKDB_V4: Final = """\
CREATE TABLE IF NOT EXISTS "scan_records" (
    "record" VARCHAR PRIMARY KEY,
    "trading_day" DATE NOT NULL,
    "taken_at" TIMESTAMPTZ NOT NULL,
    "prev_session" DATE,
    "seq" INTEGER NOT NULL UNIQUE,
    "symbols" INTEGER NOT NULL,
    "daily_bars" INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS "scan_inputs" (
    "record" VARCHAR NOT NULL,
    "position" INTEGER NOT NULL,
    "symbol" VARCHAR NOT NULL,
    "sessions" VARCHAR NOT NULL,
    "bars" INTEGER NOT NULL,
    "pm_last" VARCHAR,
    "pm_volume" BIGINT,
    "pm_as_of" TIMESTAMPTZ,
    "pm_quoted_prev_close" VARCHAR,
    "headlines" VARCHAR
);
CREATE TABLE IF NOT EXISTS "scan_bars" (
    "symbol" VARCHAR NOT NULL,
    "session" DATE NOT NULL,
    "seq" INTEGER NOT NULL,
    "open" VARCHAR NOT NULL,
    "high" VARCHAR NOT NULL,
    "low" VARCHAR NOT NULL,
    "close" VARCHAR NOT NULL,
    "volume" BIGINT NOT NULL
);
"""

DUCKDB: Final[Mapping[int, str]] = {
    1: _DUCKDB_V1,
    2: _DUCKDB_V2,
    3: _DUCKDB_V3,
    4: _DUCKDB_V4,
}
"""Every released version, its SQL never edited: a schema change is a new version appended here and
in `timescale_migrations` (and `rows.SCHEMA_VERSION` bumped). Version 1 was generated from
`rows.TABLES` as it stood then and is kept as text, so a change of `TABLES` cannot rewrite it.
Tests pin the digests of the released texts and check that a file migrated through all of them
has exactly the columns of `TABLES`.

- v1: the event log and the projection tables, unique on (key, time).
- v2: the daily bar cache: bars by symbol and session, and each symbol's covered range (plain
  tables, outside `TABLES`).
- v3: `config_version` (the config's content hash, `''` when unknown) on the projections of the
  events that carry one: `scan_candidates`, `scan_rejections`, `plans`, `orders`, `trades`. Rows
  stored before keep `''`; their events in `events` still hold the version. TimescaleDB adds a
  NOT NULL column with a default to a compressed hypertable from 2.6.
- v4: the scans' inputs as records (`adapters.storage.scan_record_rows`): `scan_records` (one
  row per record), `scan_inputs` (one per symbol of a record), `scan_bars` (each daily bar a scan
  saw, once per version). Plain tables outside `TABLES`. DuckDB keeps no key index on the two big
  ones (an index per row is memory a year of 7,000-symbol scans does not need): a record's rows
  are written in the one transaction that adds its `scan_records` row, which is keyed.
"""
