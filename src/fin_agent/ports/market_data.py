"""The `MarketData` port: daily history, pre-market figures and intraday bars of a market."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from fin_agent.domain.values import Bar, DailyBar, Premarket, Symbol


class MarketData(Protocol):
    """A source of market data: a simulator, recorded files, or a live vendor."""

    async def symbols(self) -> Sequence[Symbol]:
        """Return every symbol this source has data for, sorted."""
        ...

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Return up to `count` daily bars of sessions strictly before `before`, oldest first."""
        ...

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """Return the pre-market last price and volume of `day` up to `until`, or None if no data.

        A source without pre-market bars returns the day's open as `last` and None as `volume`.
        """
        ...

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        """Return the 1-minute bars of the regular session of `day`, ordered by (start, symbol)."""
        ...
