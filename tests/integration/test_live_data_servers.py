"""Issue 18's live-data defects, each against a local server that behaves like the real one.

- The shipped budgets against servers counting calls by arrival and answering 429 past their
  limit: Finnhub's 30 calls a second, its 60 a minute (75 calls on a clock running 60 times
  faster on both sides) and Yahoo's 4 a second. Before the budgets counted from the answer plus
  a margin, a server counting by arrival saw 39 calls in one second from Finnhub's budget and 7
  from Yahoo's.
- The previous close when Yahoo answers yesterday's row null: the quote's `pc`, logged as a
  disagreement, never the close of two sessions ago; and the null row is asked for again.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.finnhub.rest import FinnhubRest
from fin_agent.adapters.live.market import InMemoryDailyBarCache, LiveMarket
from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.adapters.yahoo.daily import YahooDailyBars
from fin_agent.adapters.yahoo.local import LocalYahoo
from fin_agent.app.bootstrap.vendors import finnhub_budget, finnhub_policy, yahoo_budget
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.day.collect import UniverseCollector
from fin_agent.domain.rules import ScanRules
from fin_agent.domain.values import DailyBar, Symbol, symbol

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
KEY = "fk-local-limits"
XYZ = symbol("XYZ")
CALENDAR = ExchangeCalendar("XNYS", start=date(2023, 1, 1), end=date(2024, 12, 31))
DAY = date(2024, 3, 15)  # a Friday
SCAN_AT = datetime(2024, 3, 15, 13, 0, tzinfo=UTC)  # 09:00 New York


@pytest.fixture(scope="module")
def local() -> ModuleType:
    """bench/finnhub_local.py, shared with the benchmarks."""
    bench = str(ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("finnhub_local")


@pytest.fixture
def shipped() -> Settings:
    """The shipped config.yaml's budgets (its default margin included)."""
    return load_settings(ROOT / "config.yaml", environ={}, secrets_dir=ROOT / "no-secrets")


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def most_in_any(stamps: list[float], per_secs: float) -> int:
    return max((sum(1 for s in stamps if t <= s < t + per_secs) for t in stamps), default=0)


async def test_finnhubs_shipped_budget_never_passes_30_a_second_at_a_server_counting_arrivals(
    local: ModuleType, shipped: Settings, session: aiohttp.ClientSession
) -> None:
    async with local.LocalFinnhub(token=KEY, rest_limits=((60, 60.0), (30, 1.0))) as server:
        server.rest.set("/quote", {"c": 10.5, "pc": 10.0, "t": 1710507600})
        rest = FinnhubRest(
            server.rest_url,
            KEY,
            finnhub_budget(shipped),
            session,
            policy=finnhub_policy(shipped),
        )
        await asyncio.gather(*(rest.quote_figures(symbol(f"S{i}")) for i in range(45)))

    arrivals = [c.at for c in server.rest.calls]
    assert len(arrivals) == 45
    assert server.rest.limited == 0
    assert most_in_any(arrivals, 1.0) <= 30


class Dilated:
    """Time 60 times faster than real, for both the budget and the server: a minute in a
    second, so Finnhub's 60-a-minute window can be tried in a test."""

    def __init__(self, factor: float = 60.0) -> None:
        self.factor = factor
        self.origin = time.monotonic()

    def clock(self) -> float:
        return self.origin + (time.monotonic() - self.origin) * self.factor

    async def sleep(self, secs: float) -> None:
        await asyncio.sleep(secs / self.factor)


async def test_finnhubs_shipped_windows_never_pass_60_a_minute_at_a_server_counting_arrivals(
    local: ModuleType, shipped: Settings, session: aiohttp.ClientSession
) -> None:
    # 75 calls: the first 60 fill the minute, the last 15 must wait for it to roll on. Time runs
    # 60 times faster on both sides (a dilated second is 17 ms of real time).
    dilated = Dilated()
    windows = tuple(
        RateWindow(max_calls=w.max_calls, per_secs=w.per_secs) for w in shipped.finnhub.windows
    )
    budget = RateBudget(
        windows,
        name="finnhub",
        margin_secs=shipped.finnhub.budget_margin_secs,
        clock=dilated.clock,
        sleep=dilated.sleep,
    )
    async with local.LocalFinnhub(
        token=KEY, rest_limits=((60, 60.0), (30, 1.0)), clock=dilated.clock
    ) as server:
        server.rest.set("/quote", {"c": 10.5, "pc": 10.0, "t": 1710507600})
        rest = FinnhubRest(
            server.rest_url,
            KEY,
            budget,
            session,
            policy=finnhub_policy(shipped),
            clock=dilated.clock,
            sleep=dilated.sleep,
        )
        await asyncio.gather(*(rest.quote_figures(symbol(f"S{i}")) for i in range(75)))

    arrivals = [c.at for c in server.rest.calls]
    assert len(arrivals) == 75
    assert server.rest.limited == 0
    assert most_in_any(arrivals, 60.0) <= 60
    assert most_in_any(arrivals, 1.0) <= 30
    assert max(arrivals) - min(arrivals) >= 60.0  # the last 15 did wait for the minute


