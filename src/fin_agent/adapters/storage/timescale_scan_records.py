"""`TimescaleScanRecords`: the `ScanRecords` in a `TimescaleStore`'s schema.

Every call runs on the store's pool (`TimescaleStore._with_connection`). A put is one transaction
under a per-schema `pg_advisory_xact_lock`, so two agents storing records at once take `seq`s one
after the other; the input rows and the daily bars no stored version has are COPied into
temporary tables and inserted from there (`new_bars_sql`, the same INSERT DuckDB runs). Plain
tables: a year of records is a few hundred MB, and they are read by key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Final

from asyncpg import Record

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
from fin_agent.adapters.storage.timescale_daily_bars import TimescaleRun
from fin_agent.adapters.storage.timescale_migrations import Conn
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import DailyBar, Symbol
from fin_agent.ports.scan_records import RecordSize

__all__ = ["TimescaleScanRecords"]

_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtext('fin_agent.scan_records'), hashtext(current_schema()))"
)
_INPUT_COLUMNS: Final = (
    "record", "position", "symbol", "sessions", "bars", "pm_last", "pm_volume", "pm_as_of",
    "pm_quoted_prev_close", "headlines",
)  # fmt: skip
_BAR_COLUMNS: Final = ("symbol", "session", "open", "high", "low", "close", "volume")
_STAGE: Final = (
    'CREATE TEMPORARY TABLE "incoming_scan_bars" (symbol text, session date, open text, '
    "high text, low text, close text, volume bigint) ON COMMIT DROP"
)
_NEW_BARS: Final = new_bars_sql('"incoming_scan_bars"', "$1::integer")
_HEAD: Final = (
    'SELECT "record", "trading_day", "taken_at", "prev_session", "seq", "symbols", "daily_bars" '
    'FROM "scan_records" WHERE "record" = $1'
)
_INPUTS: Final = (
    'SELECT "position", "symbol", "sessions", "bars", "pm_last", "pm_volume", "pm_as_of", '
    '"pm_quoted_prev_close", "headlines" FROM "scan_inputs" WHERE "record" = $1 '
    'ORDER BY "position"'
)
_VISIBLE: Final = (
    'SELECT DISTINCT ON ("symbol", "session") "symbol", "session", "open", "high", "low", '
    '"close", "volume" FROM "scan_bars" WHERE "seq" <= $1 AND "session" BETWEEN $2 AND $3 '
    'AND "symbol" = ANY($4::text[]) ORDER BY "symbol", "session", "seq" DESC'
)


class TimescaleScanRecords:
    """Scan records in the `scan_records`, `scan_inputs` and `scan_bars` tables."""

    def __init__(self, run: TimescaleRun, memo: BarMemo) -> None:
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
        inputs = [
            (key, r.position, r.symbol, r.window, r.bars, r.pm_last, r.pm_volume, r.pm_as_of,
             r.pm_quoted_prev_close, r.headlines)
            for r in rows
        ]  # fmt: skip
        staged = [(b.symbol, b.session, *bar_values(b)) for b in bars]

        async def run(con: Conn) -> tuple[int, int] | None:
            async with con.transaction():
                await con.execute(_LOCK)
                if await con.fetchval('SELECT 1 FROM "scan_records" WHERE "record" = $1', key):
                    return None
                last = int(await con.fetchval('SELECT coalesce(max("seq"), 0) FROM "scan_records"'))
                if trusted and last != memo_at:
                    raise StaleMemo
                head = head_of(key, snapshot, last + 1)
                await con.execute(
                    'INSERT INTO "scan_records" ("record", "trading_day", "taken_at", '
                    '"prev_session", "seq", "symbols", "daily_bars") '
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    head.key,
                    head.trading_day,
                    head.taken_at,
                    head.prev_session,
                    head.seq,
                    head.symbols,
                    head.daily_bars,
                )
                await con.copy_records_to_table(
                    "scan_inputs", records=inputs, columns=list(_INPUT_COLUMNS)
                )
                await con.execute(_STAGE)
                await con.copy_records_to_table(
                    "incoming_scan_bars", records=staged, columns=list(_BAR_COLUMNS)
                )
                status = await con.execute(_NEW_BARS, head.seq)
            return head.seq, int(status.split()[-1])

        return await self._run(run, f"store scan record {key}")

    async def get(
        self, key: str, *, symbols: Collection[Symbol] | None = None
    ) -> UniverseSnapshot | None:
        """The snapshot stored as `key` (see `ScanRecords.get`)."""

        async def run(
            con: Conn,
        ) -> tuple[RecordHead, list[InputRow], dict[tuple[Symbol, date], BarValues]] | None:
            found = await con.fetchrow(_HEAD, key)
            if found is None:
                return None
            head = RecordHead(
                key=found["record"],
                trading_day=found["trading_day"],
                taken_at=found["taken_at"],
                prev_session=found["prev_session"],
                seq=found["seq"],
                symbols=found["symbols"],
                daily_bars=found["daily_bars"],
            )
            rows = wanted([_row(r) for r in await con.fetch(_INPUTS, key)], symbols)
            sessions = [s for r in rows for s in window_sessions(r.window)]
            if not sessions:
                return head, rows, {}
            names = sorted({r.symbol for r in rows})
            visible = await con.fetch(_VISIBLE, head.seq, min(sessions), max(sessions), names)
            bars = {
                (Symbol(b["symbol"]), b["session"]): (
                    b["open"], b["high"], b["low"], b["close"], b["volume"],
                )
                for b in visible
            }  # fmt: skip
            return head, rows, bars

        found = await self._run(run, f"read scan record {key}")
        return None if found is None else rebuild(*found)


def _row(r: Record) -> InputRow:
    return InputRow(
        position=r["position"],
        symbol=Symbol(r["symbol"]),
        window=r["sessions"],
        bars=r["bars"],
        pm_last=r["pm_last"],
        pm_volume=r["pm_volume"],
        pm_as_of=r["pm_as_of"],
        pm_quoted_prev_close=r["pm_quoted_prev_close"],
        headlines=r["headlines"],
    )
