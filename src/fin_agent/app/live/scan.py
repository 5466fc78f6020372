"""The pre-market scan on live data: collect the universe's snapshot within the rate budgets so it
is complete by scan time, then run `GapScanner` in two phases so news is fetched for few symbols.

The collection itself is every day's (`UniverseCollector`); live adds the planning. Planning: a
vendor allowing R calls a minute needs calls / R minutes (300 quotes at 60/min: five
minutes), so collection starts that long, plus a margin, before scan time (`plan_collection`).
Phase 1 scans without news; phase 2 fetches headlines only for the symbols that passed every other
rule (when `catalyst_required`) or for the candidates (to show their headline), and scans again.
Each symbol's figures are as of its collection (`Premarket.as_of`), at most the plan's duration
before scan time: the price of a budget that allows one quote a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog

from fin_agent.app.day.collect import UniverseCollector
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.gap_scanner import ScanResult, UniverseSnapshot
from fin_agent.domain.rules import ScanRules
from fin_agent.domain.values import Symbol
from fin_agent.ports.clock import Clock
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDemand:
    """Calls one rate budget must serve before scan time, and the sustained rate it allows."""

    budget: str
    calls: int
    calls_per_minute: float

    def __post_init__(self) -> None:
        if self.calls < 0 or not self.calls_per_minute > 0:
            raise ConfigError(
                f"budget {self.budget!r}: {self.calls} calls at {self.calls_per_minute}/min cannot "
                "be planned; give its windows at least one call per period"
            )

    @property
    def duration(self) -> timedelta:
        """How long the budget takes to serve the calls at its sustained rate."""
        return timedelta(seconds=self.calls * 60.0 / self.calls_per_minute)


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionPlan:
    """When the pre-market collection must start to be complete by `scan_at`."""

    scan_at: datetime
    demands: tuple[CallDemand, ...]
    margin: timedelta

    @property
    def duration(self) -> timedelta:
        """The slowest budget's time: the budgets are served side by side."""
        return max((d.duration for d in self.demands), default=timedelta(0))

    @property
    def start_at(self) -> datetime:
        """The latest instant the collection can start and still finish by `scan_at`."""
        return self.scan_at - self.duration - self.margin


def plan_collection(
    scan_at: datetime, demands: Sequence[CallDemand], margin: timedelta = timedelta(seconds=30)
) -> CollectionPlan:
    """Plan a collection of `demands` that must be complete by `scan_at`, `margin` to spare."""
    if margin < timedelta(0):
        raise ConfigError(f"the collection margin must not be negative, got {margin}")
    return CollectionPlan(scan_at=scan_at, demands=tuple(demands), margin=margin)


def collection_start(
    scan_at: datetime,
    *,
    symbols: int,
    calls_per_minute: float,
    calls_per_symbol: int = 1,
    extra_calls: int = 0,
    margin: timedelta = timedelta(0),
) -> datetime:
    """When to start collecting `symbols` x `calls_per_symbol` (+ `extra_calls`) calls at
    `calls_per_minute` to finish by `scan_at`: 300 symbols at 60/min start five minutes early."""
    demand = CallDemand(
        budget="default",
        calls=symbols * calls_per_symbol + extra_calls,
        calls_per_minute=calls_per_minute,
    )
    return plan_collection(scan_at, (demand,), margin).start_at


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveScanOutcome:
    """A live scan's snapshot and result, and what went wrong collecting it."""

    snapshot: UniverseSnapshot
    result: ScanResult
    failures: Mapping[Symbol, str]
    news_symbols: tuple[Symbol, ...]
    started_at: datetime
    finished_at: datetime

    @property
    def late_by(self) -> timedelta:
        """How long after scan time the collection finished (zero when on time)."""
        return max(timedelta(0), self.finished_at - self.snapshot.taken_at)


class LiveScan:
    """Collects the universe concurrently under the ports' rate budgets and scans it in two phases.

    `quote_calls_per_minute` and `daily_calls_per_minute` are the sustained rates of the quote
    vendor's budget (Finnhub) and the daily bar vendor's (Yahoo), for planning only: the budgets
    themselves sit in the adapters and pace the calls.
    """

    def __init__(
        self,
        *,
        market: MarketData,
        news: News,
        rules: ScanRules,
        clock: Clock,
        quote_calls_per_minute: float,
        daily_calls_per_minute: float,
        news_lookback: timedelta = timedelta(hours=24),
        news_for_candidates: bool = True,
        news_reserve_calls: int = 10,
        concurrency: int = 8,
        margin: timedelta = timedelta(seconds=30),
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"scan concurrency must be at least 1, got {concurrency}")
        self._market = market
        self._news = news
        self._rules = rules
        self._clock = clock
        self._quote_rate = quote_calls_per_minute
        self._daily_rate = daily_calls_per_minute
        self._news_lookback = news_lookback
        self._news_for_candidates = news_for_candidates
        self._news_reserve = news_reserve_calls
        self._concurrency = concurrency
        self._margin = margin

    def plan(self, scan_at: datetime, universe_size: int) -> CollectionPlan:
        """When to start so a universe of `universe_size` is collected by `scan_at`.

        One quote per symbol plus the phase-2 news calls (`news_reserve_calls`, or `top_n` when
        only candidates get news); one daily bar call per symbol (the day's new session).
        """
        rules = self._rules
        news_calls = 0
        if rules.catalyst_required:
            news_calls = self._news_reserve
        elif self._news_for_candidates:
            news_calls = rules.top_n
        demands = (
            CallDemand(
                budget="quote",
                calls=universe_size + news_calls,
                calls_per_minute=self._quote_rate,
            ),
            CallDemand(budget="daily", calls=universe_size, calls_per_minute=self._daily_rate),
        )
        return plan_collection(scan_at, demands, self._margin)

    async def run(
        self,
        day: date,
        scan_at: datetime,
        universe: Sequence[Symbol],
        *,
        previous_close: datetime | None = None,
    ) -> LiveScanOutcome:
        """Collect the universe (as every day does, `UniverseCollector`) and time it. An empty
        `universe` is the market's own (the whole market's listing is part of the time)."""
        started = self._clock.now()
        if not universe:
            universe = list(await self._market.symbols())
        collected = await UniverseCollector(
            market=self._market,
            news=self._news,
            rules=self._rules,
            news_lookback=self._news_lookback,
            news_for_candidates=self._news_for_candidates,
            concurrency=self._concurrency,
        ).collect(day, scan_at, universe, previous_close=previous_close)
        finished = self._clock.now()
        outcome = LiveScanOutcome(
            snapshot=collected.snapshot,
            result=collected.result,
            failures=collected.failures,
            news_symbols=collected.news_symbols,
            started_at=started,
            finished_at=finished,
        )
        log.info(
            "live_scan_done",
            trading_day=str(day),
            symbols=len(collected.snapshot.symbols),
            failed=len(collected.failures),
            news_symbols=len(collected.news_symbols),
            candidates=len(collected.result.candidates),
            secs=round((finished - started).total_seconds(), 3),
        )
        if outcome.late_by > timedelta(0):
            log.warning("live_scan_late", late_secs=round(outcome.late_by.total_seconds(), 3))
        return outcome
