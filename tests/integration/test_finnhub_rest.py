"""FinnhubRest against a local Finnhub-protocol HTTP server: parsing, a 429 burst the budget rides
out, retries, the breaker opening and recovering, auth errors, and a key that never leaks.

Every test runs on both transports (aiohttp, and finnhub-python in a thread). The budget and the
retries run on a fake clock (the server reads it too), so a 30 s Retry-After costs no real time;
HTTP itself is real.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import traceback
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
import structlog
from aiohttp import web

from fin_agent.adapters.finnhub.rest import TOKEN_HEADER, FinnhubRest, FinnhubTransport
from fin_agent.adapters.vendor_http.circuit_breaker import BreakerConfig, BreakerState
from fin_agent.adapters.vendor_http.json_client import HttpPolicy
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.domain.errors import AdapterError, ConfigError, DataError, FinAgentError
from fin_agent.domain.values import symbol

API_KEY = "fk-SECRET-TOKEN-777"
AAPL = symbol("AAPL")
FAST = HttpPolicy(
    timeout_secs=0.3,
    max_attempts=3,
    backoff_base_secs=0.1,
    backoff_max_secs=1.0,
    max_rate_limited=10,
    retry_after_default_secs=2.0,
    max_retry_after_secs=60.0,
    breaker=BreakerConfig(failure_threshold=5, cooldown_secs=30.0),
)

CANNED: dict[str, Any] = {
    "/quote": {
        "c": 261.74,
        "d": 3.72,
        "dp": 1.4418,
        "h": 263.31,
        "l": 260.68,
        "o": 261.07,
        "pc": 258.02,
        "t": 1704205800,
    },
    "/company-news": [
        {
            "category": "company",
            "datetime": 1704200400,
            "headline": "Apple supplier lifts guidance",
            "id": 126,
            "image": "",
            "related": "AAPL",
            "source": "Reuters",
            "summary": "...",
            "url": "https://example.com/b",
        },
        {"category": "company", "datetime": 1704190000, "headline": "", "id": 127},
        {
            "category": "company",
            "datetime": 1704110400,
            "headline": "Apple opens a store",
            "id": 125,
            "related": "AAPL",
            "source": "Yahoo",
            "url": "https://example.com/a",
        },
        {
            "category": "company",
            "datetime": 1704110400,
            "headline": "Apple opens a store",
            "id": 125,
            "source": "Yahoo",
        },
    ],
    "/stock/market-status": {
        "exchange": "US",
        "holiday": None,
        "isOpen": False,
        "session": "pre-market",
        "t": 1704200000,
        "timezone": "America/New_York",
    },
    "/stock/market-holiday": {
        "data": [
            {"eventName": "Christmas", "atDate": "2024-12-25", "tradingHour": ""},
            {"eventName": "Christmas Eve", "atDate": "2024-12-24", "tradingHour": "09:30-13:00"},
        ],
        "exchange": "US",
        "timezone": "America/New_York",
    },
    "/stock/profile2": {
        "country": "US",
        "currency": "USD",
        "exchange": "NASDAQ NMS - GLOBAL MARKET",
        "finnhubIndustry": "Technology",
        "ipo": "1980-12-12",
        "marketCapitalization": 2900000.5,
        "name": "Apple Inc",
        "shareOutstanding": 15550.061,
        "ticker": "AAPL",
    },
}


class FakeTime:
    """The budget's and the retries' monotonic clock: moves only when they sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.now += secs
        await asyncio.sleep(0)


@dataclass
class Seen:
    path: str
    url: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class LocalFinnhub:
    """Finnhub's REST paths under /api/v1: canned JSON, or the next scripted step for a path."""

    fake: FakeTime
    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)
    script: dict[str, deque[Any]] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def plan(self, path: str, *steps: Any) -> None:
        self.script.setdefault(path, deque()).extend(steps)

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # finnhub-python asks for /api/v1//quote: Finnhub collapses the slashes, and so does this
        path = re.sub("//+", "/", request.path).removeprefix("/api/v1")
        self.seen.append(
            Seen(path, str(request.url), dict(request.query), dict(request.headers), self.fake.now)
        )
        if request.headers.get(TOKEN_HEADER) != API_KEY:
            return web.json_response({"error": "Invalid API key"}, status=401)
        queue = self.script.get(path)
        step = queue.popleft() if queue else ("500" if path in self.broken else "ok")
        match step:
            case "ok":
                if request.query.get("symbol") == "ZZZZ":
                    empty = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
                    return web.json_response(empty if path == "/quote" else {})
                return web.json_response(CANNED[path])
            case ("429", retry_after):
                headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
                body = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
                return web.json_response(body, status=429, headers=headers)
            case ("status", code):
                return web.json_response({"error": "You don't have access."}, status=code)
            case "500" | "503":
                return web.Response(status=int(step), text="upstream broke")
            case "hang":
                await self.release.wait()
                return web.json_response(CANNED[path])
            case "garbage":
                return web.Response(status=200, text="<html>proxy error</html>")
            case "echo-token":
                token = request.headers.get(TOKEN_HEADER)
                return web.Response(
                    status=400, text=f"bad request, token {token}, url {request.url}"
                )
            case "redirect":
                return web.Response(status=302, headers={"Location": "/elsewhere/quote"})
        raise AssertionError(f"unknown step {step!r}")


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest_asyncio.fixture
async def server(fake: FakeTime) -> AsyncIterator[LocalFinnhub]:
    local = LocalFinnhub(fake)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", local.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    local.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    yield local
    local.release.set()
    await runner.cleanup()


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[list[FinnhubRest]]:
    made: list[FinnhubRest] = []
    yield made
    for client in made:
        await client.close()


