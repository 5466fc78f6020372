"""LiveMarket over fake vendors: daily bars cached and fetched only when new, re-adjusted history
fetched again, source order, pre-market from the feed or the quote, session bars, headlines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import structlog

from fin_agent.adapters.finnhub.rest import FinnhubQuote
from fin_agent.adapters.live.market import InMemoryDailyBarCache, LiveMarket, SessionBarBuffer
from fin_agent.adapters.memory import FixedCalendar, FixedClock
from fin_agent.domain.errors import AdapterError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import Bar, DailyBar, Headline, Symbol, symbol

AAPL = symbol("AAPL")
CALENDAR = FixedCalendar()
NOW = datetime(2024, 3, 14, 12, 0, tzinfo=UTC)  # 08:00 New York, Thursday


def session_bars_between(
    sym: Symbol, start: date, end: date, scale: Decimal = Decimal(1)
) -> list[DailyBar]:
    bars = []
    for i, session in enumerate(CALENDAR.sessions(start, end)):
        close = (Decimal(100) + i) * scale
        bars.append(
            DailyBar(
                symbol=sym,
                session=session.day,
                open=close,
                high=close + 1,
                low=close - 1,
                close=close,
                volume=1_000_000,
            )
        )
    return bars


@dataclass
class FakeDailySource:
    name: str
    bars: list[DailyBar] = field(default_factory=list)
    fail: bool = False
    calls: list[tuple[date, date]] = field(default_factory=list)

    async def daily_bars(self, sym: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        self.calls.append((start, end))
        if self.fail:
            raise AdapterError(f"{self.name} chart failed 4 times (last: HTTP 502)")
        return [b for b in self.bars if b.symbol == sym and start <= b.session <= end]


@dataclass
class FakeFinnhub:
    quotes: dict[Symbol, FinnhubQuote] = field(default_factory=dict)
    news: list[Headline] = field(default_factory=list)
    news_calls: list[tuple[date, date]] = field(default_factory=list)

    async def quote_figures(self, sym: Symbol) -> FinnhubQuote:
        if sym in self.quotes:
            return self.quotes[sym]
        zero = Decimal(0)
        return FinnhubQuote(
            symbol=sym,
            last=zero,
            prev_close=zero,
            open=zero,
            high=zero,
            low=zero,
            change=None,
            change_pct=None,
            at=None,
        )

    async def company_news(self, sym: Symbol, start: date, end: date) -> list[Headline]:
        self.news_calls.append((start, end))
        return [h for h in self.news if h.symbol == sym]


def quote(last: str, at: datetime) -> FinnhubQuote:
    price = Decimal(last)
    return FinnhubQuote(
        symbol=AAPL,
        last=price,
        prev_close=Decimal(100),
        open=price,
        high=price,
        low=price,
        change=None,
        change_pct=None,
        at=at,
    )


def market(
    *sources: FakeDailySource,
    finnhub: FakeFinnhub | None = None,
    clock: FixedClock | None = None,
    cache: InMemoryDailyBarCache | None = None,
    feed_volume: bool = True,
) -> LiveMarket:
    return LiveMarket(
        universe=[symbol("MSFT"), AAPL],
        finnhub=finnhub or FakeFinnhub(),
        daily_sources=sources,
        cache=cache or InMemoryDailyBarCache(),
        calendar=CALENDAR,
        clock=clock or FixedClock(NOW),
        feed_volume=feed_volume,
    )


@pytest.mark.asyncio
async def test_daily_bars_are_fetched_once_then_served_from_the_cache() -> None:
    yahoo = FakeDailySource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 14))
    )
    live = market(yahoo)

    first = await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    again = await live.daily_bars(AAPL, date(2024, 3, 14), 5)

    assert [b.session.day for b in first] == [7, 8, 11, 12, 13]
    assert again == first
    assert yahoo.calls == [(date(2024, 3, 7), date(2024, 3, 13))]
    assert await live.symbols() == ["AAPL", "MSFT"]


@pytest.mark.asyncio
async def test_next_day_fetches_only_from_the_last_cached_session() -> None:
    yahoo = FakeDailySource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15))
    )
    clock = FixedClock(NOW)
    live = market(yahoo, clock=clock)
    await live.daily_bars(AAPL, date(2024, 3, 14), 5)

    clock.advance(timedelta(days=1))
    bars = await live.daily_bars(AAPL, date(2024, 3, 15), 5)

    assert [b.session.day for b in bars] == [8, 11, 12, 13, 14]
    assert yahoo.calls[1] == (date(2024, 3, 13), date(2024, 3, 14))


@pytest.mark.asyncio
async def test_a_history_the_vendor_readjusted_for_a_split_is_fetched_again_whole() -> None:
    yahoo = FakeDailySource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15))
    )
    clock = FixedClock(NOW)
    live = market(yahoo, clock=clock)
    await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    # A 2:1 split: the vendor now sends every past bar at half the price.
    yahoo.bars = session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15), Decimal("0.5"))

    clock.advance(timedelta(days=1))
    bars = await live.daily_bars(AAPL, date(2024, 3, 15), 5)

    assert [b.close for b in bars] == [b.close for b in yahoo.bars[-6:-1]]
    assert yahoo.calls[1:] == [
        (date(2024, 3, 13), date(2024, 3, 14)),
        (date(2024, 3, 7), date(2024, 3, 14)),
    ]


@dataclass
class FakeSplitSource(FakeDailySource):
    """A source that reports splits with its bars, as Yahoo's chart events do."""

    splits: list[Split] = field(default_factory=list)

    async def bars_and_splits(
        self, sym: Symbol, start: date, end: date
    ) -> tuple[Sequence[DailyBar], Sequence[Split]]:
        bars = await self.daily_bars(sym, start, end)
        return bars, [s for s in self.splits if s.symbol == sym and start <= s.session]


