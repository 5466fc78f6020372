"""Alpaca's market data against the local Alpaca server's simulated universe (`universe=`):
the asset list, snapshots and daily bars in multi-symbol calls, and a whole-market scan through
`LiveMarket` and the day's `UniverseCollector` that never exceeds Alpaca's 200 calls a minute
(the server counts every call by arrival and answers 429 past the limit); and a cache filled the
day before a split's ex-date, fetched again adjusted on the ex-date's scan (Alpaca's corporate
actions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from fin_agent.adapters.alpaca_data.client import AlpacaDataConfig, AlpacaMarketData
from fin_agent.adapters.broker.alpaca_local.book import LocalBook
from fin_agent.adapters.broker.alpaca_local.market_data import SimulatedUniverse
from fin_agent.adapters.broker.alpaca_local.server import LocalAlpacaServer
from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.live.market import LiveMarket
from fin_agent.adapters.live.whole_market import DailyHistory, ListedUniverse, SnapshotPremarkets
from fin_agent.adapters.memory import FixedClock, InMemoryDailyBarCache
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.app.day.collect import UniverseCollector
from fin_agent.domain.gap_scanner import RejectRule
from fin_agent.domain.indicators import wilder_atr
from fin_agent.domain.rules import ScanRules
from fin_agent.domain.universe_filter import UniverseFilter
from fin_agent.domain.values import Symbol

pytestmark = pytest.mark.asyncio
NY = ZoneInfo("America/New_York")
DAY = date(2026, 12, 4)
CALENDAR = ExchangeCalendar(start=date(2025, 1, 1), end=date(2027, 1, 31))
SIZE = 5000


@pytest_asyncio.fixture
async def server() -> AsyncIterator[LocalAlpacaServer]:
    local = LocalAlpacaServer(
        LocalBook(cash=Decimal(100_000)),
        universe=SimulatedUniverse(SIZE, seed=11, day=DAY),
        rate_limit_per_min=200,
    )
    await local.start()
    yield local
    await local.stop()


async def serving(day: date, *, split_day: date = DAY) -> LocalAlpacaServer:
    local = LocalAlpacaServer(
        LocalBook(cash=Decimal(100_000)),
        universe=SimulatedUniverse(SIZE, seed=11, day=day, split_day=split_day),
        rate_limit_per_min=200,
    )
    await local.start()
    return local


def data(server: LocalAlpacaServer, **config: int) -> AlpacaMarketData:
    budget = RateBudget([RateWindow(max_calls=200, per_secs=60.0)], name="alpaca", margin_secs=1.0)
    return AlpacaMarketData(
        AlpacaDataConfig(trading_url=server.base_url, data_url=server.base_url, **config),  # type: ignore[arg-type]
        key_id="local-key",
        secret_key="local-secret",
        budget=budget,
    )


async def test_assets_are_the_listed_equities_with_class_shares(server: LocalAlpacaServer) -> None:
    alpaca = data(server)
    try:
        assets = await alpaca.assets()
    finally:
        await alpaca.close()
    universe = server.universe
    assert universe is not None
    assert assets == list(universe.listed)
    assert not set(assets) & set(universe.excluded)  # inactive, not tradable, OTC
    assert any("." in s for s in assets)  # class shares such as BRK.B are kept
    assert server.calls["/v2/assets"] == 1


async def test_snapshots_and_bars_go_many_symbols_a_call(server: LocalAlpacaServer) -> None:
    universe = server.universe
    assert universe is not None
    symbols = [Symbol(s) for s in universe.listed[:1234]]
    alpaca = data(server, snapshot_symbols_per_call=500, bar_symbols_per_call=300)
    try:
        snaps = await alpaca.snapshots(symbols)
        bars = await alpaca.daily_bars_many(symbols[:300], date(2026, 10, 1), date(2026, 12, 3))
    finally:
        await alpaca.close()
    assert set(snaps) == set(symbols)
    assert server.calls["/v2/stocks/snapshots"] == 3  # 500 + 500 + 234
    sessions = [s.day for s in CALENDAR.sessions(date(2026, 10, 1), date(2026, 12, 3))]
    assert {len(b) for b in bars.values()} == {len(sessions)}
    assert [b.session for b in bars[symbols[0]]] == sessions
    assert 300 * len(sessions) > 10_000  # so its one call took two pages
    assert server.calls["/v2/stocks/bars"] == 2


async def test_a_whole_market_scan_stays_within_the_rate_limit(server: LocalAlpacaServer) -> None:
    alpaca = data(server)
    rules = ScanRules()
    market, listed = whole_market(alpaca, InMemoryDailyBarCache(), DAY)
    scan_at = datetime.combine(DAY, time(9), NY).astimezone(UTC)
    try:
        universe = await market.symbols()
        collected = await UniverseCollector(
            market=market, news=market, rules=rules, news_for_candidates=False
        ).collect(DAY, scan_at, universe)
    finally:
        await alpaca.close()

    assert listed.listed == SIZE
    assert 0 < len(universe) < SIZE  # the pre-filter cut the penny and thin names
    assert collected.failures == {}
    assert len(collected.snapshot.symbols) == len(universe)
    assert collected.result.candidates
    assert all(c.pm_volume is not None for c in collected.result.candidates)
    assert all(RejectRule.PM_VOLUME not in c.skipped_rules for c in collected.result.candidates)
    assert server.rate_limited == 0
    assert server.max_calls_per_60s <= 200
    # assets, 5000 / 200 a call of bars, the snapshots of the kept at 500 a call
    assert server.calls["/v2/stocks/snapshots"] == -(-len(universe) // 500)
    assert sum(server.calls.values()) < 60


def whole_market(
    alpaca: AlpacaMarketData, cache: InMemoryDailyBarCache, day: date
) -> tuple[LiveMarket, ListedUniverse]:
    history = DailyHistory(cache, alpaca, CALENDAR, splits=alpaca)
    listed = ListedUniverse(
        alpaca,
        history,
        UniverseFilter(price_min=Decimal(1), price_max=Decimal(1000), adv_min=300_000),
        CALENDAR,
        history_bars=ScanRules().history_bars,
    )
    holder: list[LiveMarket] = []
    market = LiveMarket(
        universe=[],
        finnhub=None,  # type: ignore[arg-type]  # never asked: the snapshots answer
        daily_sources=[alpaca],
        cache=cache,
        calendar=CALENDAR,
        clock=FixedClock(datetime.combine(day, time(8, 58), NY)),
        universe_source=listed,
        history=history,
        snapshots=SnapshotPremarkets(alpaca, lambda: holder[0].universe, tz=NY, opens=time(4)),
    )
    holder.append(market)
    return market, listed


async def test_a_split_on_the_scan_day_refetches_the_history_cached_before_it() -> None:
    eve = DAY - timedelta(days=1)
    cache = InMemoryDailyBarCache()
    before = await serving(eve)  # the day before the ex-date: bars as they traded
    alpaca = data(before)
    try:
        await whole_market(alpaca, cache, eve)[0].symbols()
    finally:
        await alpaca.close()
        await before.stop()
    assert before.calls["/v1/corporate-actions"] == 0  # an empty cache: nothing to re-scale

    server = await serving(DAY)
    universe = server.universe
    assert universe is not None
    split = {Symbol(s): new / old for s, (new, old) in universe.splits.items()}
    assert sorted(split.values()) == [0.1, 2]  # a 1:10 and a 2:1, ex-dated DAY
    window = (DAY - timedelta(days=120), DAY - timedelta(days=1))
    stale = {s: await cache.get(s, *window) for s in split}
    alpaca = data(server)
    market, _ = whole_market(alpaca, cache, DAY)
    try:
        symbols = await market.symbols()
        collected = await UniverseCollector(
            market=market, news=market, rules=ScanRules(), news_for_candidates=False
        ).collect(DAY, datetime.combine(DAY, time(9), NY).astimezone(UTC), symbols)
        adjusted = await alpaca.daily_bars_many(list(split), *window)
    finally:
        await alpaca.close()
        await server.stop()

    scanned = {s.symbol: s for s in collected.snapshot.symbols}
    prev_session = collected.snapshot.prev_session
    for sym, ratio in split.items():
        assert sym in scanned  # kept by the pre-filter on the new scale
        bars = scanned[sym].daily_bars
        assert list(bars) == adjusted[sym][-len(bars) :]  # every bar on the new scale
        # The cache held the old scale: the split's ratio apart.
        old = {b.session: b.close for b in stale[sym]}
        assert all(
            abs(float(old[b.session] / b.close) - ratio) < 0.01 for b in bars if b.session in old
        )
        assert len(set(old) & {b.session for b in bars}) >= len(bars) - 1
        prev = scanned[sym].prev_close(prev_session)
        assert prev is not None
        assert prev.price == adjusted[sym][-1].close
        assert wilder_atr(bars) == wilder_atr(adjusted[sym][-len(bars) :])
        premarket = scanned[sym].premarket
        assert premarket is not None
        assert abs(premarket.last / prev.price - 1) < Decimal("0.02")  # no gap on the new scale
    assert not {c.symbol for c in collected.result.candidates} & set(split)
    assert server.rate_limited == 0
    assert server.max_calls_per_60s <= 200
    assert server.calls["/v1/corporate-actions"] == 1  # one round for the whole market
    # the one missing session of every listed symbol at 200 a call, and the split symbols whole
    assert server.calls["/v2/stocks/bars"] == -(-SIZE // 200) + 1 + 1  # + the check's own call
