"""`DuckDBStore`: the embedded default `Store`, one DuckDB file (or an in-memory database).

DuckDB allows one writing process per file and its Python connection is synchronous, so the store
holds ONE connection and runs every call on a worker thread (`asyncio.to_thread`) under an
`asyncio.Lock`. A write is one transaction: each table's rows go in as one Arrow table (DuckDB's
docs: faster than the appender for data already in Arrow; `executemany` is orders of magnitude
slower), plainly; when a key is stored already that transaction is rolled back and the batch goes
in checking, `events` first with `ON CONFLICT DO NOTHING RETURNING` the new ids, then only the new
events' rows (`_write`). Reads come back through Arrow too: the DB-API's TIMESTAMPTZ conversion
needs pytz, Arrow's does not. The daily bar cache (`daily_bar_cache()`) runs on the same connection
under the same locks. `migrate()` applies the missing versions of `duckdb_migrations.DUCKDB` in
one transaction.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import duckdb
import pyarrow as pa

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.storage.candles import candles_query
from fin_agent.adapters.storage.duckdb_daily_bars import DuckDBDailyBarCache
from fin_agent.adapters.storage.duckdb_migrations import DUCKDB
from fin_agent.adapters.storage.duckdb_scan_records import DuckDBScanRecords
from fin_agent.adapters.storage.queries import (
    EVENT_COLUMNS,
    Query,
    days_query,
    decode_event,
    events_query,
    quote,
    rows_query,
    table_of,
)
from fin_agent.adapters.storage.rows import (
    SCHEMA_VERSION,
    TABLES,
    Kind,
    Projector,
    RowValues,
    Table,
    new_rows,
)
from fin_agent.adapters.storage.scan_record_rows import BarMemo
from fin_agent.domain.errors import AdapterError, DataError
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.daily_bar_cache import DailyBarCache
from fin_agent.ports.scan_records import ScanRecords
from fin_agent.ports.store import CandleWidth, Row, StoreInfo

__all__ = ["DuckDBStore"]

T = TypeVar("T")
Connection = duckdb.DuckDBPyConnection
EventRow = tuple[str, datetime, str, int, str, str]

ARROW_TYPES: Final[dict[Kind, pa.DataType]] = {
    Kind.TEXT: pa.string(),
    Kind.INT: pa.int32(),
    Kind.BIGINT: pa.int64(),
    Kind.NUMERIC: pa.decimal128(20, 6),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.DATE: pa.date32(),
    Kind.JSON: pa.string(),
}
MIGRATIONS_TABLE: Final = "schema_migrations"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE: Final = date(1970, 1, 1)


class DuckDBStore:
    """The `Store` in a DuckDB file (`path`), or in memory when `path` is None."""

    def __init__(
        self, path: Path | None, codec: EventCodec, *, memory_limit: str | None = None
    ) -> None:
        """`memory_limit`: DuckDB's `memory_limit` (`512MB`), the bound of its buffer cache;
        None leaves DuckDB's default (80 % of the machine's RAM)."""
        self._path = path
        self._memory_limit = memory_limit
        self._codec = codec
        self._projector = Projector(codec)
        self._lock = asyncio.Lock()
        # A call cancelled while its thread runs releases the asyncio lock early; this lock keeps
        # the next call off the connection until that thread is done.
        self._thread_lock = threading.Lock()
        self._con: Connection | None = None
        self._closed = False
        self._memo = BarMemo()  # the scan records' bars known stored, across their calls

    @property
    def _where(self) -> str:
        return ":memory:" if self._path is None else str(self._path)

    async def migrate(self) -> StoreInfo:
        """Create or upgrade the schema (idempotent); a newer schema than the code is refused."""
        version = await self._run("migrate", self._migrate)
        return StoreInfo(
            backend="duckdb", schema_version=version, features=("embedded",), detail=self._where
        )

    async def write(self, events: Sequence[DomainEvent]) -> int:
        """Store `events` and their projections in one transaction; return how many were new."""
        if not events:
            return 0
        tables = self._projector.rows(events)
        return await self._run("write", lambda con: _write(con, tables))

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        """Stored events by occurred_at then id, filtered by trading day and type."""
        query = events_query(day=day, types=types, limit=limit)
        found = await self._run("events", lambda con: _fetch(con, query))
        columns = [found[name] for name in EVENT_COLUMNS]
        rows = cast(list[EventRow], list(zip(*columns, strict=True)))
        return [
            decode_event(
                self._codec,
                event_id=event_id,
                occurred_at=occurred_at,
                event_type=event_type,
                version=version,
                trace=trace,
                data=data,
            )
            for event_id, occurred_at, event_type, version, trace, data in rows
        ]

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        """Rows of a projection table, oldest first (by its time column, then its key)."""
        query = rows_query(table_of(table), day=day, limit=limit)
        return _rows(await self._run("rows", lambda con: _fetch(con, query)))

    async def candles(
        self, width: CandleWidth, *, day: date | None = None, symbol: str | None = None
    ) -> Sequence[Row]:
        """Minute bars bucketed by `width` with DuckDB's `time_bucket` (`candles`)."""
        query = candles_query(width, dialect="duckdb", day=day, symbol=symbol)
        return _rows(await self._run("candles", lambda con: _fetch(con, query)))

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        query = days_query()
        found = await self._run("days", lambda con: _fetch(con, query))
        return [d for d in found["trading_day"] if isinstance(d, date)]

    def daily_bar_cache(self) -> DailyBarCache:
        """The daily bar cache in this file, on the store's connection (`DuckDBDailyBarCache`)."""
        return DuckDBDailyBarCache(self._run)

    def scan_records(self) -> ScanRecords:
        """The scan records in this file, on the store's connection (`DuckDBScanRecords`)."""
        return DuckDBScanRecords(self._run, self._memo)

    async def ping(self) -> None:
        """Raise `AdapterError` unless the database answers `SELECT 1`."""
        try:
            await self._run("ping", lambda con: con.execute("SELECT 1").fetchall())
        except duckdb.Error as exc:  # not an I/O or connection failure, yet not ready either
            raise AdapterError(self._failure("ping", exc)) from exc

    async def close(self) -> None:
        """Close the connection (idempotent); the store cannot be used afterwards."""
        async with self._lock:
            self._closed = True
            await asyncio.to_thread(self._disconnect)

    async def _run(self, what: str, call: Callable[[Connection], T]) -> T:
        async with self._lock:
            if self._closed:
                raise AdapterError(f"DuckDB store {self._where} is closed: open a new DuckDBStore")
            try:
                return await asyncio.to_thread(self._call, call)
            except duckdb.OperationalError as exc:  # I/O and connection failures: transient
                raise AdapterError(self._failure(what, exc)) from exc
            except duckdb.CatalogException as exc:  # our SQL names only the schema's tables
                line = str(exc).splitlines()[0]  # the rest guesses at other tables
                raise DataError(
                    f"DuckDB store {self._where}: {what} failed ({line}): call migrate() first"
                ) from exc

    def _failure(self, what: str, exc: duckdb.Error) -> str:
        if "no space left" in str(exc).lower():
            fix = "its disk is full: free space on that volume; writing resumes by itself"
        elif isinstance(exc, duckdb.IOException):
            fix = (
                "check that its folder exists and is writable, and that no other process has "
                "the file open (DuckDB allows one writing process per file)"
            )
        else:
            fix = "retry, and restart the agent if it persists"
        return f"DuckDB store {self._where}: {what} failed ({exc}): {fix}"

    def _call(self, call: Callable[[Connection], T]) -> T:
        with self._thread_lock:
            if self._con is None:
                config: dict[str, str | bool | int | float | list[str]] = {}
                if self._memory_limit is not None:
                    config["memory_limit"] = self._memory_limit
                self._con = duckdb.connect(self._where, config=config)
                self._con.execute("SET TimeZone = 'UTC'")
            return call(self._con)

    def _disconnect(self) -> None:
        with self._thread_lock:
            con, self._con = self._con, None
            if con is not None:
                con.close()

    def _migrate(self, con: Connection) -> int:
        if max(DUCKDB) != SCHEMA_VERSION:
            raise RuntimeError(
                f"add schema version {SCHEMA_VERSION}'s DuckDB SQL to duckdb_migrations.DUCKDB"
            )
        con.begin()
        try:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {quote(MIGRATIONS_TABLE)} "
                '("version" INTEGER PRIMARY KEY, "applied_at" TIMESTAMPTZ NOT NULL)'
            )
            [(current,)] = con.execute(
                f'SELECT coalesce(max("version"), 0) FROM {quote(MIGRATIONS_TABLE)}'  # noqa: S608
            ).fetchall()
            if current > SCHEMA_VERSION:
                raise DataError(
                    f"DuckDB store {self._where} has schema version {current}, newer than "
                    f"version {SCHEMA_VERSION} this fin_agent knows: upgrade fin_agent, or use "
                    "another store file"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                con.execute(DUCKDB[version])
                con.execute(
                    f"INSERT INTO {quote(MIGRATIONS_TABLE)} VALUES ($1, current_timestamp)",  # noqa: S608
                    [version],
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return SCHEMA_VERSION


def _write(con: Connection, tables: dict[str, list[RowValues]]) -> int:
    """Insert the batch in one transaction; the number of new `events` rows.

    Most batches are new throughout, so the first attempt inserts every row plainly (an `ON
    CONFLICT` clause costs DuckDB about as much again as the insert). A stored event or bar makes
    it fail on its key; it is rolled back (it stored nothing) and the batch is written again
    checking: `events` with `ON CONFLICT DO NOTHING RETURNING` the new ids, then `bars_1m` (keyed
    by symbol and start, so `ON CONFLICT` too) and the other tables' rows of the new events only,
    plainly, since in this transaction they cannot be stored yet. A redelivered batch then touches
    `events` alone.
    """
    try:
        return _insert(con, tables, checked=False)
    except duckdb.ConstraintException:
        return _insert(con, tables, checked=True)


def _insert(con: Connection, tables: dict[str, list[RowValues]], *, checked: bool) -> int:
    """One transaction of `_write`: every row plainly, or `checked` for stored ones."""
    sql = _CHECKED if checked else _PLAIN
    con.begin()
    try:
        # Each INSERT reads the Arrow table in the local `incoming_arrow` through DuckDB's
        # replacement scan of this frame: half the cost of register + unregister, or of a
        # relation's insert_into, which for the small tables is most of the insert.
        incoming_arrow = _arrow(TABLES["events"], tables["events"])
        if checked:
            new = {event_id for (event_id,) in con.execute(sql["events"]).fetchall()}
            rest = new_rows(tables, new)
            added = len(new)
        else:
            con.execute(sql["events"])
            rest = {name: rows for name, rows in tables.items() if name != "events"}
            added = len(tables["events"])  # one row per event: the projector drops repeats
        for name, rows in rest.items():
            incoming_arrow = _arrow(TABLES[name], rows)  # noqa: F841 - the INSERT reads it
            con.execute(sql[name])
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return added


def _insert_sql(table: Table, *, checked: bool) -> str:
    columns = ", ".join(quote(c) for c in table.names)
    sql = (
        f"INSERT INTO {quote(table.name)} ({columns}) "  # noqa: S608 - names from TABLES
        f"SELECT {columns} FROM incoming_arrow"
    )
    if not checked:
        return sql
    if table.name == "events":
        return sql + ' ON CONFLICT DO NOTHING RETURNING "event_id"'
    if table.name == "bars_1m":  # keyed by symbol and start: another event may hold the bar
        return sql + " ON CONFLICT DO NOTHING"
    return sql  # keyed by the event id: new_rows hands over the new events' rows only


_PLAIN: Final = {name: _insert_sql(table, checked=False) for name, table in TABLES.items()}
_CHECKED: Final = {name: _insert_sql(table, checked=True) for name, table in TABLES.items()}


def _arrow(table: Table, rows: list[RowValues]) -> pa.Table:
    """`rows` (tuples in column order) as an Arrow table typed like the SQL table."""
    values = list(zip(*rows, strict=True))
    return pa.table(
        {c.name: pa.array(values[i], type=ARROW_TYPES[c.kind]) for i, c in enumerate(table.columns)}
    )


def _fetch(con: Connection, query: Query) -> dict[str, list[object]]:
    """The result of `query` column by column, as Python values (timestamps in `datetime.UTC`)."""
    result = con.sql(query.sql, params=list(query.params)).to_arrow_table()
    return {
        name: _python(column)
        for name, column in zip(result.column_names, result.columns, strict=True)
    }


def _rows(found: dict[str, list[object]]) -> list[Row]:
    names = list(found)
    return [dict(zip(names, values, strict=True)) for values in zip(*found.values(), strict=True)]


def _python(column: pa.ChunkedArray[Any]) -> list[object]:
    """A column's Python values. Times and dates go through their integers and a memo: Arrow's
    own conversion of an aware timestamp costs ~12 µs a value, and a day's bars share few."""
    if pa.types.is_timestamp(column.type):
        micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        return _memo(micros, lambda us: EPOCH + timedelta(microseconds=us))
    if pa.types.is_date32(column.type):
        days = column.cast(pa.int32()).to_pylist()
        return _memo(days, lambda n: EPOCH_DATE + timedelta(days=n))
    return column.to_pylist()


def _memo(raw: list[int | None], convert: Callable[[int], object]) -> list[object]:
    seen: dict[int, object] = {}
    out: list[object] = []
    for value in raw:
        if value is None:
            out.append(None)
            continue
        found = seen.get(value)
        if found is None:
            found = seen[value] = convert(value)
        out.append(found)
    return out
