"""The `DailyBarCache` contract: one suite run against the in-memory, DuckDB and PostgreSQL caches.

`cache` is each store's `daily_bar_cache()` (the parametrized `store` of tests/contract/conftest.py:
`InMemoryStore`, `DuckDBStore` on a file, `TimescaleStore` in a throwaway schema), migrated and
empty. `durable` (tests/contract/conftest.py) is the two SQL stores, for what only a database
shows: bars that outlive the store, and a database left at schema version 1 that migrates forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from fin_agent.adapters.finnhub.rest import FinnhubQuote
from fin_agent.adapters.live.market import LiveMarket
from fin_agent.adapters.memory import FixedCalendar, FixedClock
from fin_agent.adapters.storage.rows import SCHEMA_VERSION
from fin_agent.domain.errors import DataError, PermanentError
from fin_agent.domain.events import ErrorRaised, Severity
from fin_agent.domain.values import DailyBar, Headline, Symbol, symbol
from fin_agent.ports.daily_bar_cache import DailyBarCache
from fin_agent.ports.store import Store

if TYPE_CHECKING:
    from contract.conftest import Durable

pytestmark = pytest.mark.asyncio

AAPL = symbol("AAPL")
MSFT = symbol("MSFT")
CALENDAR = FixedCalendar()


def bar(sym: Symbol, day: date, close: Decimal, volume: int = 1_000_000) -> DailyBar:
    """A plausible daily bar closing at `close`."""
    return DailyBar(
        symbol=sym,
        session=day,
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=volume,
    )


def bars_between(
    sym: Symbol, start: date, end: date, scale: Decimal = Decimal(1)
) -> list[DailyBar]:
    """A bar for every weekday session of `start`..`end`, closing at (100 + i) * `scale`."""
    return [
        bar(sym, s.day, (Decimal(100) + i) * scale)
        for i, s in enumerate(CALENDAR.sessions(start, end))
    ]


def days(found: Sequence[DailyBar]) -> list[date]:
    return [b.session for b in found]


@pytest.fixture
def cache(store: Store) -> DailyBarCache:
    """Each store's daily bar cache, migrated and empty."""
    return store.daily_bar_cache()


# -- the rule of put and coverage -----------------------------------------------------------------


async def test_an_empty_cache_covers_nothing_and_holds_no_bars(cache: DailyBarCache) -> None:
    assert await cache.coverage(AAPL) is None
    assert await cache.get(AAPL, date(2024, 1, 1), date(2024, 12, 31)) == []


async def test_put_bars_come_back_oldest_first_and_cut_to_the_range_asked(
    cache: DailyBarCache,
) -> None:
    march = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 15))

    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 15), list(reversed(march)))

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 15))
    assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == march
    assert await cache.get(AAPL, date(2024, 3, 6), date(2024, 3, 11)) == march[2:6]
    assert await cache.get(AAPL, date(2024, 3, 9), date(2024, 3, 10)) == []  # a weekend


async def test_a_range_without_bars_is_still_covered(cache: DailyBarCache) -> None:
    await cache.put(AAPL, date(2024, 12, 25), date(2024, 12, 25), [])  # a holiday

    assert await cache.coverage(AAPL) == (date(2024, 12, 25), date(2024, 12, 25))
    assert await cache.get(AAPL, date(2024, 12, 1), date(2024, 12, 31)) == []


async def test_bars_outside_the_range_or_of_another_symbol_are_ignored(
    cache: DailyBarCache,
) -> None:
    given = [
        bar(AAPL, date(2024, 3, 1), Decimal(99)),
        bar(AAPL, date(2024, 3, 4), Decimal(100)),
        bar(MSFT, date(2024, 3, 5), Decimal(400)),
        bar(AAPL, date(2024, 3, 6), Decimal(101)),
        bar(AAPL, date(2024, 3, 7), Decimal(102)),
    ]

    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 6), given)

    assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == [given[1], given[3]]
    assert await cache.coverage(MSFT) is None
    assert await cache.get(MSFT, date(2024, 3, 1), date(2024, 3, 31)) == []


async def test_a_session_given_twice_in_one_put_keeps_the_last(cache: DailyBarCache) -> None:
    first, last = (
        bar(AAPL, date(2024, 3, 4), Decimal(100)),
        bar(AAPL, date(2024, 3, 4), Decimal(90)),
    )

    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 4), [first, last])

    assert await cache.get(AAPL, date(2024, 3, 4), date(2024, 3, 4)) == [last]


