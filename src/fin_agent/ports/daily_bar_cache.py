"""The `DailyBarCache` port: daily bars already fetched, so each day fetches only what is new."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol

from fin_agent.domain.values import DailyBar, Symbol

DailyBarPutRequest = tuple[Symbol, date, date, Sequence[DailyBar]]
"""One symbol's `put`: symbol, start, end, bars."""


class DailyBarCache(Protocol):
    """Daily bars by symbol and session, with the one date range each symbol is complete over.

    Coverage matters as much as the bars: a holiday, a halt or a recent listing leaves no bar, and
    the cache must still say that range was fetched so it is not fetched again.
    """

    async def coverage(self, symbol: Symbol) -> tuple[date, date] | None:
        """The first and last date (inclusive) the cache holds every bar of, or None."""
        ...

    async def get(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """The cached bars of sessions `start` to `end` inclusive, oldest first."""
        ...

    async def put(self, symbol: Symbol, start: date, end: date, bars: Sequence[DailyBar]) -> None:
        """Record `bars` as every bar of `start`..`end`, replacing what was cached in that range.

        The coverage becomes the union when the ranges overlap or touch; otherwise the new range
        alone (bars outside it are dropped). Bars outside `start`..`end` are ignored.
        """
        ...

    async def coverage_many(self, symbols: Sequence[Symbol]) -> Mapping[Symbol, tuple[date, date]]:
        """`coverage` of many symbols in one go (a symbol with none is missing)."""
        ...

    async def get_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> Mapping[Symbol, Sequence[DailyBar]]:
        """`get` of many symbols in one go (a symbol with no bar is missing)."""
        ...

    async def put_many(self, puts: Sequence[DailyBarPutRequest]) -> None:
        """`put` of many symbols in one transaction, each as `put` alone would do it."""
        ...
