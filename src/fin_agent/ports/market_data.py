"""The `MarketData` port: daily history, pre-market figures and intraday bars of a market.

Two refinements for the modes that need more: `RecordedMarketData` (a backtest's recorded files
know their sessions) and `LiveMarketData` (a live market keeps the feed's bars in a buffer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Protocol

from fin_agent.domain.values import Bar, DailyBar, Premarket, Symbol
from fin_agent.ports.news import News


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


class RecordedMarketData(MarketData, Protocol):
    """Market data recorded in files: it knows which days it covers and when each closed."""

    def sessions(self) -> list[date]:
        """The days with regular-session data, oldest first."""
        ...

    def session_close(self, day: date) -> datetime | None:
        """When the regular session of `day` closed in the data, or None without intraday data."""
        ...


class BarBuffer(Protocol):
    """The 1-minute bars the live trade feed aggregated, kept by exchange day."""

    def add(self, bars: Iterable[Bar]) -> None:
        """Keep `bars` (a bar added again for its symbol and start replaces the first)."""
        ...

    def prune(self, before: date) -> None:
        """Forget the bars of days before `before`."""
        ...


class LiveMarketData(MarketData, News, Protocol):
    """The live market: market data and headlines, and the buffer the feed's bars fill."""

    @property
    def buffer(self) -> BarBuffer:
        """The feed's bars, read by `session_bars` and `premarket`."""
        ...
