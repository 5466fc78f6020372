"""`DuckDBDailyBarCache`: the `DailyBarCache` in a `DuckDBStore`'s file (its `daily_bar_cache()`).

DuckDB allows one writing process per file, so the cache has no connection of its own: every call
goes through the store's (`DuckDBStore._run`: its lock, its worker thread, its error mapping). A
put is one transaction; its bars go in as an Arrow table, as the store's writes do. Prices are
kept at six places (`DECIMAL(20, 6)`, see `bars_for_storage`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Final, Protocol, TypeVar

import duckdb
import pyarrow as pa

from fin_agent.adapters.storage.daily_bar_put import (
    COVERAGE_MANY_SQL as _COVERAGE_MANY,
)
from fin_agent.adapters.storage.daily_bar_put import (
    COVERAGE_SQL as _COVERAGE,
)
from fin_agent.adapters.storage.daily_bar_put import (
    DELETE_ALL_SQL as _DELETE_ALL,
)
from fin_agent.adapters.storage.daily_bar_put import (
    DELETE_COVERAGE_MANY_SQL as _DELETE_COVERAGE_MANY,
)
from fin_agent.adapters.storage.daily_bar_put import (
    DELETE_MANY_RANGE_SQL as _DELETE_MANY_RANGE,
)
from fin_agent.adapters.storage.daily_bar_put import (
    DELETE_MANY_SQL as _DELETE_MANY,
)
from fin_agent.adapters.storage.daily_bar_put import (
    DELETE_RANGE_SQL as _DELETE_RANGE,
)
from fin_agent.adapters.storage.daily_bar_put import (
    GET_MANY_SQL as _GET_MANY,
)
from fin_agent.adapters.storage.daily_bar_put import (
    GET_SQL as _GET,
)
from fin_agent.adapters.storage.daily_bar_put import (
    SET_COVERAGE_SQL as _SET_COVERAGE,
)
from fin_agent.adapters.storage.daily_bar_put import bars_for_storage, plan_put, plan_put_many
from fin_agent.domain.values import DailyBar, Symbol
from fin_agent.ports.daily_bar_cache import DailyBarPutRequest

__all__ = ["DuckDBDailyBarCache", "DuckDBRun"]

T = TypeVar("T")
Connection = duckdb.DuckDBPyConnection

_INSERT: Final = (
    'INSERT INTO "daily_bars" ("symbol", "session", "open", "high", "low", "close", "volume") '
    'SELECT "symbol", "session", "open", "high", "low", "close", "volume" FROM incoming_arrow'
)
_PRICE: Final = pa.decimal128(20, 6)


class DuckDBRun(Protocol):
    """How the cache reaches the store's one connection: `DuckDBStore._run`."""

    async def __call__(self, what: str, call: Callable[[Connection], T]) -> T:
        """Run `call` on the connection, one call at a time, naming `what` in errors."""
        ...


