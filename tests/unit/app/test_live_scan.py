"""The live pre-market scan: when to start collecting, collection under the rate budget, news in a
second phase for the symbols that need it, and collection errors named in the rejections."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fin_agent.adapters.finnhub.rest import FinnhubQuote
from fin_agent.adapters.live.market import InMemoryDailyBarCache, LiveMarket
from fin_agent.adapters.memory import FixedCalendar, FixedClock, InMemoryMarketData
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.app.live.scan import CallDemand, LiveScan, collection_start, plan_collection
from fin_agent.domain.errors import AdapterError, ConfigError
from fin_agent.domain.gap_scanner import RejectRule
from fin_agent.domain.rules import ScanRules
from fin_agent.domain.values import Bar, DailyBar, Headline, Premarket, Symbol, symbol
from fin_agent.ports.market_data import MarketData

DAY = date(2024, 3, 14)
SCAN_AT = datetime(2024, 3, 14, 13, 0, tzinfo=UTC)  # 09:00 New York
CALENDAR = FixedCalendar()


def test_300_symbols_at_60_a_minute_start_five_minutes_before_the_scan() -> None:
    start = collection_start(SCAN_AT, symbols=300, calls_per_minute=60)

    assert start == datetime(2024, 3, 14, 12, 55, tzinfo=UTC)


def test_collection_start_counts_calls_per_symbol_extra_calls_and_the_margin() -> None:
    start = collection_start(
        SCAN_AT,
        symbols=100,
        calls_per_minute=60,
        calls_per_symbol=2,
        extra_calls=10,
        margin=timedelta(seconds=30),
    )

    assert SCAN_AT - start == timedelta(minutes=3, seconds=30 + 30)


def test_the_plan_waits_for_the_slowest_budget() -> None:
    plan = plan_collection(
        SCAN_AT,
        (
            CallDemand(budget="quote", calls=300, calls_per_minute=60),
            CallDemand(budget="daily", calls=300, calls_per_minute=100),
        ),
        margin=timedelta(seconds=30),
    )

    assert plan.duration == timedelta(minutes=5)
    assert plan.start_at == datetime(2024, 3, 14, 12, 54, 30, tzinfo=UTC)


def test_live_scan_plan_reserves_the_news_calls_of_phase_two() -> None:
    def plan(rules: ScanRules) -> timedelta:
        scan = LiveScan(
            market=InMemoryMarketData(),
            news=CountingNews(),
            rules=rules,
            clock=FixedClock(SCAN_AT),
            quote_calls_per_minute=60,
            daily_calls_per_minute=100,
            news_reserve_calls=30,
            margin=timedelta(0),
        )
        return scan.plan(SCAN_AT, 270).duration

    assert plan(ScanRules(catalyst_required=True)) == timedelta(minutes=5)
    assert plan(ScanRules(top_n=6)) == timedelta(minutes=4, seconds=36)


def test_a_budget_that_allows_nothing_cannot_be_planned() -> None:
    with pytest.raises(ConfigError, match="300 calls at 0/min cannot be planned"):
        CallDemand(budget="quote", calls=300, calls_per_minute=0)


@dataclass
class CountingNews:
    items: dict[Symbol, list[str]] = field(default_factory=dict)
    asked: list[Symbol] = field(default_factory=list)
    fail: set[Symbol] = field(default_factory=set)

    async def headlines(self, sym: Symbol, since: datetime, until: datetime) -> Sequence[Headline]:
        self.asked.append(sym)
        if sym in self.fail:
            raise AdapterError("finnhub /company-news failed 4 times (last: HTTP 502)")
        at = until - timedelta(hours=1)
        return [
            Headline(symbol=sym, title=t, source="wire", published_at=at)
            for t in self.items.get(sym, [])
        ]


def history(sym: Symbol, close: str, volume: int = 1_000_000, count: int = 43) -> list[DailyBar]:
    price = Decimal(close)
    sessions = CALENDAR.sessions(DAY - timedelta(days=90), DAY - timedelta(days=1))[-count:]
    return [
        DailyBar(
            symbol=sym,
            session=s.day,
            open=price,
            high=price + Decimal("0.5"),
            low=price - Decimal("0.5"),
            close=price,
            volume=volume,
        )
        for s in sessions
    ]


def universe(**specs: tuple[str, str, int]) -> InMemoryMarketData:
    """Symbol -> (prev_close, pm_last, adv) in a market with 43 prior sessions each."""
    data = InMemoryMarketData()
    for name, (prev, last, adv) in specs.items():
        sym = symbol(name)
        data.add_daily(history(sym, prev, adv))
        data.premarkets[(sym, DAY)] = Premarket(
            symbol=sym, last=Decimal(last), volume=200_000, as_of=SCAN_AT
        )
    return data


MARKET = {
    "GAPA": ("10.00", "11.00", 1_000_000),  # +10 %, passes everything
    "GAPB": ("10.00", "11.20", 1_000_000),  # +12 %, passes everything
    "FLAT": ("10.00", "10.10", 1_000_000),  # +1 %: gap band
    "THIN": ("10.00", "11.50", 100_000),  # +15 % but thin: average volume
}


def live_scan(
    market: MarketData, news: CountingNews, rules: ScanRules, *, news_for_candidates: bool = True
) -> LiveScan:
    return LiveScan(
        market=market,
        news=news,
        rules=rules,
        clock=FixedClock(SCAN_AT - timedelta(minutes=5)),
        quote_calls_per_minute=60,
        daily_calls_per_minute=100,
        news_for_candidates=news_for_candidates,
    )


@pytest.mark.asyncio
async def test_catalyst_required_fetches_news_only_for_symbols_that_passed_every_other_rule() -> (
    None
):
    news = CountingNews(items={symbol("GAPA"): ["GAPA wins a contract"]})
    scan = live_scan(universe(**MARKET), news, ScanRules(catalyst_required=True))

    outcome = await scan.run(DAY, SCAN_AT, [symbol(s) for s in MARKET])

    assert sorted(news.asked) == ["GAPA", "GAPB"]
    assert outcome.news_symbols == ("GAPA", "GAPB")
    [candidate] = outcome.result.candidates
    assert (candidate.symbol, candidate.top_headline) == ("GAPA", "GAPA wins a contract")
    rules = {r.symbol: r.rule for r in outcome.result.rejections}
    assert rules == {
        "FLAT": RejectRule.GAP_BAND,
        "GAPB": RejectRule.CATALYST,
        "THIN": RejectRule.ADV,
    }


@pytest.mark.asyncio
async def test_without_the_catalyst_rule_only_the_candidates_get_their_headlines() -> None:
    news = CountingNews(items={symbol("GAPB"): ["GAPB beats"], symbol("GAPA"): ["unseen"]})
    scan = live_scan(universe(**MARKET), news, ScanRules(top_n=1))

    outcome = await scan.run(DAY, SCAN_AT, [symbol(s) for s in MARKET])

    assert news.asked == ["GAPB"]
    [candidate] = outcome.result.candidates
    assert (candidate.symbol, candidate.headline_count, candidate.top_headline) == (
        "GAPB",
        1,
        "GAPB beats",
    )
    assert {r.symbol: r.rule for r in outcome.result.rejections}[symbol("GAPA")] is RejectRule.RANK


@pytest.mark.asyncio
async def test_news_can_be_left_out_entirely_when_no_rule_needs_it() -> None:
    news = CountingNews()
    scan = live_scan(universe(**MARKET), news, ScanRules(), news_for_candidates=False)

    outcome = await scan.run(DAY, SCAN_AT, [symbol(s) for s in MARKET])

    assert news.asked == []
    assert [c.symbol for c in outcome.result.candidates] == ["GAPB", "GAPA"]


@dataclass
class FailingMarket:
    inner: InMemoryMarketData
    errors: dict[Symbol, Exception]

    async def symbols(self) -> Sequence[Symbol]:
        return await self.inner.symbols()

    async def daily_bars(self, sym: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        return await self.inner.daily_bars(sym, before, count)

    async def premarket(self, sym: Symbol, day: date, until: datetime) -> Premarket | None:
        if sym in self.errors:
            raise self.errors[sym]
        return await self.inner.premarket(sym, day, until)

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        return []


@pytest.mark.asyncio
async def test_a_symbol_whose_data_failed_is_rejected_with_the_reason() -> None:
    error = AdapterError("finnhub /quote: circuit open after 5 consecutive failures")
    market = FailingMarket(universe(**MARKET), {symbol("GAPA"): error})
    news = CountingNews(fail={symbol("GAPB")})
    scan = live_scan(market, news, ScanRules(catalyst_required=True))

    outcome = await scan.run(DAY, SCAN_AT, [symbol(s) for s in MARKET])

    details = {r.symbol: (r.rule, r.detail) for r in outcome.result.rejections}
    assert details[symbol("GAPA")] == (
        RejectRule.NO_DATA,
        "data collection failed: finnhub /quote: circuit open after 5 consecutive failures",
    )
    assert details[symbol("GAPB")] == (
        RejectRule.CATALYST,
        "news could not be fetched: finnhub /company-news failed 4 times (last: HTTP 502)",
    )
    assert set(outcome.failures) == {"GAPA", "GAPB"}


@pytest.mark.asyncio
async def test_a_config_error_stops_the_whole_scan() -> None:
    error = ConfigError("finnhub /quote answered HTTP 401: the API key is missing or invalid")
    market = FailingMarket(universe(**MARKET), {symbol("GAPA"): error})
    scan = live_scan(market, CountingNews(), ScanRules())

    with pytest.raises(ConfigError, match="answered HTTP 401"):
        await scan.run(DAY, SCAN_AT, [symbol(s) for s in MARKET])


class FakeTime:
    """One fake instant for the Clock port and the budget's monotonic clock."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    async def sleep(self, secs: float) -> None:
        self.at += timedelta(seconds=secs)
        await asyncio.sleep(0)


