"""News as a stream: once per headline across repeats and a restart, the catalyst rule on the
window since the previous close, news after the scan attached to plans and cancelling on keywords,
Finnhub's news items decoded, and the REST poller's turns within its share of the budget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from day_market import DAY, NY, et, market_with, opening_bars
from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.finnhub.news_decode import decode_news
from fin_agent.adapters.finnhub.news_poll import FinnhubNewsPoller, NewsPollConfig
from fin_agent.adapters.memory import (
    FixedCalendar,
    FixedClock,
    InMemoryEventBus,
    InMemoryNews,
    InMemoryStore,
)
from fin_agent.adapters.storage.memory_scan_records import InMemoryScanRecords
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.news.publisher import NewsPublisher
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.events import NewsAttached, NewsPublished, PlanCreated, PlanRejected
from fin_agent.domain.news import NewsItem, keyword_hits, news_key
from fin_agent.domain.rules import ScanRules, Strategy
from fin_agent.domain.trade_plan import PlanState
from fin_agent.domain.values import Headline, Symbol, symbol

GAP = symbol("GAP")


def item(news_id: str, title: str, at: datetime, about: str = "GAP") -> NewsItem:
    return NewsItem(
        news_id=news_id,
        symbols=(symbol(about),),
        title=title,
        source="Wire",
        published_at=at,
        url=f"https://news.example.com/{news_id}",
    )


# -- the stable id and once-only publishing --------------------------------------------------


def test_news_key_is_the_source_id_else_a_hash_of_the_url_else_of_title_and_time() -> None:
    at = et(8, 0)
    assert news_key("finnhub", 7712301, "https://x/a", "t", at) == "finnhub:7712301"
    by_url = news_key("finnhub", None, "https://x/a", "t", at)
    assert by_url.startswith("url:")
    assert by_url == news_key("sim", "", "https://x/a", "u", at)
    assert news_key("finnhub", None, "", "t", at).startswith("title:")
    assert news_key("finnhub", None, "", "t", at) != news_key("finnhub", None, "", "t2", at)


@pytest.mark.asyncio
async def test_a_headline_is_published_once_across_repeats_and_a_restart() -> None:
    bus, store = InMemoryEventBus(), InMemoryStore(EventCodec(default_registry()))
    clock = FixedClock(et(5, 0))
    first = NewsPublisher(bus=bus, clock=clock, day=DAY)
    a, b = item("finnhub:1", "GAP wins approval", et(4, 30)), item("finnhub:2", "x", et(4, 40))
    assert len(await first.publish([a, a, b])) == 2  # a repeat inside one batch
    assert await first.publish([a, b]) == []  # the next poll, or frames after a reconnect
    await store.write(bus.published)
    restarted = NewsPublisher(bus=bus, clock=clock, day=DAY)
    assert await restarted.load_seen(store) == 2
    assert await restarted.publish([b, item("finnhub:3", "y", et(4, 50))]) != []
    ids = [e.item.news_id for e in bus.published if isinstance(e, NewsPublished)]
    assert ids == ["finnhub:1", "finnhub:2", "finnhub:3"]
    assert (first.duplicates, restarted.duplicates) == (3, 1)
    assert bus.published[0].id == NewsPublished.id_for("finnhub:1")  # a slip-through dedupes too


@pytest.mark.asyncio
async def test_news_older_than_the_window_is_dropped_and_counted() -> None:
    bus = InMemoryEventBus()
    publisher = NewsPublisher(bus=bus, clock=FixedClock(et(5, 0)), day=DAY, since=et(4, 0))
    assert await publisher.publish([item("finnhub:9", "old", et(3, 0))]) == []
    assert publisher.stale == 1
    assert bus.published == []


def test_keywords_match_whole_words_case_insensitively() -> None:
    keywords = ("offering", "halt", "downgrade")
    assert keyword_hits("GAP prices a discounted share Offering", keywords) == ("offering",)
    assert keyword_hits("Trading halted in GAP", keywords) == ()  # halted is not halt
    assert keyword_hits("GAP: halt, then downgrade", keywords) == ("halt", "downgrade")


# -- the catalyst rule and news after the scan ----------------------------------------------


def news_day(
    rules: ScanRules,
    headlines: Sequence[Headline] = (),
    records: InMemoryScanRecords | None = None,
) -> tuple[TradingDay, InMemoryEventBus]:
    strategy = Strategy(scan=rules)
    session = FixedCalendar().session(DAY)
    previous = FixedCalendar().previous_session(DAY)
    assert session is not None
    assert previous is not None
    bus = InMemoryEventBus()
    market = market_with("GAP", "NEWS", extra_bars=[])
    ports = DayPorts(
        clock=FixedClock(et(9, 0)),
        market=market,
        news=InMemoryNews(items=list(headlines)),
        orders=PaperBroker(strategy.costs),
        bus=bus,
        records=records or InMemoryScanRecords(),
    )
    day = TradingDay(
        session=session,
        times=DayTimes.of(session, strategy, NY, time(9, 0)),
        strategy=strategy,
        start_equity=Decimal(100_000),
        ports=ports,
        previous_close=previous.close,
    )
    return day, bus


def headline(name: str, title: str, at: datetime) -> Headline:
    return Headline(symbol=symbol(name), title=title, source="Wire", published_at=at, url="")


@pytest.mark.asyncio
async def test_catalyst_required_passes_only_a_headline_since_the_previous_close_and_names_it() -> (
    None
):
    last_evening = datetime.combine(DAY - timedelta(days=1), time(17, 0), NY).astimezone(UTC)
    before_close = datetime.combine(DAY - timedelta(days=1), time(15, 0), NY).astimezone(UTC)
    day, bus = news_day(
        ScanRules(catalyst_required=True),
        [
            headline("GAP", "GAP wins approval", last_evening),
            headline("NEWS", "NEWS beats estimates", before_close),  # inside 24 h, not the window
        ],
    )
    result = await day.scan()
    assert [c.symbol for c in result.candidates] == [GAP]
    assert result.candidates[0].top_headline == "GAP wins approval"
    [catalyst] = [e for e in bus.published if isinstance(e, NewsAttached)]
    assert (catalyst.symbol, catalyst.title, catalyst.at_scan) == (GAP, "GAP wins approval", True)
    assert {r.symbol for r in result.rejections if r.rule.value == "catalyst"} == {"NEWS"}


@pytest.mark.asyncio
async def test_catalyst_window_in_hours_counts_back_from_the_scan() -> None:
    before_close = datetime.combine(DAY - timedelta(days=1), time(15, 0), NY).astimezone(UTC)
    day, _ = news_day(
        ScanRules(catalyst_required=True, catalyst_window_hours=24),
        [headline("NEWS", "NEWS beats estimates", before_close)],
    )
    assert [c.symbol for c in (await day.scan()).candidates] == [symbol("NEWS")]


@pytest.mark.asyncio
async def test_news_after_the_scan_is_attached_once_and_a_keyword_cancels_the_plan() -> None:
    records = InMemoryScanRecords()  # the store's, which the restarted day reads
    day, bus = news_day(ScanRules(cancel_on_keywords=("offering",)), records=records)
    await day.scan()
    await day.on_bars(opening_bars("GAP")[:1])
    quiet = item("finnhub:5", "Analysts react to GAP", et(9, 20))
    await day.on_news(quiet, et(9, 20))
    await day.on_news(quiet, et(9, 21))  # a redelivery: attached once
    for minute in opening_bars("GAP")[1:]:
        await day.on_bars([minute])
    await day.plan_now(et(9, 35))
    assert day.plans[GAP].state is PlanState.PLANNED
    await day.on_news(item("finnhub:6", "GAP prices a share offering", et(9, 36)), et(9, 36))
    attached = [e for e in bus.published if isinstance(e, NewsAttached)]
    assert [(e.news_id, e.cancelled) for e in attached] == [
        ("finnhub:5", False),
        ("finnhub:6", True),
    ]
    [cancel] = [e for e in bus.published if isinstance(e, PlanRejected) and e.symbol == GAP]
    assert cancel.reason == "news"
    assert "offering" in cancel.detail
    assert day.plans[GAP].state is PlanState.CANCELLED
    resumed, _ = news_day(ScanRules(cancel_on_keywords=("offering",)), records=records)
    await resumed.resume(bus.published)  # the fold stands where the day stood
    assert resumed.plans[GAP].state is PlanState.CANCELLED


@pytest.mark.asyncio
async def test_a_keyword_before_planning_keeps_the_candidate_from_becoming_a_plan() -> None:
    day, bus = news_day(ScanRules(cancel_on_keywords=("halt",)))
    await day.scan()
    await day.on_news(item("finnhub:7", "GAP: trading halt pending news", et(9, 10)), et(9, 10))
    for minute in opening_bars("GAP"):
        await day.on_bars([minute])
    await day.plan_now(et(9, 35))
    assert GAP not in day.plans
    assert all(e.plan.symbol != GAP for e in bus.published if isinstance(e, PlanCreated))


@pytest.mark.asyncio
async def test_without_keywords_news_never_changes_a_plan() -> None:
    day, bus = news_day(ScanRules())
    await day.scan()
    for minute in opening_bars("GAP"):
        await day.on_bars([minute])
    await day.plan_now(et(9, 35))
    await day.on_news(item("finnhub:8", "GAP prices a share offering", et(9, 40)), et(9, 40))
    assert day.plans[GAP].state is PlanState.PLANNED
    assert not [e for e in bus.published if isinstance(e, PlanRejected) and e.reason == "news"]


# -- Finnhub's items and the poller ----------------------------------------------------------


def test_finnhub_news_items_decode_with_ids_and_related_symbols_and_skip_bad_ones() -> None:
    decoded = decode_news(
        [
            {
                "category": "company",
                "datetime": 1741600000,
                "headline": "GAP wins approval",
                "id": 7712301,
                "image": "",
                "related": "GAP,^GSPC,NEWS",
                "source": "Reuters",
                "summary": "s",
                "url": "https://x/1",
            },
            {"datetime": Decimal("1741600001"), "headline": "no id", "url": "https://x/2"},
            {"datetime": "yesterday", "headline": "bad time"},
            {"datetime": 1741600002, "headline": "  "},
            "not an object",
        ],
        about=symbol("AAA"),
    )
    assert decoded.bad == 3
    first, second = decoded.items
    assert first.news_id == "finnhub:7712301"
    assert first.symbols == (symbol("AAA"), GAP, symbol("NEWS"))
    assert first.published_at == datetime.fromtimestamp(1741600000, UTC)
    assert second.news_id.startswith("url:")


class FakeRest:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: set[str] = set()

    async def company_news_items(self, name: Symbol, start: date, end: date) -> list[NewsItem]:
        self.calls.append(name)
        if name in self.fail:
            from fin_agent.domain.errors import AdapterError

            raise AdapterError("finnhub /company-news: 429 for too long")
        return [item(f"finnhub:{name}", f"{name} news", et(8, 0), name)]

    async def general_news(self, min_id: int = 0) -> list[NewsItem]:
        self.calls.append(f"general>{min_id}")
        return [item("finnhub:100", "Markets open higher", et(8, 0))] if min_id < 100 else []


@pytest.mark.asyncio
async def test_the_poller_takes_turns_within_its_share_and_survives_a_failing_call() -> None:
    rest = FakeRest()
    config = NewsPollConfig(every_secs=60, symbols_per_round=2)
    poller = FinnhubNewsPoller(rest, FixedClock(et(8, 0)), config)
    poller.set_watchlist([symbol(s) for s in ("AAA", "BBB", "CCC")])
    got: list[NewsItem] = []

    async def sink(items: Sequence[NewsItem]) -> None:
        got.extend(items)

    rest.fail.add(symbol("BBB"))
    await poller.poll_once(sink)
    await poller.poll_once(sink)
    assert rest.calls == ["general>0", "AAA", "BBB", "general>100", "CCC", "AAA"]
    assert poller.failures == 1
    assert config.calls_per_minute == 3.0
    assert [i.news_id for i in got] == ["finnhub:100", "finnhub:AAA", "finnhub:CCC", "finnhub:AAA"]
