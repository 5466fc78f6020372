"""The whole market before the open, on fakes: the universe pre-filter, the bulk daily history
(only what the cache lacks, in one multi-symbol call a range, never an unpublished session
marked cached), the snapshot round shared by a scan, and Alpaca's snapshot and asset shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.alpaca_data.client import _chunks, _listed
from fin_agent.adapters.alpaca_data.snapshot import AlpacaSnapshot, parse_snapshot
from fin_agent.adapters.alpaca_data.splits import parse_splits
from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.live.whole_market import (
    DailyHistory,
    ListedUniverse,
    SnapshotPremarkets,
    history_window,
)
from fin_agent.adapters.memory import InMemoryDailyBarCache
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.universe_filter import UniverseFilter
from fin_agent.domain.values import DailyBar, Symbol

NY = ZoneInfo("America/New_York")
DAY = date(2026, 12, 4)  # a Friday
CALENDAR = ExchangeCalendar(start=date(2026, 1, 1), end=date(2027, 1, 31))


def bars(
    sym: str, sessions: Sequence[date], close: str = "10", volume: int = 1_000_000
) -> list[DailyBar]:
    c = Decimal(close)
    return [
        DailyBar(symbol=Symbol(sym), session=d, open=c, high=c, low=c, close=c, volume=volume)
        for d in sessions
    ]


class FakeBars:
    """A multi-symbol daily bar source over fixed histories, recording every call."""

    def __init__(self, history: Mapping[str, list[DailyBar]]) -> None:
        self.history = history
        self.calls: list[tuple[tuple[Symbol, ...], date, date]] = []

    async def daily_bars_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, list[DailyBar]]:
        self.calls.append((tuple(symbols), start, end))
        return {
            s: [b for b in self.history.get(s, []) if start <= b.session <= end] for s in symbols
        }


class FakeAssets:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = [Symbol(n) for n in names]

    async def assets(self) -> list[Symbol]:
        return list(self.names)


def sessions_before(day: date, count: int) -> list[date]:
    found = CALENDAR.sessions(day - timedelta(days=count * 2 + 14), day - timedelta(days=1))
    return [s.day for s in found][-count:]


def test_universe_filter_keeps_by_last_close_and_average_volume() -> None:
    rule = UniverseFilter(
        price_min=Decimal(1), price_max=Decimal(100), adv_min=500_000, adv_period=3
    )
    days = sessions_before(DAY, 3)
    assert rule.keeps(bars("A", days, "50", 500_000))
    assert not rule.keeps(bars("A", days, "150"))
    assert not rule.keeps(bars("A", days, "0.5"))
    assert not rule.keeps(bars("A", days, "50", 499_999))
    assert not rule.keeps(bars("A", days[1:], "50"))  # too short a history to average
    with pytest.raises(ConfigError, match="use 0 <= price_min < price_max"):
        UniverseFilter(price_min=Decimal(5), price_max=Decimal(5), adv_min=0)


@pytest.mark.asyncio
async def test_daily_history_fetches_only_missing_sessions_in_one_call_per_range() -> None:
    start, end = history_window(CALENDAR, DAY, 43)
    days = [s.day for s in CALENDAR.sessions(start, end)]
    source = FakeBars(
        {"AAA": bars("AAA", days), "BBB": bars("BBB", days), "CCC": bars("CCC", days)}
    )
    cache = InMemoryDailyBarCache()
    await cache.put(Symbol("AAA"), start, days[-2], bars("AAA", days[:-1]))
    await cache.put(Symbol("BBB"), start, days[-2], bars("BBB", days[:-1]))
    history = DailyHistory(cache, source, CALENDAR)

    loaded = await history.load([Symbol("AAA"), Symbol("BBB"), Symbol("CCC")], start, end)

    assert [len(v) for v in loaded.values()] == [43, 43, 43]
    # AAA and BBB lack one session: one call for both from the day after their coverage; CCC whole.
    assert sorted(source.calls) == sorted(
        [
            ((Symbol("CCC"),), start, end),
            ((Symbol("AAA"), Symbol("BBB")), days[-2] + timedelta(1), end),
        ]
    )
    source.calls.clear()
    await history.load([Symbol("AAA"), Symbol("BBB"), Symbol("CCC")], start, end)
    assert source.calls == []  # warm: nothing fetched
    assert history.loaded(Symbol("AAA"), days[-20], end) == loaded[Symbol("AAA")][-20:]
    assert history.loaded(Symbol("AAA"), start - timedelta(days=30), end) is None


@pytest.mark.asyncio
async def test_daily_history_never_marks_an_unpublished_session_cached() -> None:
    start, end = history_window(CALENDAR, DAY, 43)
    days = [s.day for s in CALENDAR.sessions(start, end)]
    source = FakeBars({"AAA": bars("AAA", days[:-1])})  # the vendor lacks the last session yet
    cache = InMemoryDailyBarCache()
    await DailyHistory(cache, source, CALENDAR).load([Symbol("AAA")], start, end)
    assert await cache.coverage(Symbol("AAA")) == (start, days[-2])
    await DailyHistory(cache, source, CALENDAR).load([Symbol("AAA")], start, end)
    assert source.calls[-1] == ((Symbol("AAA"),), days[-2] + timedelta(1), end)  # asked again


@pytest.mark.asyncio
async def test_listed_universe_keeps_what_the_filter_passes() -> None:
    start, end = history_window(CALENDAR, DAY, 43)
    days = [s.day for s in CALENDAR.sessions(start, end)]
    source = FakeBars(
        {
            "AAA": bars("AAA", days),
            "PENY": bars("PENY", days, "0.40"),
            "THIN": bars("THIN", days, "20", 1_000),
            "BRK.B": bars("BRK.B", days),
        }
    )
    history = DailyHistory(InMemoryDailyBarCache(), source, CALENDAR)
    rule = UniverseFilter(price_min=Decimal(1), price_max=Decimal(1000), adv_min=300_000)
    universe = ListedUniverse(
        FakeAssets(["AAA", "BRK.B", "NEW", "PENY", "THIN"]),
        history,
        rule,
        CALENDAR,
        history_bars=43,
    )
    assert await universe.symbols(DAY) == ["AAA", "BRK.B"]
    assert universe.listed == 5


class FakeSnapshots:
    def __init__(self, found: Mapping[str, AlpacaSnapshot]) -> None:
        self.found = found
        self.asked: list[list[Symbol]] = []

    async def snapshots(self, symbols: Sequence[Symbol]) -> dict[Symbol, AlpacaSnapshot]:
        self.asked.append(list(symbols))
        return {Symbol(s): v for s, v in self.found.items() if s in symbols}


def snap(sym: str, last: str, at: datetime, volume: int, session: date = DAY) -> AlpacaSnapshot:
    return AlpacaSnapshot(
        symbol=Symbol(sym),
        last=Decimal(last),
        last_at=at.astimezone(UTC),
        day_session=session,
        day_volume=volume,
        prev_close=Decimal(10),
    )


@pytest.mark.asyncio
async def test_one_snapshot_round_serves_every_symbol_of_a_scan() -> None:
    at = datetime.combine(DAY, time(8, 55), NY)
    source = FakeSnapshots({
        "AAA": snap("AAA", "11.5", at, 80_000),
        "OLD": snap("OLD", "9", datetime.combine(DAY - timedelta(1), time(16), NY), 5_000,
                    DAY - timedelta(1)),
    })  # fmt: skip
    universe = [Symbol("AAA"), Symbol("OLD"), Symbol("NONE")]
    premarkets = SnapshotPremarkets(source, lambda: universe, tz=NY, opens=time(4))
    scan_at = datetime.combine(DAY, time(9), NY).astimezone(UTC)

    got = [await premarkets.premarket(s, DAY, scan_at) for s in universe]

    assert source.asked == [sorted(universe)]
    assert got[0] is not None
    assert (got[0].last, got[0].volume) == (Decimal("11.5"), 80_000)
    assert got[1] is None  # its last trade is yesterday's: no pre-market
    assert got[2] is None  # never traded


def test_alpaca_snapshot_shape_and_its_errors() -> None:
    body = {
        "latestTrade": {"t": "2026-12-04T13:58:01.5Z", "p": Decimal("12.34"), "s": 100},
        "dailyBar": {
            "t": "2026-12-04T05:00:00Z",
            "o": 12,
            "h": 13,
            "l": 12,
            "c": 12.3,
            "v": 90_000,
        },
        "prevDailyBar": {"t": "2026-12-03T05:00:00Z", "o": 10, "h": 11, "l": 9, "c": 10, "v": 9},
    }
    parsed = parse_snapshot(Symbol("AAA"), body)
    assert parsed is not None
    assert (parsed.last, parsed.day_session, parsed.day_volume, parsed.prev_close) == (
        Decimal("12.34"), DAY, 90_000, Decimal(10))  # fmt: skip
    opens = datetime.combine(DAY, time(4), NY)
    premarket = parsed.premarket(DAY, opens)
    assert premarket is not None
    assert premarket.as_of == datetime(2026, 12, 4, 13, 58, 1, 500000, UTC)
    assert parse_snapshot(Symbol("AAA"), {"latestTrade": None}) is None
    with pytest.raises(DataError, match="not in the expected shape"):
        parse_snapshot(Symbol("AAA"), {"latestTrade": {"p": 1}})


def test_assets_kept_are_active_tradable_us_equities_on_a_real_exchange() -> None:
    base = {"class": "us_equity", "status": "active", "tradable": True, "exchange": "NYSE"}
    assert _listed(base)
    assert not _listed({**base, "status": "inactive"})
    assert not _listed({**base, "tradable": False})
    assert not _listed({**base, "exchange": "OTC"})
    assert not _listed({**base, "class": "crypto"})


def test_chunks_cover_every_symbol_once_in_order() -> None:
    names = [Symbol(f"S{i}") for i in range(1234)]
    chunks = _chunks(names, 500)
    assert [len(c) for c in chunks] == [500, 500, 234]
    assert [s for c in chunks for s in c] == names


class FakeSplits:
    """A whole market's splits, recording every range asked for."""

    def __init__(self, splits: Sequence[Split]) -> None:
        self.reported = list(splits)
        self.calls: list[tuple[date, date]] = []

    async def splits(self, start: date, end: date) -> list[Split]:
        self.calls.append((start, end))
        return [s for s in self.reported if start <= s.session <= end]