async def test_yahoos_shipped_budget_never_passes_4_a_second_at_a_server_counting_arrivals(
    shipped: Settings, session: aiohttp.ClientSession
) -> None:
    bars = {symbol(f"S{i}"): history(symbol(f"S{i}"), date(2024, 3, 14), "10") for i in range(14)}
    async with LocalYahoo(bars, max_per_sec=4) as server:
        yahoo = YahooDailyBars(yahoo_budget(shipped), server.base_url, session)
        answers = await asyncio.gather(
            *(yahoo.daily_bars(s, date(2024, 2, 1), date(2024, 3, 14)) for s in bars)
        )

    assert all(answers)
    assert len(server.arrivals) == 14
    assert server.limited == 0
    assert server.most_in_a_second() <= 4


def history(sym: Symbol, last: date, close: str) -> list[DailyBar]:
    """Quiet bars of the 40 sessions up to `last`, closing at `close`, heavy volume."""
    price = Decimal(close)
    sessions = CALENDAR.sessions(last - timedelta(days=70), last)[-40:]
    return [
        DailyBar(
            symbol=sym,
            session=s.day,
            open=price,
            high=price + Decimal("0.25"),
            low=price - Decimal("0.25"),
            close=price,
            volume=3_000_000,
        )
        for s in sessions
    ]


async def test_a_null_row_for_yesterday_takes_the_quotes_close_and_is_asked_for_again(
    local: ModuleType, shipped: Settings, session: aiohttp.ClientSession
) -> None:
    # Closes: 19.90 two sessions ago, 20.06 yesterday (Yahoo's row null), 22.87 pre-market.
    bars = [
        *history(XYZ, date(2024, 3, 13), "19.90"),
        DailyBar(
            symbol=XYZ,
            session=date(2024, 3, 14),
            open=Decimal("19.95"),
            high=Decimal("20.20"),
            low=Decimal("19.85"),
            close=Decimal("20.06"),
            volume=3_100_000,
        ),
    ]
    async with (
        local.LocalFinnhub(token=KEY) as finnhub,
        LocalYahoo({XYZ: bars}) as yahoo_server,
    ):
        yahoo_server.null_rows.add((XYZ, date(2024, 3, 14)))
        quote: dict[str, Any] = {"c": 22.87, "pc": 20.06, "t": int(SCAN_AT.timestamp()) - 60}
        finnhub.rest.set("/quote", quote, "XYZ")
        rest = FinnhubRest(finnhub.rest_url, KEY, finnhub_budget(shipped), session)
        yahoo = YahooDailyBars(yahoo_budget(shipped), yahoo_server.base_url, session)
        market = LiveMarket(
            universe=[XYZ],
            finnhub=rest,
            daily_sources=[yahoo],
            cache=InMemoryDailyBarCache(),
            calendar=CALENDAR,
            clock=FixedClock(SCAN_AT),
        )
        collector = UniverseCollector(market=market, news=market, rules=ScanRules())
        previous = CALENDAR.previous_session(DAY)
        assert previous is not None
        with capture_logs() as logs:
            collected = await collector.collect(DAY, SCAN_AT, [XYZ], previous_close=previous.close)
        yahoo_server.null_rows.clear()  # Yahoo fills the row in
        again = await market.daily_bars(XYZ, DAY, 40)

    (candidate,) = collected.result.candidates
    assert candidate.prev_close == Decimal("20.06")
    assert round(candidate.gap_pct, 2) == Decimal("14.01")  # not 14.92 from two sessions ago
    (said,) = [e for e in logs if e["event"] == "prev_close_sources_disagree"]
    assert (said["used"], said["quoted_close"], said["last_daily_session"]) == (
        "quote",
        "20.06",
        "2024-03-13",
    )
    assert again[-1].session == date(2024, 3, 14)
    assert again[-1].close == Decimal("20.06")
