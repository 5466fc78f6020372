"""`DuckDBScanRecords`: the `ScanRecords` in a `DuckDBStore`'s file (its `scan_records()`).

Like the daily bar cache, it runs on the store's one connection (`DuckDBStore._run`). A put is one
transaction: the head, the input rows (one Arrow table) and the daily bars whose values no stored
version has (the bars go in as an Arrow table and DuckDB keeps those that differ from their
latest version, `NEW_BARS_SQL`). The rows and the rule of versions are `scan_record_rows`'.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb
import pyarrow as pa

from fin_agent.adapters.storage.duckdb_daily_bars import DuckDBRun
from fin_agent.adapters.storage.scan_record_rows import (
    BarMemo,
    BarValues,
    InputRow,
    RecordHead,
    StaleMemo,
    bar_values,
    head_of,
    new_bars_sql,
    put_record,
    rebuild,
    wanted,
    window_sessions,
)
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import DailyBar, Symbol
from fin_agent.ports.scan_records import RecordSize

__all__ = ["DuckDBScanRecords"]

Connection = duckdb.DuckDBPyConnection
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EXISTS: Final = 'SELECT 1 FROM "scan_records" WHERE "record" = $1'
_LAST_SEQ: Final = 'SELECT coalesce(max("seq"), 0) FROM "scan_records"'
_HEAD: Final = (
    'SELECT "record", "trading_day", epoch_us("taken_at"), "prev_session", "seq", "symbols", '
    '"daily_bars" FROM "scan_records" WHERE "record" = $1'
)
_INPUTS: Final = (
    'SELECT "position", "symbol", "sessions", "bars", "pm_last", "pm_volume", '
    'epoch_us("pm_as_of"), "pm_quoted_prev_close", "headlines" FROM "scan_inputs" '
    'WHERE "record" = $1 ORDER BY "position"'
)
_VISIBLE: Final = (
    'SELECT "symbol", "session", "open", "high", "low", "close", "volume" FROM ('
    'SELECT b.*, row_number() OVER (PARTITION BY b."symbol", b."session" ORDER BY b."seq" DESC) '
    'AS "rn" FROM "scan_bars" b WHERE b."seq" <= $1 AND b."session" BETWEEN $2 AND $3 '
    'AND list_contains($4, b."symbol")) WHERE "rn" = 1'
)
_INSERT_HEAD: Final = (
    'INSERT INTO "scan_records" ("record", "trading_day", "taken_at", "prev_session", "seq", '
    '"symbols", "daily_bars") VALUES ($1, $2, $3, $4, $5, $6, $7)'
)
_INPUT_COLUMNS: Final = (
    "position", "symbol", "sessions", "bars", "pm_last", "pm_volume", "pm_as_of",
    "pm_quoted_prev_close", "headlines",
)  # fmt: skip
_INSERT_INPUTS: Final = (
    'INSERT INTO "scan_inputs" ("record", '  # noqa: S608 - names from _INPUT_COLUMNS
    + ", ".join(f'"{c}"' for c in _INPUT_COLUMNS)
    + ") SELECT $1, "
    + ", ".join(f'"{c}"' for c in _INPUT_COLUMNS)
    + " FROM incoming_arrow"
)
_BAR_COLUMNS: Final = ("open", "high", "low", "close")


_NEW_BARS: Final = new_bars_sql("incoming_arrow", "$1::INTEGER")


class DuckDBScanRecords:
    """Scan records in the `scan_records`, `scan_inputs` and `scan_bars` tables."""

    def __init__(self, run: DuckDBRun, memo: BarMemo) -> None:
        self._run = run
        self._memo = memo

    async def put(self, key: str, snapshot: UniverseSnapshot) -> RecordSize:
        """Keep `snapshot` as record `key` (see `ScanRecords.put`)."""
        return await put_record(key, snapshot, self._memo, self._put, self.get)

    async def _put(
        self,
        key: str,
        snapshot: UniverseSnapshot,
        rows: Sequence[InputRow],
        bars: Sequence[DailyBar],
    ) -> tuple[int, int] | None:
        memo_at = self._memo.valid_at
        trusted = sum(len(s.daily_bars) for s in snapshot.symbols) > len(bars)
        inputs = _inputs_arrow(rows)
        incoming = _bars_arrow(bars)

        def call(con: Connection) -> tuple[int, int] | None:
            con.begin()
            try:
                if con.execute(
                    'SELECT 1 FROM "scan_records" WHERE "record" = $1', [key]
                ).fetchall():
                    con.rollback()
                    return None
                [(last,)] = con.execute(
                    'SELECT coalesce(max("seq"), 0) FROM "scan_records"'
                ).fetchall()
                if trusted and last != memo_at:
                    raise StaleMemo
                head = head_of(key, snapshot, int(last) + 1)
                con.execute(
                    _INSERT_HEAD,
                    [
                        head.key,
                        head.trading_day,
                        head.taken_at,
                        head.prev_session,
                        head.seq,
                        head.symbols,
                        head.daily_bars,
                    ],
                )
                incoming_arrow = inputs
                con.execute(_INSERT_INPUTS, [key])
                incoming_arrow = incoming  # noqa: F841 - the INSERT reads it
                [(new,)] = con.execute(_NEW_BARS, [head.seq]).fetchall()
                con.commit()
            except BaseException:
                con.rollback()
                raise
            return head.seq, int(new)

        return await self._run("scan record put", call)

    async def get(
        self, key: str, *, symbols: Collection[Symbol] | None = None
    ) -> UniverseSnapshot | None:
        """The snapshot stored as `key` (see `ScanRecords.get`)."""

        def call(con: Connection) -> tuple[RecordHead, list[InputRow], dict[Any, BarValues]] | None:
            found = con.execute(_HEAD, [key]).fetchall()
            if not found:
                return None
            head = _head(found[0])
            rows = wanted([_row(r) for r in con.execute(_INPUTS, [key]).fetchall()], symbols)
            sessions = [s for r in rows for s in window_sessions(r.window)]
            if not sessions:
                return head, rows, {}
            params = [head.seq, min(sessions), max(sessions), sorted({r.symbol for r in rows})]
            bars = {
                (Symbol(s), d): (o, h, lo, c, int(v))
                for s, d, o, h, lo, c, v in con.execute(_VISIBLE, params).fetchall()
            }
            return head, rows, bars

        found = await self._run("scan record get", call)
        return None if found is None else rebuild(*found)


def _head(row: tuple[Any, ...]) -> RecordHead:
    key, day, taken_us, prev, seq, symbols, daily_bars = row
    return RecordHead(
        key=key,
        trading_day=day,
        taken_at=EPOCH + timedelta(microseconds=taken_us),
        prev_session=prev,
        seq=seq,
        symbols=symbols,
        daily_bars=daily_bars,
    )


def _row(row: tuple[Any, ...]) -> InputRow:
    position, name, window, bars, last, volume, as_of_us, quoted, headlines = row
    return InputRow(
        position=position,
        symbol=Symbol(name),
        window=window,
        bars=bars,
        pm_last=last,
        pm_volume=volume,
        pm_as_of=None if as_of_us is None else EPOCH + timedelta(microseconds=as_of_us),
        pm_quoted_prev_close=quoted,
        headlines=headlines,
    )


def _inputs_arrow(rows: Sequence[InputRow]) -> pa.Table:
    return pa.table(
        {
            "position": pa.array([r.position for r in rows], pa.int32()),
            "symbol": pa.array([r.symbol for r in rows], pa.string()),
            "sessions": pa.array([r.window for r in rows], pa.string()),
            "bars": pa.array([r.bars for r in rows], pa.int32()),
            "pm_last": pa.array([r.pm_last for r in rows], pa.string()),
            "pm_volume": pa.array([r.pm_volume for r in rows], pa.int64()),
            "pm_as_of": pa.array([r.pm_as_of for r in rows], pa.timestamp("us", tz="UTC")),
            "pm_quoted_prev_close": pa.array([r.pm_quoted_prev_close for r in rows], pa.string()),
            "headlines": pa.array([r.headlines for r in rows], pa.string()),
        }
    )


def _bars_arrow(bars: Sequence[DailyBar]) -> pa.Table:
    values = [bar_values(b) for b in bars]
    columns: dict[str, pa.Array[Any]] = {
        "symbol": pa.array([b.symbol for b in bars], pa.string()),
        "session": pa.array([b.session for b in bars], pa.date32()),
    }
    for i, name in enumerate(_BAR_COLUMNS):
        columns[name] = pa.array([v[i] for v in values], pa.string())
    columns["volume"] = pa.array([v[4] for v in values], pa.int64())
    return pa.table(columns)
