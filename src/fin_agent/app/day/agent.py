"""`Agent`: the consumer group that feeds the market's bars to the trading day in progress."""

from __future__ import annotations

import asyncio

from fin_agent.app.day.trading_day import TradingDay
from fin_agent.domain.events import BarsClosed, DomainEvent, NewsPublished

GROUP = "agent"
"""The consumer group of the market's bars."""
NEWS_GROUP = "agent-news"
"""The consumer group of the headlines the day ties to its plans."""


class Agent:
    """Holds the current `TradingDay` and hands it each minute of bars it consumes from the bus.

    A restarting agent closes its gate before the bus starts and opens it once it knows which
    day it holds (resumed from the store, or none): bars waiting on the bus are not handed to,
    or skipped for, a day that is not yet back.
    """

    def __init__(self) -> None:
        self.day: TradingDay | None = None
        self.bars_handled = 0
        self.bars_ignored = 0
        self._gate = asyncio.Event()
        self._gate.set()

    def close_gate(self) -> None:
        """Hold every bar until `open_gate` (a restart deciding which day it resumes)."""
        self._gate.clear()

    def open_gate(self) -> None:
        """Hand bars to the day again."""
        self._gate.set()

    async def ready(self) -> None:
        """Return once the gate is open (the day a restart resumes is back)."""
        await self._gate.wait()

    async def on_bars(self, event: DomainEvent) -> None:
        """Handle a `market.bars_closed` event: only bars of the day in progress count."""
        if not isinstance(event, BarsClosed):
            return
        await self._gate.wait()
        if self.day is None or event.trading_day != self.day.day:
            self.bars_ignored += 1
            return
        await self.day.on_bars(event.bars)
        self.bars_handled += 1

    async def on_news(self, event: DomainEvent) -> None:
        """Handle a `news.published` event: the day in progress ties it to its plans."""
        if not isinstance(event, NewsPublished):
            return
        await self._gate.wait()
        if self.day is not None and event.trading_day == self.day.day:
            await self.day.on_news(event.item, event.occurred_at)