@pytest.fixture(params=["aiohttp", "finnhub-python"])
def transport(request: pytest.FixtureRequest) -> FinnhubTransport:
    name: FinnhubTransport = request.param
    return name


@pytest.fixture
def make(
    server: LocalFinnhub, fake: FakeTime, clients: list[FinnhubRest], transport: FinnhubTransport
) -> Any:
    def build(
        policy: HttpPolicy = FAST, base_url: str | None = None, key: str = API_KEY
    ) -> FinnhubRest:
        budget = RateBudget(clock=fake.clock, sleep=fake.sleep)
        rest = FinnhubRest(
            base_url or server.base_url,
            key,
            budget,
            policy=policy,
            transport=transport,
            clock=fake.clock,
            sleep=fake.sleep,
        )
        clients.append(rest)
        return rest

    return build


@pytest.mark.asyncio
async def test_quote_sends_the_key_in_the_header_only_and_parses_every_figure(
    server: LocalFinnhub, make: Any
) -> None:
    rest = make()

    figures = await rest.quote_figures(AAPL)
    quote = await rest.quote(AAPL)

    assert (figures.last, figures.prev_close, figures.open, figures.high, figures.low) == (
        Decimal("261.74"),
        Decimal("258.02"),
        Decimal("261.07"),
        Decimal("263.31"),
        Decimal("260.68"),
    )
    assert (figures.change, figures.change_pct) == (Decimal("3.72"), Decimal("1.4418"))
    assert quote.at == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert (quote.last, quote.prev_close) == (Decimal("261.74"), Decimal("258.02"))
    request = server.requests("/quote")[0]
    assert request.query == {"symbol": "AAPL"}
    assert request.headers[TOKEN_HEADER] == API_KEY
    assert API_KEY not in request.url


@pytest.mark.asyncio
async def test_quote_of_an_unknown_symbol_is_a_data_error(make: Any) -> None:
    rest = make()

    figures = await rest.quote_figures(symbol("ZZZZ"))

    assert not figures.known
    with pytest.raises(DataError, match="finnhub has no quote for ZZZZ"):
        await rest.quote(symbol("ZZZZ"))


@pytest.mark.asyncio
async def test_company_news_skips_untitled_and_duplicate_items_oldest_first(
    server: LocalFinnhub, make: Any
) -> None:
    rest = make()

    news = await rest.company_news(AAPL, date(2024, 1, 1), date(2024, 1, 2))

    assert [(h.title, h.source) for h in news] == [
        ("Apple opens a store", "Yahoo"),
        ("Apple supplier lifts guidance", "Reuters"),
    ]
    assert news[0].published_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert server.requests("/company-news")[0].query == {
        "symbol": "AAPL",
        "from": "2024-01-01",
        "to": "2024-01-02",
    }


@pytest.mark.asyncio
async def test_market_status_holidays_and_profile_parse_into_values(make: Any) -> None:
    rest = make()

    status = await rest.market_status()
    holidays = await rest.market_holidays()
    profile = await rest.profile(AAPL)

    assert (status.exchange, status.is_open, status.session, status.holiday) == (
        "US",
        False,
        "pre-market",
        None,
    )
    assert [(h.day, h.name, h.early_close) for h in holidays] == [
        (date(2024, 12, 24), "Christmas Eve", True),
        (date(2024, 12, 25), "Christmas", False),
    ]
    assert profile is not None
    assert profile.shares_outstanding == Decimal("15550061000.000")
    assert profile.market_cap_usd == Decimal("2900000500000.0")
    assert (profile.name, profile.ipo) == ("Apple Inc", date(1980, 12, 12))
    assert await rest.profile(symbol("ZZZZ")) is None