def _split(sym: str, session: date, new: int, old: int) -> Split:
    return Split(symbol=Symbol(sym), session=session, new_shares=new, old_shares=old)


@pytest.mark.asyncio
async def test_a_split_after_the_cache_refetches_exactly_those_symbols_whole() -> None:
    start, end = history_window(CALENDAR, DAY, 43)
    days = [s.day for s in CALENDAR.sessions(start, end)]
    names = ("AAA", "BBB", "CCC", "DDD")
    # The vendor's history now: AAA 2:1 and BBB 1:10 ex-dated on DAY, so every bar is re-scaled.
    source = FakeBars(
        {"AAA": bars("AAA", days, "5"), "BBB": bars("BBB", days, "100"),
         "CCC": bars("CCC", days), "DDD": bars("DDD", days)}
    )  # fmt: skip
    cache = InMemoryDailyBarCache()
    early = start - timedelta(days=20)  # cached from before the window: dropped too
    for name in names:  # cached the day before: the old scale, through the session before last
        old = bars(name, [s.day for s in CALENDAR.sessions(early, days[-2])])
        await cache.put(Symbol(name), early, days[-2], old)
    splits = FakeSplits(
        [
            _split("AAA", DAY, 2, 1),
            _split("BBB", DAY, 1, 10),
            _split("DDD", days[10], 3, 1),  # within the cached bars: already on the new scale
            _split("ZZZ", DAY, 2, 1),  # not asked for
        ]
    )
    history = DailyHistory(cache, source, CALENDAR, splits=splits)
    symbols = [Symbol(n) for n in names]

    loaded = await history.load(symbols, start, end)

    assert splits.calls == [(days[-1], DAY)]  # one round: after the cache ends to the scan day
    assert sorted(source.calls) == sorted(
        [
            ((Symbol("AAA"), Symbol("BBB")), early, end),  # the whole cached window
            ((Symbol("CCC"), Symbol("DDD")), days[-1], end),  # only the missing session
        ]
    )
    assert {b.close for b in loaded[Symbol("AAA")]} == {Decimal(5)}
    assert {b.close for b in loaded[Symbol("BBB")]} == {Decimal(100)}
    assert len(loaded[Symbol("AAA")]) == 43
    assert {b.close for b in await cache.get(Symbol("AAA"), early, end)} == {Decimal(5)}
    assert await cache.coverage(Symbol("AAA")) == (early, end)
    source.calls.clear()
    await history.load(symbols, start, end)  # the same day again: refetched once is enough
    assert source.calls == []