@pytest.mark.asyncio
async def test_a_split_the_source_reports_after_the_cached_bars_refetches_them_whole() -> None:
    yahoo = FakeSplitSource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15))
    )
    clock = FixedClock(NOW)
    live = market(yahoo, clock=clock)
    await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    # Friday the 15th opens on a 1:10 reverse split; the vendor reports it with the bars it
    # re-scaled, so the cached anchor's price does not decide alone.
    yahoo.bars = session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15), Decimal(10))
    yahoo.splits = [Split(symbol=AAPL, session=date(2024, 3, 15), new_shares=1, old_shares=10)]

    clock.advance(timedelta(days=1))
    with structlog.testing.capture_logs() as logs:
        bars = await live.daily_bars(AAPL, date(2024, 3, 15), 5)

    assert [b.close for b in bars] == [b.close for b in yahoo.bars[-6:-1]]
    assert yahoo.calls[1:] == [
        (date(2024, 3, 13), date(2024, 3, 14)),
        (date(2024, 3, 7), date(2024, 3, 14)),
    ]
    [readjusted] = [e for e in logs if e["event"] == "daily_history_readjusted"]
    assert (readjusted["split"], readjusted["split_session"]) == ("1:10", "2024-03-15")


@pytest.mark.asyncio
async def test_a_reported_split_refetches_even_when_the_anchor_price_looks_unchanged() -> None:
    yahoo = FakeSplitSource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15))
    )
    clock = FixedClock(NOW)
    live = market(yahoo, clock=clock)
    await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    yahoo.splits = [Split(symbol=AAPL, session=date(2024, 3, 15), new_shares=2, old_shares=1)]

    clock.advance(timedelta(days=1))
    await live.daily_bars(AAPL, date(2024, 3, 15), 5)

    assert yahoo.calls[-1] == (date(2024, 3, 7), date(2024, 3, 14))  # whole, on the event alone


@pytest.mark.asyncio
async def test_a_session_the_vendor_has_not_published_is_asked_for_again() -> None:
    yahoo = FakeDailySource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 12))
    )
    live = market(yahoo)

    bars = await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    yahoo.bars = session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 13))
    later = await live.daily_bars(AAPL, date(2024, 3, 14), 5)

    assert bars[-1].session == date(2024, 3, 12)
    assert later[-1].session == date(2024, 3, 13)
    assert yahoo.calls[1] == (date(2024, 3, 12), date(2024, 3, 13))


@pytest.mark.asyncio
async def test_a_recent_hole_is_not_cached_as_covered_and_is_asked_for_again() -> None:
    # Yahoo's row of Tuesday 12 March is null (skipped by the parser): the history has a hole.
    complete = session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 13))
    yahoo = FakeDailySource("yahoo", [b for b in complete if b.session != date(2024, 3, 12)])
    cache = InMemoryDailyBarCache()
    live = market(yahoo, cache=cache)

    bars = await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    covered = await cache.coverage(AAPL)
    yahoo.bars = complete  # Yahoo has filled the row in
    later = await live.daily_bars(AAPL, date(2024, 3, 14), 5)

    assert [b.session.day for b in bars] == [7, 8, 11, 13]  # the bar past it still served
    assert covered == (date(2024, 3, 7), date(2024, 3, 11))
    assert [b.session.day for b in later] == [7, 8, 11, 12, 13]
    assert yahoo.calls == [
        (date(2024, 3, 7), date(2024, 3, 13)),
        (date(2024, 3, 11), date(2024, 3, 13)),
    ]