@pytest.mark.asyncio
async def test_a_429_burst_is_ridden_out_by_the_budget_without_failing_a_call(
    server: LocalFinnhub, make: Any, fake: FakeTime, transport: FinnhubTransport
) -> None:
    rest = make()
    server.plan("/quote", *[("429", 10)] * 6)
    names = [symbol(f"S{i:02d}") for i in range(20)]

    quotes = await asyncio.gather(*(rest.quote_figures(n) for n in names))

    assert [q.symbol for q in quotes] == names
    assert all(q.last == Decimal("261.74") for q in quotes)
    arrivals = sorted(s.at for s in server.requests("/quote"))
    if transport == "aiohttp":
        # Every first request goes out at once. finnhub-python's wait for one of the default
        # executor's few threads, long enough for the fake clock to jump past the pause.
        assert arrivals[:20] == [0.0] * 20
    # Nothing reached the server during the pause; the six refused calls came back after it (a
    # 429 the client reads after the first pause ended starts another: the fake clock jumps).
    assert len(arrivals) == 26
    asked: dict[str, list[float]] = {}
    for seen in server.requests("/quote"):
        asked.setdefault(seen.query["symbol"], []).append(seen.at)
    retried = [times for times in asked.values() if len(times) == 2]
    assert len(retried) == 6
    assert all(second - first >= 10.0 for first, second in retried)
    assert rest.stats.rate_limited == 6
    assert (rest.stats.failed, rest.budget.stats.rate_limited) == (0, 6)


@pytest.mark.asyncio
async def test_a_429_without_retry_after_pauses_for_the_default(
    server: LocalFinnhub, make: Any
) -> None:
    rest = make()
    server.plan("/quote", ("429", None))

    await rest.quote_figures(AAPL)

    assert [s.at for s in server.requests("/quote")] == [0.0, pytest.approx(2.0)]


@pytest.mark.asyncio
async def test_endless_429s_give_up_with_a_clear_error(server: LocalFinnhub, make: Any) -> None:
    rest = make(HttpPolicy(max_rate_limited=3, retry_after_default_secs=1.0))
    server.plan("/quote", *[("429", 1)] * 10)

    with pytest.raises(AdapterError, match=r"answered 429 4 times to one call: another client"):
        await rest.quote_figures(AAPL)


@pytest.mark.asyncio
async def test_5xx_and_timeouts_are_retried_with_jittered_backoff(
    server: LocalFinnhub, make: Any
) -> None:
    rest = make(replace(FAST, max_attempts=4))
    server.plan("/quote", "503", "hang", "500")

    with structlog.testing.capture_logs() as logs:
        figures = await rest.quote_figures(AAPL)

    assert figures.last == Decimal("261.74")
    arrivals = [s.at for s in server.requests("/quote")]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    for gap, step in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert step / 2 <= gap <= step  # equal jitter: half the step, plus up to the other half
    retries = [e for e in logs if e["event"] == "http_retrying"]
    assert [(e["endpoint"], e["status"], e["attempt"]) for e in retries] == [
        ("/quote", 503, 1),
        ("/quote", None, 2),
        ("/quote", 500, 3),
    ]
    assert retries[1]["error"] == "no answer in 0.3 s"
    assert rest.stats.retries == 3


@pytest.mark.asyncio
async def test_a_non_json_200_is_retried(server: LocalFinnhub, make: Any) -> None:
    rest = make()
    server.plan("/quote", "garbage")

    assert (await rest.quote_figures(AAPL)).last == Decimal("261.74")
    assert rest.stats.retries == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


CONNECT_ERROR = {"aiohttp": "ClientConnector", "finnhub-python": "ConnectionError"}


@pytest.mark.asyncio
async def test_connection_errors_give_up_after_max_attempts(
    make: Any, transport: FinnhubTransport
) -> None:
    rest = make(base_url=f"http://127.0.0.1:{free_port()}/api/v1")

    with pytest.raises(
        AdapterError,
        match=rf"^finnhub /quote failed 3 times \(last: {CONNECT_ERROR[transport]}.*\); the "
        "service or the network is down",
    ):
        await rest.quote_figures(AAPL)


