"""`FinnhubNewsPoller`: news as a stream over REST, for keys whose plan has no WebSocket news.

Every `every_secs` a round asks `/news?category=general` for market news newer than the last id
seen (its pages follow `minId`), then `/company-news` for at most `symbols_per_round` watched
symbols, taking turns so every symbol is asked in time. Each call goes through the REST client and
so through the shared `RateBudget` (a 429 pauses every caller of the key, the scan's quotes too);
`symbols_per_round` and `every_secs` bound the poller's share of the budget. A failed call is
logged and retried next round, never fatal. Items repeat across rounds: the consumer dedupes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import structlog

from fin_agent.domain.errors import ConfigError, FinAgentError
from fin_agent.domain.news import NewsItem
from fin_agent.domain.values import Symbol
from fin_agent.ports.clock import Clock
from fin_agent.ports.news import NewsSink, StopSignal

log = structlog.get_logger(__name__)


class NewsRest(Protocol):
    """The REST calls the poller makes (`FinnhubRest`)."""

    async def company_news_items(self, symbol: Symbol, start: date, end: date) -> list[NewsItem]:
        """Company news dated `start` to `end` inclusive."""
        ...

    async def general_news(self, min_id: int = 0) -> list[NewsItem]:
        """Market news newer than `min_id`."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NewsPollConfig:
    """How often the poller asks, and how much of the REST budget one round may use."""

    every_secs: float = 60.0
    symbols_per_round: int = 10
    general: bool = True
    lookback_days: int = 1

    def __post_init__(self) -> None:
        if self.every_secs <= 0 or self.symbols_per_round < 1 or self.lookback_days < 0:
            raise ConfigError(
                "news polling needs every_secs > 0, symbols_per_round >= 1 and lookback_days "
                f">= 0, got {self.every_secs}, {self.symbols_per_round}, {self.lookback_days}"
            )

    @property
    def calls_per_minute(self) -> float:
        """The most REST calls a minute the poller makes (its share of the budget)."""
        return (self.symbols_per_round + int(self.general)) * 60.0 / self.every_secs


class FinnhubNewsPoller:
    """Polls Finnhub's company and market news and hands every item to the sink."""

    def __init__(self, rest: NewsRest, clock: Clock, config: NewsPollConfig | None = None) -> None:
        self.config = config or NewsPollConfig()
        self._rest = rest
        self._clock = clock
        self._watched: tuple[Symbol, ...] = ()
        self._turn = 0
        self._min_id = 0
        self.rounds = 0
        self.calls = 0
        self.failures = 0

    def set_watchlist(self, symbols: Collection[Symbol]) -> None:
        """Poll the company news of exactly `symbols` from the next round on."""
        self._watched = tuple(sorted(set(symbols)))
        self._turn %= max(1, len(self._watched))

    async def run(self, sink: NewsSink, stop: StopSignal) -> None:
        """Poll a round every `every_secs` until `stop` is set."""
        while not stop.is_set():
            await self.poll_once(sink)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.every_secs)

    async def poll_once(self, sink: NewsSink) -> int:
        """One round: market news, then the next `symbols_per_round` symbols; items handed."""
        handed = 0
        self.rounds += 1
        if self.config.general:
            items = await self._call("/news", self._rest.general_news(self._min_id))
            if items:
                self._min_id = max([self._min_id, *(_numeric_id(i) for i in items)])
                await sink(items)
                handed += len(items)
        today = self._clock.now().date()
        start = today - timedelta(days=self.config.lookback_days)
        for name in self._next_symbols():
            items = await self._call(name, self._rest.company_news_items(name, start, today))
            if items:
                await sink(items)
                handed += len(items)
        return handed

    def _next_symbols(self) -> Sequence[Symbol]:
        watched = self._watched
        count = min(len(watched), self.config.symbols_per_round)
        chosen = [watched[(self._turn + k) % len(watched)] for k in range(count)]
        self._turn = (self._turn + count) % max(1, len(watched))
        return chosen

    async def _call(self, what: str, call: Awaitable[list[NewsItem]]) -> list[NewsItem]:
        self.calls += 1
        try:
            return await call
        except FinAgentError as exc:
            self.failures += 1
            log.warning("news_poll_failed", what=what, error=str(exc))
            return []


def _numeric_id(item: NewsItem) -> int:
    """Finnhub's numeric item id (`finnhub:<id>`), 0 for items without one."""
    source, _, rest = item.news_id.partition(":")
    return int(rest) if source == "finnhub" and rest.isdigit() else 0
