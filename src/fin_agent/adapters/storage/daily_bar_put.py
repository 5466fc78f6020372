"""`plan_put`: what a `DailyBarCache.put` does to one symbol, the rule every cache adapter shares.

The in-memory, DuckDB and PostgreSQL caches all apply this one function, so they cannot drift: a
put whose range overlaps or touches the covered one widens it (the put's own range replaced), any
other put starts the symbol afresh. `bars_for_storage` readies a SQL cache's bars (six places).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

from fin_agent.adapters.storage.rows import SIX_PLACES
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import DailyBar, Symbol

ONE_DAY: Final = timedelta(days=1)
MAX_PRICE: Final = Decimal(10) ** 14
"""Prices are `DECIMAL(20, 6)` in the SQL caches: 14 digits before the point."""
MAX_VOLUME: Final = 2**63 - 1
"""Volumes are `BIGINT`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyBarPut:
    """The changes one `put` makes to a symbol's cached bars and coverage."""

    coverage: tuple[date, date]
    """The first and last date covered afterwards."""
    fresh: bool
    """True: every cached bar of the symbol goes. False: only those of the put's range."""
    bars: tuple[DailyBar, ...]
    """The bars to add: the symbol's, inside the put's range, one a session (the last given wins),
    oldest first."""


def check_put_range(symbol: Symbol, start: date, end: date) -> None:
    """Raise `DataError` when `end` is before `start` (before any store is touched)."""
    if end < start:
        raise DataError(
            f"daily bar cache put for {symbol}: end {end} is before start {start}: pass the first "
            "session fetched as start and the last as end"
        )


def plan_put(
    symbol: Symbol,
    start: date,
    end: date,
    bars: Sequence[DailyBar],
    covered: tuple[date, date] | None,
) -> DailyBarPut:
    """What putting `bars` as every bar of `start`..`end` does, given the range `covered` now."""
    check_put_range(symbol, start, end)
    if covered is None or start > covered[1] + ONE_DAY or end < covered[0] - ONE_DAY:
        coverage, fresh = (start, end), True
    else:
        coverage, fresh = (min(start, covered[0]), max(end, covered[1])), False
    kept = {b.session: b for b in bars if b.symbol == symbol and start <= b.session <= end}
    return DailyBarPut(coverage=coverage, fresh=fresh, bars=tuple(kept[d] for d in sorted(kept)))


def bars_for_storage(
    symbol: Symbol, start: date, end: date, bars: Sequence[DailyBar]
) -> list[DailyBar]:
    """The bars a SQL cache's put keeps (`symbol`'s, in `start`..`end`) as its tables hold them.

    Checked before the store is touched: `DataError` for an end before the start, a figure the
    tables cannot hold (`DECIMAL(20, 6)`, `BIGINT`) or a price that rounds to zero. Prices are
    rounded half-even to six places as `storage.rows` rounds (Yahoo's have four: they come back
    equal).
    """
    check_put_range(symbol, start, end)
    return [_for_storage(b) for b in bars if b.symbol == symbol and start <= b.session <= end]


def _for_storage(bar: DailyBar) -> DailyBar:
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    for name, price in prices.items():
        if abs(price) >= MAX_PRICE:
            raise DataError(
                f"daily bar {bar.symbol} {bar.session}: {name} {price} is too large for the cache "
                f"(below {MAX_PRICE:,} only): check the daily bar source's data"
            )
    if bar.volume > MAX_VOLUME:
        raise DataError(
            f"daily bar {bar.symbol} {bar.session}: volume {bar.volume} is too large for the cache "
            f"(up to {MAX_VOLUME:,}): check the daily bar source's data"
        )
    return dataclasses.replace(
        bar,
        open=bar.open.quantize(SIX_PLACES),
        high=bar.high.quantize(SIX_PLACES),
        low=bar.low.quantize(SIX_PLACES),
        close=bar.close.quantize(SIX_PLACES),
    )


# The SQL both database caches run (DuckDB and PostgreSQL take the same $n parameters).
COVERAGE_SQL: Final = 'SELECT "first_day", "last_day" FROM "daily_bar_coverage" WHERE "symbol" = $1'
GET_SQL: Final = (
    'SELECT "session", "open", "high", "low", "close", "volume" FROM "daily_bars" '
    'WHERE "symbol" = $1 AND "session" BETWEEN $2 AND $3 ORDER BY "session"'
)
DELETE_ALL_SQL: Final = 'DELETE FROM "daily_bars" WHERE "symbol" = $1'
DELETE_RANGE_SQL: Final = DELETE_ALL_SQL + ' AND "session" BETWEEN $2 AND $3'
SET_COVERAGE_SQL: Final = (
    'INSERT INTO "daily_bar_coverage" ("symbol", "first_day", "last_day") VALUES ($1, $2, $3) '
    'ON CONFLICT ("symbol") DO UPDATE SET "first_day" = excluded."first_day", '
    '"last_day" = excluded."last_day"'
)

COVERAGE_MANY_SQL: Final = (
    'SELECT "symbol", "first_day", "last_day" FROM "daily_bar_coverage" '
    'WHERE "symbol" IN (SELECT UNNEST($1::VARCHAR[]))'
)
GET_MANY_SQL: Final = (
    'SELECT "symbol", "session", "open", "high", "low", "close", "volume" FROM "daily_bars" '
    'WHERE "symbol" IN (SELECT UNNEST($1::VARCHAR[])) AND "session" BETWEEN $2 AND $3 '
    'ORDER BY "symbol", "session"'
)
DELETE_MANY_SQL: Final = 'DELETE FROM "daily_bars" WHERE "symbol" IN (SELECT UNNEST($1::VARCHAR[]))'
DELETE_MANY_RANGE_SQL: Final = DELETE_MANY_SQL + ' AND "session" BETWEEN $2 AND $3'
DELETE_COVERAGE_MANY_SQL: Final = (
    'DELETE FROM "daily_bar_coverage" WHERE "symbol" IN (SELECT UNNEST($1::VARCHAR[]))'
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManyPuts:
    """What `put_many` does: `plan_put` of each symbol, gathered into a few bulk statements."""

    fresh: tuple[Symbol, ...]
    """Symbols whose every cached bar goes."""
    ranges: dict[tuple[date, date], list[Symbol]]
    """The other symbols, by the range of their bars that goes."""
    coverage: tuple[tuple[Symbol, date, date], ...]
    """Every symbol's coverage afterwards."""
    bars: tuple[DailyBar, ...]
    """The bars to add."""


def plan_put_many(
    puts: Sequence[tuple[Symbol, date, date, Sequence[DailyBar]]],
    covered: Mapping[Symbol, tuple[date, date]],
) -> ManyPuts:
    """`plan_put` of each of `puts` (one a symbol) given the coverages `covered` now."""
    fresh: list[Symbol] = []
    ranges: dict[tuple[date, date], list[Symbol]] = {}
    coverage: list[tuple[Symbol, date, date]] = []
    bars: list[DailyBar] = []
    seen: set[Symbol] = set()
    for symbol, start, end, given in puts:
        if symbol in seen:
            raise DataError(f"daily bar cache put_many names {symbol} twice: merge its puts")
        seen.add(symbol)
        change = plan_put(symbol, start, end, given, covered.get(symbol))
        if change.fresh:
            fresh.append(symbol)
        else:
            ranges.setdefault((start, end), []).append(symbol)
        coverage.append((symbol, *change.coverage))
        bars.extend(change.bars)
    return ManyPuts(fresh=tuple(fresh), ranges=ranges, coverage=tuple(coverage), bars=tuple(bars))