@pytest.mark.asyncio
async def test_the_breaker_opens_on_a_failing_endpoint_and_recovers_after_the_cooldown(
    server: LocalFinnhub, make: Any, fake: FakeTime
) -> None:
    policy = HttpPolicy(
        max_attempts=2,
        backoff_base_secs=0.1,
        breaker=BreakerConfig(failure_threshold=3, cooldown_secs=30.0),
    )
    rest = make(policy)
    server.broken.add("/quote")

    with pytest.raises(AdapterError, match="failed 2 times"):
        await rest.quote_figures(AAPL)
    with pytest.raises(
        AdapterError,
        match=r"^finnhub /quote: circuit open after 3 consecutive failures \(last: HTTP 500\)",
    ):
        await rest.quote_figures(AAPL)
    assert len(server.requests("/quote")) == 3

    with pytest.raises(AdapterError, match="circuit open"):
        await rest.quote_figures(AAPL)
    assert len(server.requests("/quote")) == 3  # refused without a request
    assert len(await rest.company_news(AAPL, date(2024, 1, 1), date(2024, 1, 2))) == 2

    server.broken.clear()
    fake.now += 30.0
    assert (await rest.quote_figures(AAPL)).last == Decimal("261.74")
    breakers = {b.name: b.state for b in rest.stats.breakers}
    assert breakers == {
        "finnhub /company-news": BreakerState.CLOSED,
        "finnhub /quote": BreakerState.CLOSED,
    }
    assert len(server.requests("/quote")) == 4


@pytest.mark.asyncio
async def test_a_wrong_key_is_a_config_error_naming_the_fix(make: Any) -> None:
    rest = make(key="not-the-key")

    with pytest.raises(
        ConfigError,
        match=r"^finnhub /quote answered HTTP 401: the API key is missing or invalid, or this "
        r"endpoint needs a paid Finnhub plan; check finnhub_api_key \(FIN_AGENT_FINNHUB_API_KEY",
    ):
        await rest.quote_figures(AAPL)


@pytest.mark.asyncio
async def test_a_paid_endpoint_403_is_a_config_error(server: LocalFinnhub, make: Any) -> None:
    rest = make()
    server.plan("/stock/profile2", ("status", 403))

    with pytest.raises(ConfigError, match=r"answered HTTP 403: .*needs a paid Finnhub plan"):
        await rest.profile(AAPL)


def test_an_empty_key_is_refused_before_any_call() -> None:
    with pytest.raises(
        ConfigError, match="finnhub_api_key is empty: set FIN_AGENT_FINNHUB_API_KEY"
    ):
        FinnhubRest("https://finnhub.io/api/v1", "  ", RateBudget())


@pytest.mark.asyncio
async def test_a_redirect_is_not_followed_so_the_key_stays_with_finnhub(
    server: LocalFinnhub, make: Any
) -> None:
    rest = make()
    server.plan("/quote", "redirect")

    with pytest.raises(DataError, match="refused the request with HTTP 302"):
        await rest.quote_figures(AAPL)
    assert [s.path for s in server.seen] == ["/quote"]


@pytest.mark.asyncio
async def test_the_api_key_appears_in_no_log_line_url_or_exception(
    server: LocalFinnhub, make: Any, fake: FakeTime
) -> None:
    policy = HttpPolicy(
        timeout_secs=0.3,
        max_attempts=2,
        backoff_base_secs=0.1,
        breaker=BreakerConfig(failure_threshold=2, cooldown_secs=30.0),
    )
    rest = make(policy)
    errors: list[BaseException] = []
    server.plan("/quote", ("429", 1), "503", "hang")
    server.plan("/company-news", "echo-token")
    server.plan("/stock/market-holiday", "500", "500")
    server.plan("/stock/profile2", ("status", 403))

    async def attempt(call: Any) -> None:
        try:
            await call
        except FinAgentError as exc:
            errors.append(exc)

    with structlog.testing.capture_logs() as logs:
        await attempt(rest.quote_figures(AAPL))  # 429, 503, timeout: the breaker opens
        await attempt(rest.quote_figures(AAPL))  # refused by the open breaker
        await attempt(rest.company_news(AAPL, date(2024, 1, 1), date(2024, 1, 2)))
        await attempt(rest.market_holidays())
        await attempt(rest.profile(AAPL))
        await attempt(make(base_url=f"http://127.0.0.1:{free_port()}/x").quote_figures(AAPL))
        await attempt(make(key="fk-wrong").market_status())

    assert len(errors) == 7
    assert len(logs) >= 5
    for entry in logs:
        assert API_KEY not in repr(entry)
    for error in errors:
        assert API_KEY not in "".join(traceback.format_exception(error))
    assert "<redacted>" in str(errors[2])  # the server echoed the key in its error body
    for seen in server.seen:
        assert API_KEY not in seen.url
    assert API_KEY not in repr(rest)