class DuckDBDailyBarCache:
    """Daily bars and their coverage in the `daily_bars` and `daily_bar_coverage` tables."""

    def __init__(self, run: DuckDBRun) -> None:
        self._run = run

    async def coverage(self, symbol: Symbol) -> tuple[date, date] | None:
        """The first and last date the cache holds every bar of, or None."""
        return await self._run("daily bar coverage", lambda con: _coverage(con, symbol))

    async def get(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """The cached bars of sessions `start` to `end` inclusive, oldest first."""
        rows = await self._run(
            "daily bar read", lambda con: con.execute(_GET, [symbol, start, end]).fetchall()
        )
        return [
            DailyBar(symbol=symbol, session=day, open=o, high=h, low=lo, close=c, volume=volume)
            for day, o, h, lo, c, volume in rows
        ]

    async def put(self, symbol: Symbol, start: date, end: date, bars: Sequence[DailyBar]) -> None:
        """Record `bars` as every bar of `start`..`end` in one transaction (see the port)."""
        stored = bars_for_storage(symbol, start, end, bars)
        await self._run("daily bar write", lambda con: _put(con, symbol, start, end, stored))

    async def coverage_many(self, symbols: Sequence[Symbol]) -> dict[Symbol, tuple[date, date]]:
        """`coverage` of many symbols in one query."""
        rows = await self._run(
            "daily bar coverage",
            lambda con: con.execute(_COVERAGE_MANY, [list(symbols)]).fetchall(),
        )
        return {Symbol(sym): (first, last) for sym, first, last in rows}

    async def get_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, Sequence[DailyBar]]:
        """`get` of many symbols in one query."""
        rows = await self._run(
            "daily bar read",
            lambda con: con.execute(_GET_MANY, [list(symbols), start, end]).fetchall(),
        )
        found: dict[Symbol, list[DailyBar]] = {}
        for sym, day, o, h, lo, c, volume in rows:
            found.setdefault(Symbol(sym), []).append(
                DailyBar(
                    symbol=Symbol(sym), session=day, open=o, high=h, low=lo, close=c, volume=volume
                )
            )
        return dict(found)

    async def put_many(self, puts: Sequence[DailyBarPutRequest]) -> None:
        """Each `put` as alone, all in one transaction and one insert."""
        stored = [(s, a, b, bars_for_storage(s, a, b, bars)) for s, a, b, bars in puts]
        await self._run("daily bar write", lambda con: _put_many(con, stored))


def _put_many(con: Connection, puts: Sequence[DailyBarPutRequest]) -> None:
    con.begin()
    try:
        symbols = [p[0] for p in puts]
        rows = con.execute(_COVERAGE_MANY, [symbols]).fetchall()
        plan = plan_put_many(puts, {Symbol(s): (a, b) for s, a, b in rows})
        if plan.fresh:
            con.execute(_DELETE_MANY, [list(plan.fresh)])
        for (start, end), names in plan.ranges.items():
            con.execute(_DELETE_MANY_RANGE, [names, start, end])
        con.execute(_DELETE_COVERAGE_MANY, [symbols])
        incoming_coverage = pa.table(  # noqa: F841 - read by the INSERT's replacement scan
            {
                "symbol": pa.array([c[0] for c in plan.coverage], type=pa.string()),
                "first_day": pa.array([c[1] for c in plan.coverage], type=pa.date32()),
                "last_day": pa.array([c[2] for c in plan.coverage], type=pa.date32()),
            }
        )
        con.execute(
            'INSERT INTO "daily_bar_coverage" ("symbol", "first_day", "last_day") '
            'SELECT "symbol", "first_day", "last_day" FROM incoming_coverage'
        )
        if plan.bars:
            incoming_arrow = _arrow(plan.bars)  # noqa: F841 - read by the INSERT's replacement scan
            con.execute(_INSERT)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _coverage(con: Connection, symbol: Symbol) -> tuple[date, date] | None:
    row = con.execute(_COVERAGE, [symbol]).fetchone()
    return None if row is None else (row[0], row[1])


def _put(con: Connection, symbol: Symbol, start: date, end: date, bars: Sequence[DailyBar]) -> None:
    con.begin()
    try:
        change = plan_put(symbol, start, end, bars, _coverage(con, symbol))
        if change.fresh:
            con.execute(_DELETE_ALL, [symbol])
        else:
            con.execute(_DELETE_RANGE, [symbol, start, end])
        con.execute(_SET_COVERAGE, [symbol, *change.coverage])
        if change.bars:
            # The INSERT reads the local `incoming_arrow` through DuckDB's replacement scan.
            incoming_arrow = _arrow(change.bars)  # noqa: F841
            con.execute(_INSERT)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _arrow(bars: Sequence[DailyBar]) -> pa.Table:
    return pa.table(
        {
            "symbol": pa.array([b.symbol for b in bars], type=pa.string()),
            "session": pa.array([b.session for b in bars], type=pa.date32()),
            "open": pa.array([b.open for b in bars], type=_PRICE),
            "high": pa.array([b.high for b in bars], type=_PRICE),
            "low": pa.array([b.low for b in bars], type=_PRICE),
            "close": pa.array([b.close for b in bars], type=_PRICE),
            "volume": pa.array([b.volume for b in bars], type=pa.int64()),
        }
    )
