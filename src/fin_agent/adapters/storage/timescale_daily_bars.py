"""`TimescaleDailyBarCache`: the `DailyBarCache` in a `TimescaleStore`'s schema.

Every call runs on the store's pool through `TimescaleStore._with_connection` (its retry of a
dropped connection, its error mapping); the pool's `search_path` is the store's schema. A put is one
transaction under a per-symbol `pg_advisory_xact_lock`, so two agents caching one symbol at once
apply their puts one after the other, as the rule (`plan_put`) assumes; its bars are COPied in.
Prices are kept at six places (`numeric(20, 6)`, see `bars_for_storage`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Final, Protocol, TypeVar

from asyncpg import Record

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
from fin_agent.adapters.storage.timescale_migrations import Conn
from fin_agent.domain.values import DailyBar, Symbol
from fin_agent.ports.daily_bar_cache import DailyBarPutRequest

__all__ = ["TimescaleDailyBarCache", "TimescaleRun"]

T = TypeVar("T")

COLUMNS: Final = ("symbol", "session", "open", "high", "low", "close", "volume")
_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtext('fin_agent.daily_bars'), "
    "hashtext(current_schema() || '.' || $1))"
)


_LOCK_MANY: Final = (
    "SELECT pg_advisory_xact_lock(hashtext('fin_agent.daily_bars'), "
    "hashtext(current_schema() || '.' || s)) FROM unnest($1::text[]) AS s ORDER BY s"
)


class TimescaleRun(Protocol):
    """How the cache reaches the store's pool: `TimescaleStore._with_connection`."""

    async def __call__(self, run: Callable[[Conn], Awaitable[T]], doing: str) -> T:
        """Run `run` on a pooled connection, naming `doing` in errors."""
        ...


class TimescaleDailyBarCache:
    """Daily bars and their coverage in the `daily_bars` and `daily_bar_coverage` tables."""

    def __init__(self, run: TimescaleRun) -> None:
        self._run = run

    async def coverage(self, symbol: Symbol) -> tuple[date, date] | None:
        """The first and last date the cache holds every bar of, or None."""
        return await self._run(
            lambda con: _coverage(con, symbol), f"read the daily bar coverage of {symbol}"
        )

    async def get(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """The cached bars of sessions `start` to `end` inclusive, oldest first."""

        async def run(con: Conn) -> list[DailyBar]:
            return [_bar(symbol, r) for r in await con.fetch(_GET, symbol, start, end)]

        return await self._run(run, f"read the daily bars of {symbol}")

    async def put(self, symbol: Symbol, start: date, end: date, bars: Sequence[DailyBar]) -> None:
        """Record `bars` as every bar of `start`..`end` in one transaction (see the port)."""
        stored = bars_for_storage(symbol, start, end, bars)

        async def run(con: Conn) -> None:
            async with con.transaction():
                await con.execute(_LOCK, symbol)
                change = plan_put(symbol, start, end, stored, await _coverage(con, symbol))
                if change.fresh:
                    await con.execute(_DELETE_ALL, symbol)
                else:
                    await con.execute(_DELETE_RANGE, symbol, start, end)
                await con.execute(_SET_COVERAGE, symbol, *change.coverage)
                await _copy_bars(con, change.bars)

        await self._run(run, f"cache the daily bars of {symbol}")

    async def coverage_many(self, symbols: Sequence[Symbol]) -> dict[Symbol, tuple[date, date]]:
        """`coverage` of many symbols in one query."""

        async def run(con: Conn) -> dict[Symbol, tuple[date, date]]:
            rows = await con.fetch(_COVERAGE_MANY, list(symbols))
            return {Symbol(r["symbol"]): (r["first_day"], r["last_day"]) for r in rows}

        return await self._run(run, f"read the daily bar coverage of {len(symbols)} symbols")

    async def get_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, Sequence[DailyBar]]:
        """`get` of many symbols in one query."""

        async def run(con: Conn) -> dict[Symbol, Sequence[DailyBar]]:
            found: dict[Symbol, list[DailyBar]] = {}
            for r in await con.fetch(_GET_MANY, list(symbols), start, end):
                sym = Symbol(r["symbol"])
                found.setdefault(sym, []).append(_bar(sym, r))
            return dict(found)

        return await self._run(run, f"read the daily bars of {len(symbols)} symbols")

    async def put_many(self, puts: Sequence[DailyBarPutRequest]) -> None:
        """Each `put` as alone (its lock too), all in one transaction and one COPY."""
        stored = [(s, a, b, bars_for_storage(s, a, b, bars)) for s, a, b, bars in puts]

        async def run(con: Conn) -> None:
            symbols = sorted(p[0] for p in stored)
            async with con.transaction():
                # Each symbol's lock as put takes it, in one order so two writers cannot deadlock.
                await con.execute(_LOCK_MANY, symbols)
                rows = await con.fetch(_COVERAGE_MANY, symbols)
                covered = {Symbol(r["symbol"]): (r["first_day"], r["last_day"]) for r in rows}
                plan = plan_put_many(stored, covered)
                if plan.fresh:
                    await con.execute(_DELETE_MANY, list(plan.fresh))
                for (start, end), names in plan.ranges.items():
                    await con.execute(_DELETE_MANY_RANGE, names, start, end)
                await con.execute(_DELETE_COVERAGE_MANY, symbols)
                await con.copy_records_to_table(
                    "daily_bar_coverage",
                    records=list(plan.coverage),
                    columns=("symbol", "first_day", "last_day"),
                )
                await _copy_bars(con, plan.bars)

        await self._run(run, f"cache the daily bars of {len(stored)} symbols")


async def _coverage(con: Conn, symbol: Symbol) -> tuple[date, date] | None:
    row = await con.fetchrow(_COVERAGE, symbol)
    return None if row is None else (row["first_day"], row["last_day"])


async def _copy_bars(con: Conn, bars: Sequence[DailyBar]) -> None:
    """COPY `bars` into `daily_bars` (nothing when there are none)."""
    if bars:
        await con.copy_records_to_table(
            "daily_bars",
            records=[(b.symbol, b.session, b.open, b.high, b.low, b.close, b.volume) for b in bars],
            columns=COLUMNS,
        )


def _bar(symbol: Symbol, row: Record) -> DailyBar:
    """A `daily_bars` row as the `DailyBar` of `symbol`."""
    return DailyBar(
        symbol=symbol,
        session=row["session"],
        open=row["open"],
        high=row["high"],
        low=row["low"],
        close=row["close"],
        volume=row["volume"],
    )
