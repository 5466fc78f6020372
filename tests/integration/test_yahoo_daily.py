"""YahooDailyBars against a local server answering a hand-written chart JSON in Yahoo's shape:
sessions as exchange dates across a DST change, null rows skipped, unadjusted prices, 404s,
429s and retries."""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
import structlog
from aiohttp import web

from fin_agent.adapters.vendor_http.json_client import HttpPolicy
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.adapters.yahoo.daily import (
    YAHOO_WINDOWS,
    YahooDailyBars,
    parse_chart,
    parse_splits,
)
from fin_agent.adapters.yahoo.local import LocalYahoo as PackageLocalYahoo
from fin_agent.domain.errors import DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import DailyBar, symbol

AAPL = symbol("AAPL")
FAST = HttpPolicy(timeout_secs=0.5, max_attempts=3, backoff_base_secs=0.1, backoff_max_secs=1.0)

# AAPL, 7-15 March 2024 (DST began on Sunday the 10th): each stamp is the session's 09:30 open.
CHART: dict[str, Any] = {
    "chart": {
        "result": [
            {
                "meta": {
                    "currency": "USD",
                    "symbol": "AAPL",
                    "exchangeName": "NMS",
                    "fullExchangeName": "NasdaqGS",
                    "instrumentType": "EQUITY",
                    "firstTradeDate": 345479400,
                    "regularMarketTime": 1710532801,
                    "hasPrePostMarketData": True,
                    "gmtoffset": -14400,
                    "timezone": "EDT",
                    "exchangeTimezoneName": "America/New_York",
                    "regularMarketPrice": 172.62,
                    "chartPreviousClose": 169.12,
                    "priceHint": 2,
                    "dataGranularity": "1d",
                    "range": "",
                },
                "timestamp": [
                    1709821800,  # Thu 7th, 14:30 UTC (EST)
                    1709908200,  # Fri 8th
                    1710163800,  # Mon 11th, 13:30 UTC (EDT)
                    1710250200,  # Tue 12th: every figure null
                    1710336600,  # Wed 13th: volume null
                    1710423000,  # Thu 14th
                    1710446340,  # Thu 14th again, 15:59: the live row, which wins
                    1710509400,  # Fri 15th: high below the open, an impossible bar
                ],
                "indicators": {
                    "quote": [
                        {
                            "open": [
                                169.14999389648438,
                                169.0,
                                172.94000244140625,
                                None,
                                172.77000427246094,
                                172.91000366210938,
                                172.91000366210938,
                                171.1699981689453,
                            ],
                            "high": [
                                170.72999572753906,
                                173.6999969482422,
                                174.3800048828125,
                                None,
                                173.19000244140625,
                                174.30999755859375,
                                174.30999755859375,
                                170.57000732421875,
                            ],
                            "low": [
                                168.49000549316406,
                                168.94000244140625,
                                172.0500030517578,
                                None,
                                170.75999450683594,
                                172.0500030517578,
                                172.0500030517578,
                                170.2899932861328,
                            ],
                            "close": [
                                169.0,
                                170.72999572753906,
                                172.75,
                                None,
                                171.1300048828125,
                                173.0,
                                173.0,
                                172.6199951171875,
                            ],
                            "volume": [
                                71765100,
                                76114600,
                                60139500,
                                None,
                                None,
                                72571600,
                                72913500,
                                121664700,
                            ],
                        }
                    ],
                    "adjclose": [
                        {
                            "adjclose": [
                                168.0935,
                                169.8143,
                                171.8206,
                                None,
                                170.2121,
                                172.0682,
                                172.0682,
                                171.6939,
                            ]
                        }
                    ],
                },
            }
        ],
        "error": None,
    }
}
NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


@dataclass
class LocalYahoo:
    base_url: str = ""
    seen: list[web.Request] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    script: deque[Any] = field(default_factory=deque)
    charts: dict[str, Any] = field(default_factory=lambda: {"AAPL": CHART, "BRK-B": CHART})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        self.queries.append(dict(request.query))
        step = self.script.popleft() if self.script else "ok"
        match step:
            case ("429", secs):
                return web.Response(
                    status=429, text="Too Many Requests", headers={"Retry-After": secs}
                )
            case "502":
                return web.Response(status=502, text="Bad Gateway")
        chart = self.charts.get(request.match_info["symbol"])
        if chart is None:
            return web.json_response(NOT_FOUND, status=404)
        return web.json_response(chart)