@pytest.mark.asyncio
async def test_no_split_refetches_nothing() -> None:
    start, end = history_window(CALENDAR, DAY, 43)
    days = [s.day for s in CALENDAR.sessions(start, end)]
    source = FakeBars({"AAA": bars("AAA", days)})
    cache = InMemoryDailyBarCache()
    await cache.put(Symbol("AAA"), start, days[-2], bars("AAA", days[:-1]))
    splits = FakeSplits([_split("AAA", days[-2], 2, 1)])  # before the cached bars end
    history = DailyHistory(cache, source, CALENDAR, splits=splits)
    await history.load([Symbol("AAA")], start, end)
    assert source.calls == [((Symbol("AAA"),), days[-1], end)]
    assert splits.calls == [(days[-1], DAY)]
    source.calls.clear()
    await history.load([Symbol("AAA")], start, end)  # fully cached: the round still asks
    assert source.calls == []


def test_alpaca_corporate_actions_read_as_splits_and_skip_what_is_not_one() -> None:
    body = {
        "corporate_actions": {
            "forward_splits": [
                {"symbol": "AAA", "new_rate": 2, "old_rate": 1, "ex_date": "2026-12-04"},
                {"symbol": "BBB", "new_rate": 1.5, "old_rate": 1, "ex_date": "2026-12-03"},
                {"symbol": "CCC", "new_rate": 1, "old_rate": 1, "ex_date": "2026-12-03"},
            ],
            "reverse_splits": [
                {"symbol": "DDD", "new_rate": 1, "old_rate": 10, "ex_date": "2026-12-04"},
                {"symbol": "EEE", "new_rate": 1, "ex_date": "2026-12-04"},
            ],
        },
        "next_page_token": None,
    }
    assert [(s.symbol, s.label, s.session) for s in parse_splits(body)] == [
        ("AAA", "2:1", date(2026, 12, 4)),
        ("BBB", "3:2", date(2026, 12, 3)),
        ("DDD", "1:10", date(2026, 12, 4)),
    ]
    with pytest.raises(DataError, match=r"check broker\.alpaca\.data_url"):
        parse_splits([])


class FailingOnce(FakeBars):
    """A source whose first call fails (a timeout, say)."""

    async def daily_bars_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, list[DailyBar]]:
        if not self.calls:
            self.calls.append((tuple(symbols), start, end))
            raise DataError("the vendor timed out")
        return await super().daily_bars_many(symbols, start, end)


@pytest.mark.asyncio
async def test_a_split_refetch_that_failed_is_tried_again() -> None:
    start, end = history_window(CALENDAR, DAY, 43)
    days = [s.day for s in CALENDAR.sessions(start, end)]
    source = FailingOnce({"AAA": bars("AAA", days, "5")})
    cache = InMemoryDailyBarCache()
    await cache.put(Symbol("AAA"), start, days[-2], bars("AAA", days[:-1]))
    history = DailyHistory(cache, source, CALENDAR, splits=FakeSplits([_split("AAA", DAY, 2, 1)]))
    with pytest.raises(DataError, match="timed out"):
        await history.load([Symbol("AAA")], start, end)
    loaded = await history.load([Symbol("AAA")], start, end)
    assert source.calls[-1] == ((Symbol("AAA"),), start, end)  # whole, not just the new session
    assert {b.close for b in loaded[Symbol("AAA")]} == {Decimal(5)}