async def test_ranges_touching_on_either_side_widen_the_coverage(cache: DailyBarCache) -> None:
    march = bars_between(AAPL, date(2024, 3, 1), date(2024, 3, 29))

    await cache.put(AAPL, date(2024, 3, 11), date(2024, 3, 15), march)
    await cache.put(AAPL, date(2024, 3, 16), date(2024, 3, 19), march)  # the day after
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 10), march)  # ends the day before

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 19))
    assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == [
        b for b in march if date(2024, 3, 4) <= b.session <= date(2024, 3, 19)
    ]


async def test_an_overlapping_range_widens_the_coverage_and_replaces_its_own_bars(
    cache: DailyBarCache,
) -> None:
    old = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 15))
    new = bars_between(AAPL, date(2024, 3, 11), date(2024, 3, 22), scale=Decimal(2))
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 15), old)

    await cache.put(AAPL, date(2024, 3, 11), date(2024, 3, 22), new)

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 22))
    assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == old[:5] + new


async def test_a_range_inside_the_coverage_keeps_the_coverage(cache: DailyBarCache) -> None:
    old = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 15))
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 15), old)

    await cache.put(AAPL, date(2024, 3, 6), date(2024, 3, 7), [])  # both sessions gone now

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 15))
    assert days(await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31))) == [
        b.session for b in old if b.session not in (date(2024, 3, 6), date(2024, 3, 7))
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 3, 25), date(2024, 3, 29)),  # later, after a gap
        (date(2024, 3, 18), date(2024, 3, 22)),  # later, a one-day gap (the 17th)
        (date(2024, 2, 26), date(2024, 3, 1)),  # earlier, a two-day gap
    ],
    ids=["later", "a-day-later", "earlier"],
)
async def test_a_disjoint_range_replaces_the_coverage_and_drops_every_old_bar(
    cache: DailyBarCache, start: date, end: date
) -> None:
    await cache.put(
        AAPL,
        date(2024, 3, 4),
        date(2024, 3, 16),
        bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 16)),
    )
    new = bars_between(AAPL, start, end, scale=Decimal(3))

    await cache.put(AAPL, start, end, new)

    assert await cache.coverage(AAPL) == (start, end)
    assert await cache.get(AAPL, date(2024, 1, 1), date(2024, 12, 31)) == new


async def test_a_put_again_over_the_whole_range_replaces_every_bar_after_a_split(
    cache: DailyBarCache,
) -> None:
    start, end = date(2024, 6, 3), date(2024, 6, 28)
    before_split = bars_between(AAPL, start, end, scale=Decimal(4))
    await cache.put(AAPL, start, end, before_split)
    adjusted = [
        bar(AAPL, b.session, b.close / 4, b.volume * 4)
        for b in before_split
        if b.session != date(2024, 6, 14)  # a halted day the vendor now leaves out
    ]

    await cache.put(AAPL, start, end, adjusted)

    assert await cache.coverage(AAPL) == (start, end)
    got = await cache.get(AAPL, start, end)
    assert got == adjusted
    assert got[0].close == Decimal(100)
    assert got[0].volume == 4_000_000


async def test_each_symbol_has_its_own_bars_and_coverage(cache: DailyBarCache) -> None:
    aapl = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 15))
    msft = bars_between(MSFT, date(2024, 3, 11), date(2024, 3, 22), scale=Decimal(4))
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 15), aapl)
    await cache.put(MSFT, date(2024, 3, 11), date(2024, 3, 22), msft)

    await cache.put(MSFT, date(2024, 5, 1), date(2024, 5, 3), [])  # disjoint: MSFT starts afresh

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 15))
    assert await cache.get(AAPL, date(2024, 1, 1), date(2024, 12, 31)) == aapl
    assert await cache.coverage(MSFT) == (date(2024, 5, 1), date(2024, 5, 3))
    assert await cache.get(MSFT, date(2024, 1, 1), date(2024, 12, 31)) == []


