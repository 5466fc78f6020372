"""The TimescaleDB features of a `TimescaleStore` schema, each on only where the server can have it.

`enable_timescale` runs at every `migrate()`, after the migrations, in one transaction under the
schema's advisory lock; every step is idempotent, so tables made before TimescaleDB was there are
converted (their rows migrated) and a changed setting is applied at the next start:

- hypertables: every table of `TABLES` on its time column;
- compression and live-only retention, as the settings ask (`timescale_policies`);
- continuous aggregates `bars_5m` and `bars_1d` of `bars_1m` (`candles`), refreshed in the
  background and, for the window asked, before each read.

Anything the server cannot do is left off with a warning naming the fix: the extension missing,
installed but not preloaded (the session that tries `CREATE EXTENSION` then is killed, so it is
never tried), a version too old for a feature (`timescale_policies.NEEDS`), or a step refused by a
version newer than this code knows. Without hypertables the tables stay plain PostgreSQL tables,
and `Timescale.detail` says so.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Final

import asyncpg
import structlog
from asyncpg import PostgresError

from fin_agent.adapters.storage.candles import CAGGS, cagg_sql
from fin_agent.adapters.storage.rows import TABLES, Table
from fin_agent.adapters.storage.timescale_migrations import LOCK, Conn, ident
from fin_agent.adapters.storage.timescale_policies import (
    COMPRESSION,
    CONTINUOUS_AGGREGATES,
    HYPERTABLES,
    RETENTION,
    Found,
    Policies,
    refused,
    set_compression,
    set_retention,
    too_old,
    version_tuple,
)
from fin_agent.domain.errors import ConfigError

__all__ = [
    "COMPRESSION",
    "CONTINUOUS_AGGREGATES",
    "HYPERTABLES",
    "RETENTION",
    "Policies",
    "Timescale",
    "delete_schema_jobs",
    "enable_timescale",
    "installed_timescale",
    "preloaded",
    "version_tuple",
]

log = structlog.get_logger(__name__)

PRELOAD_FIX: Final = (
    "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL"
)
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
        old = too_old(HYPERTABLES, version)
        if old:
            return _plain(old)
        ts = ident(ext_schema)
        found = Found()
        try:
            async with con.transaction():  # a savepoint: a refusal leaves plain tables
                for table in TABLES.values():
                    await _hypertable(con, schema, ext_schema, table)
        except PostgresError as exc:
            return _plain(refused(HYPERTABLES, version, exc))
        found.features.append(HYPERTABLES)
        days = policies.compress_after_days
        await _step(
            con, COMPRESSION, version, found, set_compression(con, schema, ts, version, days, found)
        )
        days = policies.bars_retention_days
        await _step(
            con, RETENTION, version, found, set_retention(con, schema, ts, version, days, found)
        )
        aggregates = _continuous_aggregates(con, schema, ts, version, found)
        await _step(con, CONTINUOUS_AGGREGATES, version, found, aggregates)
    return Timescale(
        version=version,
        ext_schema=ext_schema,
        features=tuple(found.features),
        problems=tuple(found.problems),
        notes=tuple(found.notes),
    )


async def _step(con: Conn, feature: str, version: str, found: Found, step: Awaitable[None]) -> None:
    """One feature's step in a savepoint: a step this TimescaleDB refuses (a newer one than this
    code knows, say) turns that feature off with a warning and leaves the others on."""
    try:
        async with con.transaction():
            await step
    except PostgresError as exc:
        found.off(feature, refused(feature, version, exc))


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
    """Plain tables when the library is not preloaded (`check_loadable` refused the database
    already when the extension is created in it)."""
    if installed is not None:  # a session opened before the extension was created: say so now
        raise ConfigError(extension_not_loadable())
    available = await con.fetchval(
        "SELECT true FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if not available:
        return _plain("the timescaledb extension is not available on this server")
    return _plain(f"timescaledb is installed but not preloaded: {PRELOAD_FIX}")


_NOT_LOADABLE: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') "
    "AND NOT EXISTS (SELECT 1 FROM pg_settings "
    "WHERE name = 'timescaledb.bgw_launcher_poll_time' AND vartype = 'integer')"
)
"""The extension is created in this database, but the server does not preload it (`_PRELOADED`)."""


def extension_not_loadable() -> str:
    """The error of a database holding the extension on a server that does not preload it."""
    return (
        "this database has the timescaledb extension but the server does not preload it, so "
        f"PostgreSQL ends every session that changes a table: {PRELOAD_FIX}"
    )


async def check_loadable(con: Conn | asyncpg.Connection[asyncpg.Record]) -> None:
    """ConfigError when the database holds timescaledb but the server does not preload it: then
    any DDL (a temporary table, a migration) loads the library and the server ends the session,
    which would look like an outage. Run on every new connection, before anything else."""
    if await con.fetchval(_NOT_LOADABLE):
        raise ConfigError(extension_not_loadable())


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


async def _continuous_aggregates(
    con: Conn, schema: str, ts: str, version: str, found: Found
) -> None:
    old = too_old(CONTINUOUS_AGGREGATES, version)
    if old:
        found.off(CONTINUOUS_AGGREGATES, old)
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
        found.off(CONTINUOUS_AGGREGATES, refused(CONTINUOUS_AGGREGATES, version, exc))
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
