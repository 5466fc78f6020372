"""How `TimescaleStore` writes a batch: COPY first, checked when something is stored already.

Each write is one transaction. A new batch is COPied straight into the tables; when a unique index
refuses that (something in it is stored already) it is rolled back and the batch goes in checked:
the `events` rows are COPied into a temporary staging table, then `INSERT ... SELECT ... ON
CONFLICT DO NOTHING RETURNING` moves the new ones across and names them, and only those events'
rows of the other tables follow, the bars through a staging table too (`bars_1m` is keyed by
symbol and start: another event may have stored a bar). A redelivered event adds nothing, also
when its rows sit in a compressed chunk (TimescaleDB 2.11 and later check unique keys there).
"""

from __future__ import annotations

from typing import Final

import asyncpg

from fin_agent.adapters.storage.rows import TABLES, RowValues, Table, new_rows
from fin_agent.adapters.storage.timescale_features import check_loadable, version_tuple
from fin_agent.adapters.storage.timescale_migrations import SQL_TYPES, Conn, ident

__all__ = ["CREATE_STAGES", "checks_compressed_chunks", "create_stages", "write_batch"]

STAGED: Final = ("events", "bars_1m")
"""The tables a checked write moves from a staging table with `ON CONFLICT DO NOTHING`."""


def _stage_sql(table: Table) -> str:
    columns = ", ".join(f"{ident(c.name)} {SQL_TYPES[c.kind]}" for c in table.columns)
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {ident('stage_' + table.name)} ({columns}) "
        "ON COMMIT DELETE ROWS"
    )


def _move_sql(table: Table) -> str:
    names = ", ".join(ident(n) for n in table.names)
    return (
        f"INSERT INTO {ident(table.name)} ({names}) "  # noqa: S608 - names come from TABLES
        f"SELECT {names} FROM {ident('stage_' + table.name)} ON CONFLICT DO NOTHING"
    )


CREATE_STAGES: Final = ";\n".join(_stage_sql(TABLES[name]) for name in STAGED)
"""The staging tables, typed from `TABLES` (not LIKE the store's tables: a connection opens
before `migrate()` creates them), without indexes, emptied at every commit."""
_MOVE_EVENTS: Final = _move_sql(TABLES["events"]) + ' RETURNING "event_id"'
_MOVE_BARS: Final = _move_sql(TABLES["bars_1m"])


async def create_stages(con: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's `init`: each new connection's staging tables, once (after `check_loadable`:
    creating them would end the session of a database that cannot load its timescaledb)."""
    await check_loadable(con)
    await con.execute(CREATE_STAGES)


async def write_batch(con: Conn, tables: dict[str, list[RowValues]], *, copy_first: bool) -> int:
    """The batch in one transaction; the number of new `events` rows.

    Most batches are new throughout, so with `copy_first` every table's rows are first COPied
    straight in, as a bare bulk load would. Anything stored already (a redelivered event, a bar
    another event carried) makes a unique index refuse that COPY: the transaction is rolled back
    (PostgreSQL logs the refusal) and the batch goes in checked instead (`_write_checked`).
    """
    if copy_first:
        try:
            async with con.transaction():
                for name, rows in tables.items():
                    await con.copy_records_to_table(name, records=rows, columns=TABLES[name].names)
            return len(tables["events"])  # one row per event: the projector drops repeats
        except asyncpg.UniqueViolationError:
            pass  # rolled back, nothing stored: check this time
    return await _write_checked(con, tables)


async def _write_checked(con: Conn, tables: dict[str, list[RowValues]]) -> int:
    """The batch in one transaction, skipping what is stored: `events` staged and moved with `ON
    CONFLICT DO NOTHING RETURNING` the new ids, the bars of those events likewise (another event may
    have stored a bar), their other rows COPied straight in (they cannot be stored yet)."""
    async with con.transaction():
        await con.copy_records_to_table(
            "stage_events", records=tables["events"], columns=TABLES["events"].names
        )
        new = {event_id for (event_id,) in await con.fetch(_MOVE_EVENTS)}
        for name, rows in new_rows(tables, new).items():
            columns = TABLES[name].names
            if name == "bars_1m":
                await con.copy_records_to_table("stage_bars_1m", records=rows, columns=columns)
                await con.execute(_MOVE_BARS)
            else:
                await con.copy_records_to_table(name, records=rows, columns=columns)
    return len(new)


def checks_compressed_chunks(timescale: str | None) -> bool:
    """Whether a plain COPY is refused for every row its table's unique index already holds, so
    writes may COPY first: on plain PostgreSQL (`timescale` None), and on TimescaleDB from 2.11,
    which checks compressed chunks too (before, a duplicate of a compressed row went in unnoticed,
    and the store always writes checked)."""
    return timescale is None or version_tuple(timescale) >= (2, 11)
