"""TimescaleDB's policies on a `TimescaleStore` schema: compression and live-only retention.

Both follow the settings at every start (`Policies`): a changed interval replaces the policy, null
removes it. Compression (`store.compress_after_days`, default 7) compresses the chunks whose rows
are older than that; from TimescaleDB 2.11 only, which checks unique keys in compressed chunks, so
a late or redelivered write is still refused or skipped there. Retention
(`store.bars_retention_days`, default off) is a daily job of this schema's own
(`fin_agent_drop_live_bars`): it drops a `bars_1m` chunk only when the chunk was written live
(created before its time range ended, plus a day of grace) and that range is older than the
setting. A chunk created after its range had passed holds back-dated rows (backtests, replays,
simulations) and is never dropped; TimescaleDB's own retention policy, which drops by the rows'
timestamps and so back-dated rows at once, is removed where an older agent left one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import structlog
from asyncpg import PostgresError

from fin_agent.adapters.storage.rows import TABLES, Table
from fin_agent.adapters.storage.timescale_migrations import Conn, ident
from fin_agent.domain.errors import ConfigError

log = structlog.get_logger(__name__)

HYPERTABLES: Final = "hypertables"
COMPRESSION: Final = "compression"
RETENTION: Final = "retention"
CONTINUOUS_AGGREGATES: Final = "continuous_aggregates"

SEGMENT_BY: Final[Mapping[str, tuple[str, ...]]] = {"bars_1m": ("symbol",), "events": ("type",)}
"""Compression segments: the columns queries filter on; the other tables stay unsegmented."""
RETENTION_PROC: Final = "fin_agent_drop_live_bars"
LIVE_GRACE: Final = "1 day"
"""How long after its time range ended a chunk may be created and still count as written live."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policies:
    """What the settings ask of TimescaleDB (`store.compress_after_days`, `bars_retention_days`)."""

    compress_after_days: int | None = 7
    bars_retention_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("compress_after_days", "bars_retention_days"):
            days = getattr(self, name)
            if days is not None and days < 1:
                raise ConfigError(f"{name} is {days}: use at least 1, or null to turn it off")


@dataclass(slots=True)
class Found:
    """What `enable_timescale` turned on, and why anything is off (each logged)."""

    features: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def off(self, feature: str, problem: str) -> None:
        log.warning("store_feature_unavailable", feature=feature, problem=problem)
        self.problems.append(problem)


NEEDS: Final[Mapping[str, tuple[tuple[int, int], str]]] = {
    HYPERTABLES: ((2, 0), "this agent knows TimescaleDB 2.x"),
    COMPRESSION: (
        (2, 11),
        "older versions do not check unique keys in compressed chunks, so a redelivered event "
        "could be stored twice",
    ),
    RETENTION: (
        (2, 13),
        "older versions do not record when a chunk was created, which tells live bars from "
        "back-dated ones",
    ),
    CONTINUOUS_AGGREGATES: (
        (2, 8),
        "older versions cannot bucket a continuous aggregate by the exchange's time zone",
    ),
}
"""Each feature's oldest TimescaleDB, and why."""
FALLBACK: Final[Mapping[str, str]] = {
    HYPERTABLES: "the tables stay plain",
    COMPRESSION: "chunks stay uncompressed",
    RETENTION: "every bar is kept",
    CONTINUOUS_AGGREGATES: "candles are computed from bars_1m",
}
"""What the store does instead when a feature is off."""


def too_old(feature: str, version: str) -> str | None:
    """Why `feature` is off on TimescaleDB `version`, naming the fix, or None when it can be on."""
    needed, why = NEEDS[feature]
    if version_tuple(version) >= needed:
        return None
    return (
        f"{feature.replace('_', ' ')} off, {FALLBACK[feature]}: timescaledb {version} is older "
        f"than {needed[0]}.{needed[1]} ({why}): ALTER EXTENSION timescaledb UPDATE after "
        "installing a newer TimescaleDB 2.x"
    )


def refused(feature: str, version: str, exc: Exception) -> str:
    """Why `feature` is off when this TimescaleDB refused a step of it (a newer one, say)."""
    return (
        f"{feature.replace('_', ' ')} off, {FALLBACK[feature]}: timescaledb {version} refused it "
        f"({type(exc).__name__}: {exc}); this agent was tested with TimescaleDB 2.x"
    )


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of an extension version such as `2.28.3` or `2.11.0-dev`; (0, 0) if none."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


async def set_compression(
    con: Conn, schema: str, ts: str, version: str, days: int | None, found: Found
) -> None:
    if days is None:
        await _drop_compression_policies(con, schema, ts)
        found.notes.append("compression off (store.compress_after_days is null)")
        return
    old = too_old(COMPRESSION, version)
    if old:
        await _drop_compression_policies(con, schema, ts)
        found.off(COMPRESSION, old)
        return
    try:
        async with con.transaction():
            for table in TABLES.values():
                await _compress(con, schema, ts, table, days)
    except PostgresError as exc:
        found.off(COMPRESSION, refused(COMPRESSION, version, exc))
        return
    found.features.append(COMPRESSION)
    found.notes.append(f"compression after {days} days")