@pytest.mark.asyncio
async def test_an_old_hole_is_the_vendors_last_word_and_cached_as_covered() -> None:
    complete = session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 13))
    yahoo = FakeDailySource("yahoo", [b for b in complete if b.session != date(2024, 2, 27)])
    live = market(yahoo)

    await live.daily_bars(AAPL, date(2024, 3, 14), 15)
    await live.daily_bars(AAPL, date(2024, 3, 14), 15)

    assert len(yahoo.calls) == 1


@pytest.mark.asyncio
async def test_todays_session_is_never_asked_for_nor_cached() -> None:
    yahoo = FakeDailySource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 14))
    )
    live = market(yahoo)

    bars = await live.daily_bars(AAPL, date(2024, 3, 20), 3)

    assert bars[-1].session == date(2024, 3, 13)
    assert yahoo.calls[0][1] == date(2024, 3, 13)


@pytest.mark.asyncio
async def test_daily_sources_are_tried_in_order() -> None:
    broken = FakeDailySource("yahoo", fail=True)
    spare = FakeDailySource(
        "stooq", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 14))
    )
    live = market(broken, spare)

    bars = await live.daily_bars(AAPL, date(2024, 3, 14), 5)

    assert len(bars) == 5
    assert (len(broken.calls), len(spare.calls)) == (1, 1)


@pytest.mark.asyncio
async def test_when_every_source_fails_no_stale_bars_are_returned() -> None:
    yahoo = FakeDailySource(
        "yahoo", session_bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 14))
    )
    clock = FixedClock(NOW)
    live = market(yahoo, clock=clock)
    await live.daily_bars(AAPL, date(2024, 3, 14), 5)
    yahoo.fail = True
    clock.advance(timedelta(days=1))

    with pytest.raises(
        AdapterError,
        match=r"^no daily bar source answered for AAPL 2024-03-13\.\.2024-03-14 \(yahoo: yahoo "
        r"chart failed 4 times \(last: HTTP 502\)\); the scan cannot use stale bars",
    ):
        await live.daily_bars(AAPL, date(2024, 3, 15), 5)


@pytest.mark.asyncio
async def test_premarket_from_the_quote_has_the_last_price_and_no_volume() -> None:
    at = datetime(2024, 3, 14, 11, 58, tzinfo=UTC)  # 07:58 New York
    live = market(FakeDailySource("yahoo"), finnhub=FakeFinnhub({AAPL: quote("108.50", at)}))

    premarket = await live.premarket(AAPL, date(2024, 3, 14), NOW)

    assert premarket is not None
    assert (premarket.last, premarket.volume, premarket.as_of) == (Decimal("108.50"), None, at)
    assert premarket.quoted_prev_close == Decimal(100)  # the quote's `pc` rides along


@pytest.mark.asyncio
async def test_premarket_is_none_without_a_trade_since_four_or_for_an_unknown_symbol() -> None:
    yesterday_close = datetime(2024, 3, 13, 20, 0, tzinfo=UTC)
    finnhub = FakeFinnhub({AAPL: quote("100", yesterday_close)})
    live = market(FakeDailySource("yahoo"), finnhub=finnhub)

    assert await live.premarket(AAPL, date(2024, 3, 14), NOW) is None
    assert await live.premarket(symbol("ZZZZ"), date(2024, 3, 14), NOW) is None


def minute_bar(sym: Symbol, start: datetime, close: str, volume: int) -> Bar:
    price = Decimal(close)
    return Bar(
        symbol=sym, start=start, open=price, high=price, low=price, close=price, volume=volume
    )