@pytest_asyncio.fixture
async def yahoo() -> AsyncIterator[LocalYahoo]:
    local = LocalYahoo()
    app = web.Application()
    app.router.add_get("/v8/finance/chart/{symbol}", local.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    local.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield local
    await runner.cleanup()


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.now += secs
        await asyncio.sleep(0)


@pytest_asyncio.fixture
async def client(yahoo: LocalYahoo) -> AsyncIterator[tuple[YahooDailyBars, FakeTime]]:
    fake = FakeTime()
    budget = RateBudget(YAHOO_WINDOWS, name="yahoo", clock=fake.clock, sleep=fake.sleep)
    bars = YahooDailyBars(budget, yahoo.base_url, policy=FAST, clock=fake.clock, sleep=fake.sleep)
    yield bars, fake
    await bars.close()


@pytest.mark.asyncio
async def test_yahoo_daily_bars_are_exchange_sessions_with_nulls_and_impossible_rows_skipped(
    client: tuple[YahooDailyBars, FakeTime],
) -> None:
    yahoo_bars, _ = client

    with structlog.testing.capture_logs() as logs:
        bars = await yahoo_bars.daily_bars(AAPL, date(2024, 3, 7), date(2024, 3, 15))

    assert [b.session for b in bars] == [
        date(2024, 3, 7),
        date(2024, 3, 8),
        date(2024, 3, 11),
        date(2024, 3, 14),
    ]
    first, last = bars[0], bars[-1]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("169.1500"),
        Decimal("170.7300"),
        Decimal("168.4900"),
        Decimal("169.0000"),
        71765100,
    )
    assert last.volume == 72913500  # the later row of the same session wins
    skipped = [e for e in logs if e["event"] == "yahoo_bar_skipped"]
    assert [(e["symbol"], e["stamp"]) for e in skipped] == [("AAPL", 1710509400)]
    assert "inconsistent OHLC" in skipped[0]["error"]


@pytest.mark.asyncio
async def test_yahoo_daily_bars_use_the_unadjusted_quote_never_adjclose(
    client: tuple[YahooDailyBars, FakeTime],
) -> None:
    yahoo_bars, _ = client

    bars = await yahoo_bars.daily_bars(AAPL, date(2024, 3, 11), date(2024, 3, 11))

    assert [b.close for b in bars] == [Decimal("172.7500")]  # adjclose says 171.8206


@pytest.mark.asyncio
async def test_yahoo_daily_bars_ask_for_the_range_with_a_day_to_spare_and_cut_to_it(
    yahoo: LocalYahoo, client: tuple[YahooDailyBars, FakeTime]
) -> None:
    yahoo_bars, _ = client

    bars = await yahoo_bars.daily_bars(AAPL, date(2024, 3, 8), date(2024, 3, 11))

    assert [b.session for b in bars] == [date(2024, 3, 8), date(2024, 3, 11)]
    assert yahoo.queries == [
        {
            "period1": "1709769600",  # 2024-03-07 00:00 UTC
            "period2": "1710288000",  # 2024-03-13 00:00 UTC
            "interval": "1d",
            "includePrePost": "false",
            "events": "split",
        }
    ]
    assert yahoo.seen[0].path == "/v8/finance/chart/AAPL"
    assert yahoo.seen[0].headers["User-Agent"].startswith("Mozilla/5.0")


@pytest.mark.asyncio
async def test_yahoo_spells_share_classes_with_a_dash(
    yahoo: LocalYahoo, client: tuple[YahooDailyBars, FakeTime]
) -> None:
    yahoo_bars, _ = client

    bars = await yahoo_bars.daily_bars(symbol("BRK.B"), date(2024, 3, 7), date(2024, 3, 7))

    assert yahoo.seen[0].path == "/v8/finance/chart/BRK-B"
    assert [b.symbol for b in bars] == ["BRK.B"]


@pytest.mark.asyncio
async def test_yahoo_unknown_symbol_has_no_bars(client: tuple[YahooDailyBars, FakeTime]) -> None:
    yahoo_bars, _ = client

    assert await yahoo_bars.daily_bars(symbol("NOPE"), date(2024, 3, 7), date(2024, 3, 15)) == []


