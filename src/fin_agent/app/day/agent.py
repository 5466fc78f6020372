"""`Agent`: the consumer group that feeds the market's bars to the trading day in progress."""

from __future__ import annotations

from fin_agent.app.day.trading_day import TradingDay
from fin_agent.domain.events import BarsClosed, DomainEvent


class Agent:
    """Holds the current `TradingDay` and hands it each minute of bars it consumes from the bus."""

    def __init__(self) -> None:
        self.day: TradingDay | None = None
        self.bars_handled = 0
        self.bars_ignored = 0

    async def on_bars(self, event: DomainEvent) -> None:
        """Handle a `market.bars_closed` event: only bars of the day in progress count."""
        if not isinstance(event, BarsClosed):
            return
        if self.day is None or event.trading_day != self.day.day:
            self.bars_ignored += 1
            return
        await self.day.on_bars(event.bars)
        self.bars_handled += 1
