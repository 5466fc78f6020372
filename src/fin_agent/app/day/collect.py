"""`UniverseCollector`: the scan's snapshot of the universe, collected the same way for every day.

A backtest, the demo and a live day all collect through this one service: every symbol's daily
history and pre-market figures concurrently (at most `concurrency` symbols at once; the ports'
own budgets pace the calls), a symbol whose data cannot be had recorded as a failure rather than
stopping the scan, then the scan in two phases so news is fetched only for the few symbols that
need it (those the catalyst rule alone refused, or the candidates, to show their headline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog

from fin_agent.domain.errors import ConfigError, DataError, TransientError
from fin_agent.domain.gap_scanner import (
    GapScanner,
    Rejection,
    RejectRule,
    ScanResult,
    SymbolSnapshot,
    UniverseSnapshot,
)
from fin_agent.domain.rules import ScanRules
from fin_agent.domain.values import Headline, Symbol
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News

log = structlog.get_logger(__name__)

# Errors that lose one symbol's data, not the scan: a permanent ConfigError still stops it.
_SYMBOL_ERRORS = (TransientError, DataError)
_T = TypeVar("_T")
# Sessions close at 16:00 (13:00 early) here: the previous close's date here is its session's.
EXCHANGE_TZ = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True, kw_only=True)
class Collected:
    """A scan's snapshot and result, and what went wrong collecting it."""

    snapshot: UniverseSnapshot
    result: ScanResult
    failures: Mapping[Symbol, str]
    news_symbols: tuple[Symbol, ...]


class UniverseCollector:
    """Collects a universe's snapshot through the market and news ports, and scans it."""

    def __init__(
        self,
        *,
        market: MarketData,
        news: News,
        rules: ScanRules,
        news_lookback: timedelta = timedelta(hours=24),
        news_for_candidates: bool = True,
        concurrency: int = 8,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"scan concurrency must be at least 1, got {concurrency}")
        self._market = market
        self._news = news
        self._rules = rules
        self._news_lookback = news_lookback
        self._news_for_candidates = news_for_candidates
        self._concurrency = concurrency

    async def collect(
        self,
        day: date,
        scan_at: datetime,
        universe: Sequence[Symbol],
        *,
        previous_close: datetime | None = None,
    ) -> Collected:
        """Collect, scan without news, fetch news for the few that need it, and scan again
        (`previous_close`: where the catalyst window starts by default)."""
        symbols = tuple(sorted(set(universe)))
        gate = asyncio.Semaphore(self._concurrency)
        lookback = self._rules.history_bars
        failures: dict[Symbol, str] = {}

        async def collect(sym: Symbol) -> SymbolSnapshot:
            async with gate:
                daily, premarket = await asyncio.gather(
                    self._market.daily_bars(sym, day, lookback),
                    self._market.premarket(sym, day, scan_at),
                    return_exceptions=True,
                )
            if isinstance(daily, BaseException):
                _record(daily, sym, failures)
                daily = ()
            if isinstance(premarket, BaseException):
                _record(premarket, sym, failures)
                premarket = None
            return SymbolSnapshot(symbol=sym, daily_bars=tuple(daily), premarket=premarket)

        items = await _all(collect(s) for s in symbols)
        prev_session = previous_close.astimezone(EXCHANGE_TZ).date() if previous_close else None
        snapshot = UniverseSnapshot(
            day=day, taken_at=scan_at, symbols=tuple(items), prev_session=prev_session
        )
        _log_close_sources(snapshot)
        wanted = self._news_wanted(snapshot)
        news_failures: dict[Symbol, str] = {}
        since = news_since(self._rules, scan_at, self._news_lookback, previous_close)

        async def fetch_news(sym: Symbol) -> tuple[Symbol, tuple[Headline, ...]]:
            async with gate:
                try:
                    found = await self._news.headlines(sym, since, scan_at)
                except _SYMBOL_ERRORS as exc:
                    news_failures[sym] = str(exc)
                    log.warning("scan_news_failed", symbol=sym, error=str(exc))
                    return sym, ()
            return sym, tuple(found)

        headlines = dict(await _all(fetch_news(s) for s in wanted))
        if headlines:
            snapshot = replace(
                snapshot,
                symbols=tuple(
                    replace(item, headlines=headlines.get(item.symbol, ()))
                    for item in snapshot.symbols
                ),
            )
        result = _explain(GapScanner(self._rules).scan(snapshot), failures, news_failures)
        return Collected(
            snapshot=snapshot,
            result=result,
            failures={**failures, **news_failures},
            news_symbols=tuple(wanted),
        )

    def _news_wanted(self, snapshot: UniverseSnapshot) -> list[Symbol]:
        """The symbols whose headlines the scan needs, from a first scan without news."""
        if self._rules.catalyst_required:
            # No headline is in the snapshot yet: every symbol that passed every other rule is
            # rejected by the catalyst rule, and only those need their news.
            first = GapScanner(self._rules).scan(snapshot)
            return [r.symbol for r in first.rejections if r.rule is RejectRule.CATALYST]
        if self._news_for_candidates:
            return [c.symbol for c in GapScanner(self._rules).scan(snapshot).candidates]
        return []