async def test_the_bulk_calls_do_what_each_call_alone_does(cache: DailyBarCache) -> None:
    """`put_many`, `coverage_many` and `get_many` (the whole market's history) follow the same
    rule as `put`, `coverage` and `get`: a put that touches widens, a disjoint one starts afresh."""
    brk = symbol("BRK.B")
    aapl = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 15))
    await cache.put(
        MSFT,
        date(2024, 3, 11),
        date(2024, 3, 15),
        bars_between(MSFT, date(2024, 3, 11), date(2024, 3, 15)),
    )
    msft_more = bars_between(MSFT, date(2024, 3, 18), date(2024, 3, 22), scale=Decimal(2))
    await cache.put_many(
        [
            (AAPL, date(2024, 3, 4), date(2024, 3, 15), aapl),
            (MSFT, date(2024, 3, 16), date(2024, 3, 22), msft_more),  # touches: widens
            (brk, date(2024, 5, 1), date(2024, 5, 3), []),
        ]
    )
    covered = await cache.coverage_many([AAPL, MSFT, brk, symbol("NONE")])
    assert covered == {
        AAPL: (date(2024, 3, 4), date(2024, 3, 15)),
        MSFT: (date(2024, 3, 11), date(2024, 3, 22)),
        brk: (date(2024, 5, 1), date(2024, 5, 3)),
    }
    found = await cache.get_many([AAPL, MSFT, brk], date(2024, 3, 13), date(2024, 3, 20))
    assert set(found) == {AAPL, MSFT}
    assert list(found[AAPL]) == await cache.get(AAPL, date(2024, 3, 13), date(2024, 3, 20))
    assert days(found[MSFT]) == days(await cache.get(MSFT, date(2024, 3, 13), date(2024, 3, 20)))
    assert found[MSFT][-1] == msft_more[2]
    with pytest.raises(DataError, match="names AAPL twice"):
        await cache.put_many([(AAPL, date(2024, 4, 1), date(2024, 4, 1), [])] * 2)
    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 15))  # unchanged


async def test_prices_come_back_as_the_exact_decimals_put(cache: DailyBarCache) -> None:
    exact = [
        DailyBar(  # Yahoo's four places, none of them a binary fraction
            symbol=AAPL,
            session=date(2024, 3, 4),
            open=Decimal("187.4412"),
            high=Decimal("188.1000"),
            low=Decimal("186.9999"),
            close=Decimal("187.3300"),
            volume=9_876_543_210,  # past 2**32
        ),
        DailyBar(  # six places, fourteen digits before the point
            symbol=AAPL,
            session=date(2024, 3, 5),
            open=Decimal("0.000001"),
            high=Decimal("12345678901234.999999"),
            low=Decimal("0.000001"),
            close=Decimal("0.1"),
            volume=0,
        ),
    ]

    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 5), exact)

    got = await cache.get(AAPL, date(2024, 3, 4), date(2024, 3, 5))
    assert got == exact
    for got_bar, put_bar in zip(got, exact, strict=True):
        for name in ("open", "high", "low", "close"):
            value, put_value = getattr(got_bar, name), getattr(put_bar, name)
            assert type(value) is Decimal, name
            assert str(value.normalize()) == str(put_value.normalize()), name  # not a float's
        assert type(got_bar.volume) is int
        assert got_bar.volume == put_bar.volume


async def test_an_end_before_the_start_is_refused_and_changes_nothing(
    cache: DailyBarCache,
) -> None:
    march = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 8))
    await cache.put(AAPL, date(2024, 3, 4), date(2024, 3, 8), march)

    with pytest.raises(
        DataError,
        match=r"^daily bar cache put for AAPL: end 2024-03-01 is before start 2024-03-05: pass "
        "the first session fetched as start and the last as end$",
    ):
        await cache.put(AAPL, date(2024, 3, 5), date(2024, 3, 1), march)

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 8))
    assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == march


async def test_concurrent_puts_of_many_symbols_all_land(cache: DailyBarCache) -> None:
    names = [symbol(f"S{n:02d}") for n in range(12)]
    start, end = date(2024, 3, 4), date(2024, 3, 8)

    await asyncio.gather(*(cache.put(s, start, end, bars_between(s, start, end)) for s in names))

    for name in names:
        assert await cache.coverage(name) == (start, end)
        assert await cache.get(name, start, end) == bars_between(name, start, end)


async def test_every_cache_of_one_store_sees_the_same_bars(store: Store) -> None:
    march = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 8))

    await store.daily_bar_cache().put(AAPL, date(2024, 3, 4), date(2024, 3, 8), march)

    again = store.daily_bar_cache()
    assert await again.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 8))
    assert await again.get(AAPL, date(2024, 3, 4), date(2024, 3, 8)) == march


