"""The read SQL shared by the SQL stores (DuckDB and PostgreSQL), and the checks every store shares.

The same text runs on both engines: `$n` placeholders, quoted identifiers, `= ANY($n)` over a
list of types, and `COLLATE "C"` on text tie-breakers so ties order by code point everywhere (as
the in-memory store orders them), whatever the database's locale.

Public API (small on purpose):
- `table_of(name)`: the `Table` of `TABLES` called `name`, or `DataError` naming the tables.
- `check_limit(limit)`: `ValueError` for a negative limit.
- `rows_query`, `events_query`, `days_query`: a `Query` (SQL text and its parameters).
- `EVENT_COLUMNS` and `decode_event`: the columns `events_query` selects, and the event of one row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.codec.values import format_datetime
from fin_agent.adapters.storage.rows import TABLES, Kind, Table
from fin_agent.domain.errors import DataError
from fin_agent.domain.events import DomainEvent

__all__ = [
    "EVENT_COLUMNS",
    "Query",
    "check_limit",
    "days_query",
    "decode_event",
    "events_query",
    "order_columns",
    "quote",
    "rows_query",
    "table_of",
]

EVENT_COLUMNS: Final = ("event_id", "occurred_at", "type", "version", "trace", "data")
"""The columns of the `events` table that `events_query` selects, in this order."""

DAY_COLUMN: Final = "trading_day"


@dataclass(frozen=True, slots=True)
class Query:
    """SQL text with `$1..$n` placeholders and the values to bind to them, in order."""

    sql: str
    params: tuple[object, ...] = ()


def quote(name: str, schema: str | None = None) -> str:
    """A quoted identifier, qualified by `schema` when given: `"schema"."name"`."""
    quoted = '"' + name.replace('"', '""') + '"'
    return quoted if schema is None else quote(schema) + "." + quoted


def table_of(name: str) -> Table:
    """The table called `name`; `DataError` naming every table when there is none."""
    table = TABLES.get(name)
    if table is None:
        raise DataError(f"no table {name!r}: choose one of {', '.join(sorted(TABLES))}")
    return table


def check_limit(limit: int | None) -> None:
    """Refuse a negative limit (None means no limit; 0 means no rows)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more (or None for no limit), got {limit}")


def order_columns(table: Table) -> tuple[str, ...]:
    """The columns rows are ordered by: the time column, then the rest of the key."""
    return (table.time_column, *(c for c in table.key if c != table.time_column))


def rows_query(
    table: Table, *, day: date | None = None, limit: int | None = None, schema: str | None = None
) -> Query:
    """Every column of `table` (in `TABLES` order), oldest first, on `day` when given."""
    check_limit(limit)
    kinds = {c.name: c.kind for c in table.columns}
    params: list[object] = []
    where = ""
    if day is not None:
        if DAY_COLUMN not in kinds:
            raise DataError(f"table {table.name!r} has no {DAY_COLUMN}: read it without a day")
        params.append(day)
        where = f" WHERE {quote(DAY_COLUMN)} = $1"
    order = ", ".join(
        quote(c) + (' COLLATE "C"' if kinds[c] is Kind.TEXT else "") for c in order_columns(table)
    )
    sql = (
        f"SELECT {', '.join(quote(c) for c in table.names)} "  # noqa: S608 - names from TABLES
        f"FROM {quote(table.name, schema)}{where} ORDER BY {order}"
    )
    return _limited(Query(sql, tuple(params)), limit)


def events_query(
    *,
    day: date | None = None,
    types: Collection[str] | None = None,
    limit: int | None = None,
    schema: str | None = None,
) -> Query:
    """The `EVENT_COLUMNS` of stored events by occurred_at then event id, filtered."""
    check_limit(limit)
    params: list[object] = []
    where: list[str] = []
    if day is not None:
        params.append(day)
        where.append(f"{quote(DAY_COLUMN)} = ${len(params)}")
    if types is not None:
        params.append(sorted(types))
        where.append(f'"type" = ANY(${len(params)})')
    sql = (
        f"SELECT {', '.join(quote(c) for c in EVENT_COLUMNS)} "  # noqa: S608 - quoted names
        f"FROM {quote('events', schema)}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + ' ORDER BY "occurred_at", "event_id" COLLATE "C"'
    )
    return _limited(Query(sql, tuple(params)), limit)


def days_query(*, schema: str | None = None) -> Query:
    """The distinct trading days of stored events, oldest first."""
    return Query(
        f"SELECT DISTINCT {quote(DAY_COLUMN)} FROM {quote('events', schema)} "  # noqa: S608
        f"ORDER BY {quote(DAY_COLUMN)}"
    )


def decode_event(
    codec: EventCodec,
    *,
    event_id: str,
    occurred_at: datetime,
    event_type: str,
    version: int,
    trace: str,
    data: str,
) -> DomainEvent:
    """The event of one `events` row (`event_type` is its `type`), decoded and upcast if old."""
    envelope = {
        "type": event_type,
        "v": str(version),
        "id": event_id,
        "ts": format_datetime(occurred_at),
        "trace": trace,
        "data": data,
    }
    return codec.decode(envelope).event


def _limited(query: Query, limit: int | None) -> Query:
    if limit is None:
        return query
    return Query(f"{query.sql} LIMIT ${len(query.params) + 1}", (*query.params, limit))