def _log_close_sources(snapshot: UniverseSnapshot) -> None:
    """Say where the sources of a previous close disagree (`domain.prev_close`): a quote's close
    used for a missing daily bar, or a quote and a daily bar of the same session that differ."""
    for item in snapshot.symbols:
        close = item.prev_close(snapshot.prev_session)
        if close is None or not close.disagrees:
            continue
        log.warning(
            "prev_close_sources_disagree",
            symbol=item.symbol,
            trading_day=str(snapshot.day),
            prev_session=str(snapshot.prev_session),
            used=close.source.value,
            prev_close=str(close.price),
            daily_close=None if close.daily_close is None else str(close.daily_close),
            quoted_close=None if close.quoted_close is None else str(close.quoted_close),
            last_daily_session=str(close.last_daily_session),
        )


def _record(error: BaseException, sym: Symbol, failures: dict[Symbol, str]) -> None:
    """Record a symbol's collection error; a permanent or unexpected error stops the scan."""
    if isinstance(error, ConfigError) or not isinstance(error, _SYMBOL_ERRORS):
        raise error
    failures.setdefault(sym, str(error))
    log.warning("scan_symbol_failed", symbol=sym, error=str(error))


async def _all(coros: Iterable[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run `coros` concurrently; the first error cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _explain(
    result: ScanResult, failures: Mapping[Symbol, str], news_failures: Mapping[Symbol, str]
) -> ScanResult:
    """Name the collection error in the rejections it caused (the dashboard shows the detail)."""

    def why(rejection: Rejection) -> Rejection:
        if rejection.rule is RejectRule.NO_DATA and rejection.symbol in failures:
            detail = f"data collection failed: {failures[rejection.symbol]}"
            return replace(rejection, detail=detail)
        if rejection.rule is RejectRule.CATALYST and rejection.symbol in news_failures:
            detail = f"news could not be fetched: {news_failures[rejection.symbol]}"
            return replace(rejection, detail=detail)
        return rejection

    return replace(result, rejections=tuple(why(r) for r in result.rejections))


def news_since(
    rules: ScanRules, scan_at: datetime, lookback: timedelta, previous_close: datetime | None
) -> datetime:
    """Where the scan's news window starts: with `catalyst_required`, `scan.catalyst_window`
    (hours before the scan, or the previous session's close); otherwise the news lookback."""
    if not rules.catalyst_required:
        return scan_at - lookback
    if rules.catalyst_window_hours is not None:
        return scan_at - timedelta(hours=rules.catalyst_window_hours)
    return previous_close if previous_close is not None else scan_at - lookback
