"""The TimescaleDB features of a `TimescaleStore` schema, each on only where the server can have it.

`enable_timescale` runs at every `migrate()`, after the migrations, in one transaction under the
schema's advisory lock; every step is idempotent, so tables made before TimescaleDB was there are
converted (their rows migrated) and a changed setting is applied at the next start. What it does:

- hypertables: every table of `TABLES` on its time column;
- compression (`Policies.compress_after_days`, default 7): chunks whose rows are older than that
  are compressed in the background. Only from TimescaleDB 2.11, which checks unique keys in
  compressed chunks too, so a late or redelivered write is still refused or skipped there;
- retention (`Policies.bars_retention_days`, default off): a daily job drops the `bars_1m` chunks
  written live (created before their time range ended, plus a day of grace) once that range is
  older than the setting. A chunk created after its range had passed holds back-dated rows
  (backtests, replays, simulations) and is never dropped. Needs chunk creation times (2.13);
- continuous aggregates `bars_5m` and `bars_1d` of `bars_1m` (`timescale_candles`), refreshed in
  the background and, for the window asked, before each read.

Anything the server cannot do is left off with a warning naming the fix: the extension missing,
installed but not preloaded (the session that tries `CREATE EXTENSION` then is killed, so it is
never tried), a version too old for a feature, or a step that fails on a version newer than this
code knows. The tables then stay plain PostgreSQL tables, and `Timescale.detail` says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import structlog
from asyncpg import PostgresError

from fin_agent.adapters.storage.candles import CAGGS, cagg_sql
from fin_agent.adapters.storage.rows import TABLES, Table
from fin_agent.adapters.storage.timescale_migrations import LOCK, Conn, ident
from fin_agent.domain.errors import ConfigError

log = structlog.get_logger(__name__)

HYPERTABLES: Final = "hypertables"
COMPRESSION: Final = "compression"
RETENTION: Final = "retention"
CONTINUOUS_AGGREGATES: Final = "continuous_aggregates"

PRELOAD_FIX: Final = (
    "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL"
)
SEGMENT_BY: Final[Mapping[str, tuple[str, ...]]] = {"bars_1m": ("symbol",), "events": ("type",)}
"""Compression segments: the columns queries filter on; the other tables stay unsegmented."""
RETENTION_PROC: Final = "fin_agent_drop_live_bars"
LIVE_GRACE: Final = "1 day"
"""How long after its time range ended a chunk may be created and still count as written live."""
CAGG_REFRESH_EVERY: Final = "15 minutes"

_EXTENSION_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtext('fin_agent.store'), hashtext('timescaledb'))"
)
_PRELOADED: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_settings "
    "WHERE name = 'timescaledb.bgw_launcher_poll_time' AND vartype = 'integer')"
)
"""A setting only the preloaded loader defines (a line in postgresql.conf alone makes a string
placeholder): readable by any user, unlike `shared_preload_libraries`."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Timescale:
    """What is on: the extension's version (None: plain tables) and schema, the features, notes
    on the policies, and why any feature is off."""

    version: str | None
    ext_schema: str = "public"
    features: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        """One line for `store_ready` and `fin-agent db migrate`: the mode and what is off."""
        head = "plain PostgreSQL tables" if self.version is None else f"timescaledb {self.version}"
        return "; ".join((head, *self.notes, *self.problems))


@dataclass(slots=True)
class _Found:
    features: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def off(self, feature: str, problem: str) -> None:
        log.warning("store_feature_unavailable", feature=feature, problem=problem)
        self.problems.append(problem)


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of an extension version such as `2.28.3` or `2.11.0-dev`; (0, 0) if none."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


async def enable_timescale(con: Conn, schema: str, policies: Policies) -> Timescale:
    """Turn on what the server allows (idempotent); plain tables, with the reason, otherwise."""
    async with con.transaction():
        await con.execute(LOCK, schema)
        await con.execute(_EXTENSION_LOCK)
        installed = await installed_timescale(con)
        if not await con.fetchval(_PRELOADED):
            return await _not_preloaded(con, schema, installed)
        if installed is None:
            problem = await _create_extension(con)
            if problem:
                return _plain(problem)
            installed = await installed_timescale(con)
            if installed is None:
                return _plain("the timescaledb extension did not install: check the server log")
        version, ext_schema = installed
        if version_tuple(version) < (2, 0):
            return _plain(
                f"timescaledb {version} is older than 2.0, which this agent needs: run ALTER "
                "EXTENSION timescaledb UPDATE (TimescaleDB 2.x)"
            )
        ts = ident(ext_schema)
        found = _Found()
        try:
            async with con.transaction():  # a savepoint: a refusal leaves plain tables
                for table in TABLES.values():
                    await _hypertable(con, schema, ext_schema, table)
        except PostgresError as exc:
            return _plain(
                f"timescaledb {version} refused create_hypertable ({exc}): this agent knows "
                "TimescaleDB 2.x; the tables stay plain"
            )
        found.features.append(HYPERTABLES)
        await _compression(con, schema, ts, version, policies.compress_after_days, found)
        await _retention(con, schema, ts, version, policies.bars_retention_days, found)
        await _continuous_aggregates(con, schema, ts, version, found)
    return Timescale(
        version=version,
        ext_schema=ext_schema,
        features=tuple(found.features),
        problems=tuple(found.problems),
        notes=tuple(found.notes),
    )


def _plain(problem: str) -> Timescale:
    log.warning("store_plain_tables", reason=problem)
    return Timescale(version=None, problems=(problem,))


async def installed_timescale(con: Conn) -> tuple[str, str] | None:
    """The installed extension's version and schema in this database, or None."""
    row = await con.fetchrow(
        "SELECT e.extversion, n.nspname FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb'"
    )
    return None if row is None else (str(row[0]), str(row[1]))