@pytest.mark.asyncio
async def test_premarket_from_the_feeds_bars_counts_their_volume() -> None:
    finnhub = FakeFinnhub({AAPL: quote("999", NOW)})
    live = market(FakeDailySource("yahoo"), finnhub=finnhub)
    live.buffer.add(
        [
            minute_bar(AAPL, datetime(2024, 3, 14, 7, 59, tzinfo=UTC), "90", 10),  # 03:59 NY
            minute_bar(AAPL, datetime(2024, 3, 14, 8, 0, tzinfo=UTC), "107", 300),
            minute_bar(AAPL, datetime(2024, 3, 14, 11, 0, tzinfo=UTC), "108", 200),
            minute_bar(AAPL, datetime(2024, 3, 14, 12, 0, tzinfo=UTC), "109", 50),  # after `until`
        ]
    )

    premarket = await live.premarket(AAPL, date(2024, 3, 14), NOW)
    no_volume = market(FakeDailySource("yahoo"), finnhub=finnhub, feed_volume=False)
    no_volume.buffer.add([minute_bar(AAPL, datetime(2024, 3, 14, 11, 0, tzinfo=UTC), "108", 1)])

    assert premarket is not None
    assert (premarket.last, premarket.volume) == (Decimal("108"), 500)
    assert premarket.as_of == datetime(2024, 3, 14, 11, 1, tzinfo=UTC)
    thin = await no_volume.premarket(AAPL, date(2024, 3, 14), NOW)
    assert thin is not None
    assert thin.volume is None


@pytest.mark.asyncio
async def test_session_bars_are_the_feeds_bars_of_the_regular_session() -> None:
    live = market(FakeDailySource("yahoo"))
    msft = symbol("MSFT")
    live.buffer.add(
        [
            minute_bar(AAPL, datetime(2024, 3, 14, 13, 29, tzinfo=UTC), "100", 1),  # 09:29
            minute_bar(msft, datetime(2024, 3, 14, 13, 30, tzinfo=UTC), "400", 1),
            minute_bar(AAPL, datetime(2024, 3, 14, 13, 30, tzinfo=UTC), "101", 1),
            minute_bar(AAPL, datetime(2024, 3, 14, 19, 59, tzinfo=UTC), "102", 1),  # 15:59
            minute_bar(AAPL, datetime(2024, 3, 14, 20, 0, tzinfo=UTC), "103", 1),  # 16:00
        ]
    )

    bars = await live.session_bars(date(2024, 3, 14), [AAPL, msft])

    assert [(b.symbol, b.close) for b in bars] == [
        ("AAPL", Decimal(101)),
        ("MSFT", Decimal(400)),
        ("AAPL", Decimal(102)),
    ]
    assert await live.session_bars(date(2024, 3, 16), [AAPL]) == []  # a Saturday


@pytest.mark.asyncio
async def test_headlines_ask_a_day_either_side_and_keep_the_window() -> None:
    since, until = NOW - timedelta(hours=24), NOW

    def headline(at: datetime) -> Headline:
        return Headline(symbol=AAPL, title=f"news {at:%H:%M}", source="wire", published_at=at)

    inside = headline(NOW - timedelta(hours=2))
    finnhub = FakeFinnhub(news=[headline(since - timedelta(minutes=1)), inside, headline(until)])
    live = market(FakeDailySource("yahoo"), finnhub=finnhub)

    found = await live.headlines(AAPL, since, until)

    assert found == [inside]
    assert finnhub.news_calls == [(date(2024, 3, 12), date(2024, 3, 15))]


@pytest.mark.asyncio
async def test_in_memory_cache_widens_touching_ranges_and_replaces_disjoint_ones() -> None:
    cache = InMemoryDailyBarCache()
    march = session_bars_between(AAPL, date(2024, 3, 1), date(2024, 3, 29))
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 8), march)
    await cache.put(AAPL, date(2024, 3, 9), date(2024, 3, 12), march)

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 12))
    assert len(await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31))) == 7

    await cache.put(AAPL, date(2024, 3, 25), date(2024, 3, 29), march)

    assert await cache.coverage(AAPL) == (date(2024, 3, 25), date(2024, 3, 29))
    assert len(await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31))) == 5
    assert await cache.coverage(symbol("MSFT")) is None


def test_session_bar_buffer_prunes_old_days() -> None:
    buffer = SessionBarBuffer()
    buffer.add([minute_bar(AAPL, datetime(2024, 3, 13, 14, 0, tzinfo=UTC), "100", 1)])
    start, end = datetime(2024, 3, 13, tzinfo=UTC), datetime(2024, 3, 14, tzinfo=UTC)

    buffer.prune(date(2024, 3, 14))

    assert buffer.bars(date(2024, 3, 13), [AAPL], start, end) == []