async def _compress(con: Conn, schema: str, ts: str, table: Table, days: int) -> None:
    relation = f"{ident(schema)}.{ident(table.name)}"
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
    same = await con.fetchval(
        "SELECT (config->>'compress_after')::interval = make_interval(days => $3::int) "
        "FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' "
        "AND hypertable_schema = $1 AND hypertable_name = $2",
        schema,
        table.name,
        days,
    )
    if same:
        return
    if same is not None:  # another interval: replace it
        await con.execute(
            f"SELECT {ts}.remove_compression_policy($1::regclass, if_exists => TRUE)", relation
        )
    await con.execute(
        f"SELECT {ts}.add_compression_policy($1::regclass, "
        "compress_after => make_interval(days => $2::int))",
        relation,
        days,
    )


async def _drop_compression_policies(con: Conn, schema: str, ts: str) -> None:
    """Remove the compression policies (chunks compressed already stay so, and readable)."""
    for table in TABLES.values():
        await con.execute(
            f"SELECT {ts}.remove_compression_policy($1::regclass, if_exists => TRUE)",
            f"{ident(schema)}.{ident(table.name)}",
        )


def retention_proc_sql(schema: str, ts: str) -> str:
    """The job that drops the live `bars_1m` chunks past the retention (see the module doc)."""
    return f"""\
CREATE OR REPLACE PROCEDURE {ident(schema)}.{ident(RETENTION_PROC)}(job_id integer, config jsonb)
LANGUAGE plpgsql AS $proc$
DECLARE
    chunk record;
BEGIN
    FOR chunk IN
        SELECT c.range_start, c.range_end FROM timescaledb_information.chunks c
        WHERE c.hypertable_schema = config->>'schema' AND c.hypertable_name = 'bars_1m'
          AND c.range_end < now() - make_interval(days => (config->>'keep_days')::int)
          AND c.chunk_creation_time < c.range_end + INTERVAL '{LIVE_GRACE}'
    LOOP
        PERFORM {ts}.drop_chunks(
            format('%I.%I', config->>'schema', 'bars_1m')::regclass,
            older_than => chunk.range_end + INTERVAL '1 microsecond',
            newer_than => chunk.range_start - INTERVAL '1 microsecond');
    END LOOP;
END
$proc$"""  # noqa: S608 - quoted identifiers and constants, no values


async def retention_job(con: Conn, schema: str) -> tuple[int, int] | None:
    """The live-bars retention job of `schema`: (job id, days kept), or None."""
    row = await con.fetchrow(
        "SELECT job_id, (config->>'keep_days')::int FROM timescaledb_information.jobs "
        "WHERE proc_schema = $1 AND proc_name = $2",
        schema,
        RETENTION_PROC,
    )
    return None if row is None else (int(row[0]), int(row[1]))


async def set_retention(
    con: Conn, schema: str, ts: str, version: str, days: int | None, found: Found
) -> None:
    bars = f"{ident(schema)}.{ident('bars_1m')}"
    # TimescaleDB's own policy drops by the rows' timestamps, back-dated rows at once: never.
    removed = await con.fetchval(
        "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' "
        "AND hypertable_schema = $1 AND hypertable_name = 'bars_1m'",
        schema,
    )
    if removed:
        await con.execute(f"SELECT {ts}.remove_retention_policy($1::regclass)", bars)
        log.warning("store_retention_policy_removed", schema=schema, table="bars_1m")
    job = await retention_job(con, schema)
    if days is None:
        if job is not None:
            await con.execute(f"SELECT {ts}.delete_job($1)", job[0])
        found.notes.append("every bar kept (store.bars_retention_days is null)")
        return
    old = too_old(RETENTION, version)
    if old:
        if job is not None:
            await con.execute(f"SELECT {ts}.delete_job($1)", job[0])
        found.off(RETENTION, old)
        return
    try:
        async with con.transaction():
            await con.execute(retention_proc_sql(schema, ts))
            if job is None:
                await con.execute(
                    f"SELECT {ts}.add_job($1::regproc, INTERVAL '1 day', "
                    "config => jsonb_build_object('schema', $2::text, 'keep_days', $3::int))",
                    f"{ident(schema)}.{ident(RETENTION_PROC)}",
                    schema,
                    days,
                )
            elif job[1] != days:
                await con.execute(
                    f"SELECT {ts}.alter_job($1, config => jsonb_build_object('schema', "
                    "$2::text, 'keep_days', $3::int))",
                    job[0],
                    schema,
                    days,
                )
    except PostgresError as exc:
        found.off(RETENTION, refused(RETENTION, version, exc))
        return
    found.features.append(RETENTION)
    found.notes.append(f"live bars dropped after {days} days, back-dated bars kept")