@dataclass
class BudgetedQuotes:
    """Finnhub's quote behind a real RateBudget: every symbol gaps up 10 % at 08:58 New York."""

    budget: RateBudget
    in_flight: int = 0
    most_in_flight: int = 0

    async def quote_figures(self, sym: Symbol) -> FinnhubQuote:
        await self.budget.acquire()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        return FinnhubQuote(
            symbol=sym,
            last=Decimal("11.00"),
            prev_close=Decimal("10.00"),
            open=Decimal("10.00"),
            high=Decimal("11.00"),
            low=Decimal("10.00"),
            change=None,
            change_pct=None,
            at=SCAN_AT - timedelta(minutes=2),
        )

    async def company_news(self, sym: Symbol, start: date, end: date) -> list[Headline]:
        await self.budget.acquire()
        return []


@dataclass
class DailyFromMemory:
    name: str = "yahoo"

    async def daily_bars(self, sym: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        return [b for b in history(sym, "10.00") if start <= b.session <= end]


@pytest.mark.asyncio
async def test_300_symbols_are_collected_under_the_budget_within_the_planned_time() -> None:
    fake = FakeTime(SCAN_AT - timedelta(hours=1))
    budget = RateBudget(clock=fake.monotonic, sleep=fake.sleep)
    quotes = BudgetedQuotes(budget)
    live = LiveMarket(
        universe=[],
        finnhub=quotes,
        daily_sources=[DailyFromMemory()],
        cache=InMemoryDailyBarCache(),
        calendar=CALENDAR,
        clock=fake,
    )
    scan = LiveScan(
        market=live,
        news=live,
        rules=ScanRules(top_n=5),
        clock=fake,
        quote_calls_per_minute=budget.calls_per_minute,
        daily_calls_per_minute=100,
        concurrency=8,
        margin=timedelta(0),
    )
    names = [symbol(f"S{i:03d}") for i in range(300)]
    plan = scan.plan(SCAN_AT, len(names))
    assert plan.start_at == SCAN_AT - timedelta(minutes=5, seconds=5)  # 305 calls at 60/min
    fake.at = plan.start_at

    outcome = await scan.run(DAY, SCAN_AT, names)

    assert outcome.late_by == timedelta(0)
    assert outcome.finished_at - outcome.started_at >= timedelta(minutes=4)  # 60/min held
    assert budget.stats.acquired == 305  # 300 quotes, then news for the 5 candidates
    assert quotes.most_in_flight <= 8
    assert len(outcome.result.candidates) == 5
    assert outcome.failures == {}