async def preloaded(con: Conn) -> bool:
    """Whether the server preloads timescaledb (without it, its functions end the session)."""
    return bool(await con.fetchval(_PRELOADED))


async def _not_preloaded(con: Conn, schema: str, installed: tuple[str, str] | None) -> Timescale:
    """Plain tables when the library is not preloaded; refused when the schema has hypertables."""
    available = installed is not None or await con.fetchval(
        "SELECT true FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if not available:
        return _plain("the timescaledb extension is not available on this server")
    if installed is not None and await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable WHERE schema_name = $1)",
        schema,
    ):
        raise ConfigError(
            f"the tables of schema {schema!r} are TimescaleDB hypertables but the server does not "
            f"preload timescaledb: {PRELOAD_FIX}"
        )
    return _plain(f"timescaledb is installed but not preloaded: {PRELOAD_FIX}")


async def _create_extension(con: Conn) -> str:
    """CREATE EXTENSION in a savepoint; the problem, or '' when it is there now."""
    try:
        async with con.transaction():
            await con.execute("CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public")
    except PostgresError as exc:
        return (
            f"CREATE EXTENSION timescaledb failed ({exc}): have a superuser run it in this database"
        )
    return ""


async def _function_exists(con: Conn, ext_schema: str, name: str) -> bool:
    found = await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = $1 AND p.proname = $2)",
        ext_schema,
        name,
    )
    return bool(found)


async def _hypertable(con: Conn, schema: str, ext_schema: str, table: Table) -> None:
    relation = f"{ident(schema)}.{ident(table.name)}"
    ts = ident(ext_schema)
    if await _function_exists(con, ext_schema, "by_range"):  # 2.13+: the generalized API
        await con.execute(
            f"SELECT {ts}.create_hypertable($1::regclass, {ts}.by_range($2::name), "
            "if_not_exists => TRUE, migrate_data => TRUE)",
            relation,
            table.time_column,
        )
        return
    await con.execute(
        f"SELECT {ts}.create_hypertable(relation => $1::regclass, time_column_name => $2::name, "
        "if_not_exists => TRUE, migrate_data => TRUE)",
        relation,
        table.time_column,
    )


async def _compression(
    con: Conn, schema: str, ts: str, version: str, days: int | None, found: _Found
) -> None:
    if days is None:
        await _drop_compression_policies(con, schema, ts)
        found.notes.append("compression off (store.compress_after_days is null)")
        return
    if version_tuple(version) < (2, 11):
        await _drop_compression_policies(con, schema, ts)
        found.off(
            COMPRESSION,
            f"compression off: timescaledb {version} does not check unique keys in compressed "
            "chunks, so a redelivered event could be stored twice: upgrade to 2.11 or newer",
        )
        return
    try:
        async with con.transaction():
            for table in TABLES.values():
                await _compress(con, schema, ts, table, days)
    except PostgresError as exc:
        found.off(COMPRESSION, f"compression off: timescaledb {version} refused it ({exc})")
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


async def _retention(
    con: Conn, schema: str, ts: str, version: str, days: int | None, found: _Found
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
    has_creation_time = await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = "
        "'timescaledb_information' AND table_name = 'chunks' "
        "AND column_name = 'chunk_creation_time')"
    )
    if not has_creation_time:
        if job is not None:
            await con.execute(f"SELECT {ts}.delete_job($1)", job[0])
        found.off(
            RETENTION,
            f"retention off, every bar kept: timescaledb {version} does not record when a chunk "
            "was created, which tells live bars from back-dated ones: upgrade to 2.13 or newer",
        )
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
        found.off(RETENTION, f"retention off, every bar kept: timescaledb {version} ({exc})")
        return
    found.features.append(RETENTION)
    found.notes.append(f"live bars dropped after {days} days, back-dated bars kept")


async def _continuous_aggregates(
    con: Conn, schema: str, ts: str, version: str, found: _Found
) -> None:
    if version_tuple(version) < (2, 8):
        found.off(
            CONTINUOUS_AGGREGATES,
            f"no continuous aggregates: timescaledb {version} cannot bucket by the exchange's "
            "time zone in one: upgrade to 2.8 or newer (candles are computed from bars_1m)",
        )
        return
    try:
        async with con.transaction():
            for name in CAGGS:
                await con.execute(cagg_sql(name, schema, ts))
                await con.execute(
                    f"SELECT {ts}.add_continuous_aggregate_policy($1::regclass, "
                    "start_offset => NULL, end_offset => NULL, "
                    f"schedule_interval => INTERVAL '{CAGG_REFRESH_EVERY}', if_not_exists => TRUE)",
                    f"{ident(schema)}.{ident(name)}",
                )
    except PostgresError as exc:
        found.off(
            CONTINUOUS_AGGREGATES,
            f"no continuous aggregates: timescaledb {version} refused them ({exc}); candles "
            "are computed from bars_1m",
        )
        return
    found.features.append(CONTINUOUS_AGGREGATES)
    found.notes.append(f"continuous aggregates {' and '.join(CAGGS)}")


async def delete_schema_jobs(con: Conn, schema: str) -> None:
    """Delete every job of `schema`: its tables' policies and its own procedures' (a dropped
    schema would leave those scheduled), so that none is at work while the schema is dropped."""
    installed = await installed_timescale(con)
    if installed is None or not await preloaded(con):
        return
    await con.execute(
        f"SELECT {ident(installed[1])}.delete_job(job_id) "  # noqa: S608 - a quoted name
        "FROM timescaledb_information.jobs WHERE proc_schema = $1 OR hypertable_schema = $1",
        schema,
    )