# -- the SQL stores: bars outlive the store, and version 1 migrates forward ----------------------


async def test_the_bars_outlive_the_store_that_put_them(durable: Durable) -> None:
    march = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 15))
    first = await durable.open()
    await first.migrate()
    await first.daily_bar_cache().put(AAPL, date(2024, 3, 4), date(2024, 3, 15), march)
    await first.close()

    reopened = await durable.open()
    await reopened.migrate()
    cache = reopened.daily_bar_cache()

    assert await cache.coverage(AAPL) == (date(2024, 3, 4), date(2024, 3, 15))
    assert await cache.get(AAPL, date(2024, 3, 1), date(2024, 3, 31)) == march


async def test_a_database_at_schema_version_1_migrates_forward_keeping_its_events(
    durable: Durable,
) -> None:
    event = ErrorRaised(
        id=ErrorRaised.id_for("daily-bar-cache-v1"),
        occurred_at=datetime(2024, 3, 4, 15, 0, tzinfo=UTC),
        trading_day=date(2024, 3, 4),
        source="contract",
        code="feed_stalled",
        message="feed stalled (contract fixture)",
        severity=Severity.WARNING,
    )
    first = await durable.open()
    await first.migrate()
    await first.write([event])
    await durable.to_version(1)
    old = await durable.open()
    with pytest.raises(PermanentError, match="migrate"):  # version 1 has no daily bar tables
        await old.daily_bar_cache().coverage(AAPL)
    await old.close()

    upgraded = await durable.open()
    info = await upgraded.migrate()
    march = bars_between(AAPL, date(2024, 3, 4), date(2024, 3, 8))
    await upgraded.daily_bar_cache().put(AAPL, date(2024, 3, 4), date(2024, 3, 8), march)

    assert info.schema_version == SCHEMA_VERSION
    assert list(await upgraded.events()) == [event]
    assert await upgraded.daily_bar_cache().get(AAPL, date(2024, 3, 4), date(2024, 3, 8)) == march


# -- what the cache is for: a restarted agent fetches only the new sessions ----------------------


class FakeYahoo:
    """A daily bar source that records what it was asked for."""

    name = "yahoo"

    def __init__(self, bars: Sequence[DailyBar]) -> None:
        self.bars = list(bars)
        self.calls: list[tuple[date, date]] = []

    async def daily_bars(self, sym: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        self.calls.append((start, end))
        return [b for b in self.bars if b.symbol == sym and start <= b.session <= end]


class NoFinnhub:
    """`LiveMarket` needs a Finnhub; `daily_bars` never calls it."""

    async def quote_figures(self, sym: Symbol) -> FinnhubQuote:
        raise AssertionError("daily_bars asked Finnhub for a quote")

    async def company_news(self, sym: Symbol, start: date, end: date) -> list[Headline]:
        raise AssertionError("daily_bars asked Finnhub for news")


async def test_after_a_restart_the_next_day_fetches_only_the_new_sessions(
    durable: Durable,
) -> None:
    yahoo = FakeYahoo(bars_between(AAPL, date(2024, 1, 1), date(2024, 3, 15)))
    thursday = datetime(2024, 3, 14, 12, 0, tzinfo=UTC)

    def live(store: Store, now: datetime) -> LiveMarket:
        return LiveMarket(
            universe=[AAPL],
            finnhub=NoFinnhub(),
            daily_sources=[yahoo],
            cache=store.daily_bar_cache(),
            calendar=CALENDAR,
            clock=FixedClock(now),
        )

    first = await durable.open()
    await first.migrate()
    before = await live(first, thursday).daily_bars(AAPL, date(2024, 3, 14), 5)
    await first.close()
    restarted = await durable.open()
    await restarted.migrate()
    after = await live(restarted, thursday + timedelta(days=1)).daily_bars(
        AAPL, date(2024, 3, 15), 5
    )

    assert days(before) == [date(2024, 3, d) for d in (7, 8, 11, 12, 13)]
    assert days(after) == [date(2024, 3, d) for d in (8, 11, 12, 13, 14)]
    assert after[:4] == before[1:]
    assert yahoo.calls == [
        (date(2024, 3, 7), date(2024, 3, 13)),
        (date(2024, 3, 13), date(2024, 3, 14)),  # from the last cached session (a split check)
    ]