@pytest.mark.asyncio
async def test_yahoo_429_and_502_are_ridden_out(
    yahoo: LocalYahoo, client: tuple[YahooDailyBars, FakeTime]
) -> None:
    yahoo_bars, fake = client
    yahoo.script.extend([("429", "15"), "502"])

    bars = await yahoo_bars.daily_bars(AAPL, date(2024, 3, 7), date(2024, 3, 7))

    assert len(bars) == 1
    assert len(yahoo.seen) == 3
    assert fake.now >= 15.0
    stats = yahoo_bars.stats
    assert (stats.rate_limited, stats.retries, stats.failed) == (1, 1, 0)


def test_parse_chart_with_no_session_in_range_is_no_bars() -> None:
    empty = copy.deepcopy(CHART)
    del empty["chart"]["result"][0]["timestamp"]
    empty["chart"]["result"][0]["indicators"] = {"quote": [{}], "adjclose": [{}]}

    assert parse_chart(AAPL, empty) == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"finance": {}}, "yahoo chart for AAPL has no `chart` object: the API changed"),
        (
            {"chart": {"result": None, "error": {"code": "Bad Request", "description": "bad"}}},
            "yahoo chart for AAPL: Bad Request: bad; check the symbol and dates",
        ),
    ],
)
def test_parse_chart_refuses_answers_it_cannot_read(data: Any, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_chart(AAPL, data)


def with_splits(splits: dict[str, Any]) -> dict[str, Any]:
    chart = copy.deepcopy(CHART)
    chart["chart"]["result"][0]["events"] = {"splits": splits}
    return chart


@pytest.mark.asyncio
async def test_yahoo_reports_the_splits_of_the_range_with_the_bars(
    yahoo: LocalYahoo, client: tuple[YahooDailyBars, FakeTime]
) -> None:
    # As Yahoo sends them: keyed and dated by the ex-date's 09:30 open, numerator the new shares.
    yahoo.charts["AAPL"] = with_splits(
        {
            "1709908200": {
                "date": 1709908200,
                "numerator": 4,
                "denominator": 1,
                "splitRatio": "4:1",
            },
            "1710423000": {
                "date": 1710423000,
                "numerator": 1,
                "denominator": 7,
                "splitRatio": "1:7",
            },
        }
    )
    yahoo_bars, _ = client

    bars, splits = await yahoo_bars.bars_and_splits(AAPL, date(2024, 3, 8), date(2024, 3, 11))

    assert [b.session for b in bars] == [date(2024, 3, 8), date(2024, 3, 11)]
    assert splits == (  # the 14th's split is after the range's end: the next sessions still need it
        Split(symbol=AAPL, session=date(2024, 3, 8), new_shares=4, old_shares=1),
        Split(symbol=AAPL, session=date(2024, 3, 14), new_shares=1, old_shares=7),
    )
    assert [s.label for s in splits] == ["4:1", "1:7"]


def test_a_split_event_that_does_not_read_as_one_is_skipped_and_named() -> None:
    chart = with_splits(
        {
            "1709908200": {"date": 1709908200, "numerator": 0, "denominator": 1},
            "1710163800": {"date": 1710163800, "numerator": 3, "denominator": 2},
            "x": "garbage",
        }
    )

    with structlog.testing.capture_logs() as logs:
        splits = parse_splits(AAPL, chart)

    assert [(s.session, s.label) for s in splits] == [(date(2024, 3, 11), "3:2")]
    skipped = [e for e in logs if e["event"] == "yahoo_split_skipped"]
    assert len(skipped) == 2
    assert parse_splits(AAPL, CHART) == []  # an answer without events has no splits


@pytest.mark.asyncio
async def test_the_local_yahoo_server_reports_the_splits_it_was_given() -> None:
    sessions = [date(2024, 3, d) for d in (11, 12, 13, 14, 15)]
    bars = [
        DailyBar(
            symbol=AAPL,
            session=d,
            open=Decimal(10),
            high=Decimal(11),
            low=Decimal(9),
            close=Decimal(10),
            volume=1000,
        )
        for d in sessions
    ]
    split = Split(symbol=AAPL, session=date(2024, 3, 15), new_shares=1, old_shares=8)
    async with PackageLocalYahoo({AAPL: bars}) as local:
        local.splits[AAPL] = [split]
        budget = RateBudget(YAHOO_WINDOWS, name="yahoo")
        client = YahooDailyBars(budget, local.base_url, policy=FAST)
        try:
            found, splits = await client.bars_and_splits(AAPL, sessions[0], sessions[3])
        finally:
            await client.close()

    assert [b.session for b in found] == sessions[:4]
    assert splits == (split,)  # the next session's split, reported with the bars before it
