"""`FinnhubRest`: Finnhub's REST API: quote, company news, market status and holidays, company
profile; on aiohttp, or on the official finnhub-python client (`transport="finnhub-python"`).

The key travels only in the `X-Finnhub-Token` header (never in a URL, which ends up in logs); logs
name endpoint paths only. Every call shares one `RateBudget` (60/min and 30/s on the free plan),
rides out 429s, retries transient failures and has a breaker per endpoint (`JsonHttpClient`),
whichever transport sends the requests (`adapters.finnhub.sdk_transport` for the SDK).
Stock candles are a paid endpoint and are not used: daily bars come from Yahoo (`adapters.yahoo`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

import aiohttp

from fin_agent.adapters.finnhub.news_decode import decode_news
from fin_agent.adapters.finnhub.sdk_transport import FinnhubSdkTransport
from fin_agent.adapters.vendor_http.json_client import HttpPolicy, HttpStats, JsonHttpClient
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.news import NewsItem
from fin_agent.domain.values import Headline, Quote, Symbol

FINNHUB_BASE_URL = "https://finnhub.io/api/v1"
TOKEN_HEADER = "X-Finnhub-Token"  # noqa: S105 - the header's name, not a secret
MILLION = Decimal(1_000_000)
FinnhubTransport = Literal["aiohttp", "finnhub-python"]
"""What sends the REST requests: aiohttp (async, the default) or finnhub-python in a thread."""

_AUTH_HINT = (
    "the API key is missing or invalid, or this endpoint needs a paid Finnhub plan; check "
    "finnhub_api_key (FIN_AGENT_FINNHUB_API_KEY or the file finnhub_api_key in secrets_dir) "
    "and that the endpoint is on your plan (stock candles are paid: daily bars come from Yahoo)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FinnhubQuote:
    """Every figure of Finnhub's `/quote`: `c`, `pc`, `o`, `h`, `l`, `d`, `dp` and the time `t`.

    `at` is None when Finnhub has no trade time; an unknown symbol comes back all zero (`known`).
    """

    symbol: Symbol
    last: Decimal
    prev_close: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    change: Decimal | None
    change_pct: Decimal | None
    at: datetime | None

    @property
    def known(self) -> bool:
        """False for Finnhub's all-zero answer about a symbol it does not cover."""
        return self.last > 0 and self.at is not None

    def as_quote(self) -> Quote:
        """The domain `Quote` (last price, previous close, time)."""
        if not self.known or self.at is None:
            raise DataError(
                f"finnhub has no quote for {self.symbol} (all zero): check the symbol is a "
                "US-listed ticker Finnhub covers"
            )
        return Quote(symbol=self.symbol, last=self.last, prev_close=self.prev_close, at=self.at)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketStatus:
    """`/stock/market-status`: whether the exchange is open and in which session."""

    exchange: str
    is_open: bool
    session: str | None
    holiday: str | None
    at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketHoliday:
    """One `/stock/market-holiday` entry; `trading_hours` is set on a short day (`09:30-13:00`)."""

    name: str
    day: date
    trading_hours: str

    @property
    def early_close(self) -> bool:
        """True when the exchange trades that day, for fewer hours."""
        return bool(self.trading_hours)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompanyProfile:
    """`/stock/profile2`: the company behind a symbol; Finnhub's millions converted to units."""

    symbol: Symbol
    name: str
    exchange: str
    currency: str
    industry: str
    shares_outstanding: Decimal | None
    market_cap_usd: Decimal | None
    ipo: date | None


class FinnhubRest:
    """Finnhub's REST endpoints the agent uses, as typed values."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        budget: RateBudget,
        session: aiohttp.ClientSession | None = None,
        *,
        policy: HttpPolicy | None = None,
        transport: FinnhubTransport = "aiohttp",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key.strip():
            raise ConfigError(
                "finnhub_api_key is empty: set FIN_AGENT_FINNHUB_API_KEY or write the key to a "
                "file named finnhub_api_key in secrets_dir"
            )
        if transport not in get_args(FinnhubTransport):
            raise ConfigError(
                f"finnhub transport {transport!r} is unknown: set finnhub.transport to "
                "aiohttp or finnhub-python"
            )
        secret_headers = {TOKEN_HEADER: api_key.strip()}
        sdk = None
        if transport == "finnhub-python":
            sdk = FinnhubSdkTransport(
                base_url,
                secret_headers=secret_headers,
                timeout_secs=(policy or HttpPolicy()).timeout_secs,
                wall_clock=wall_clock,
            )
        self.transport: FinnhubTransport = transport
        self._http = JsonHttpClient(
            service="finnhub",
            base_url=base_url,
            budget=budget,
            auth_hint=_AUTH_HINT,
            policy=policy,
            secret_headers=secret_headers,
            session=session,
            transport=sdk,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
            rng=rng,
        )

    def __repr__(self) -> str:
        return f"FinnhubRest(base_url={str(self._http.base_url)!r}, transport={self.transport!r})"

    @property
    def stats(self) -> HttpStats:
        """Calls, retries, 429s, failures and the breaker of every endpoint."""
        return self._http.stats

    @property
    def budget(self) -> RateBudget:
        """The shared rate budget."""
        return self._http.budget

    async def close(self) -> None:
        """Close the transport (the HTTP session if this client opened it)."""
        await self._http.close()

    async def quote_figures(self, symbol: Symbol) -> FinnhubQuote:
        """Every figure of `/quote` for `symbol` (all zero when Finnhub does not know it)."""
        data = _mapping(await self._http.get("/quote", params={"symbol": symbol}), "/quote")
        stamp = _int(data.get("t"))
        return FinnhubQuote(
            symbol=symbol,
            last=_price(data.get("c")),
            prev_close=_price(data.get("pc")),
            open=_price(data.get("o")),
            high=_price(data.get("h")),
            low=_price(data.get("l")),
            change=_decimal(data.get("d")),
            change_pct=_decimal(data.get("dp")),
            at=datetime.fromtimestamp(stamp, UTC) if stamp else None,
        )

    async def quote(self, symbol: Symbol) -> Quote:
        """The last price and previous close of `symbol`; `DataError` for an unknown symbol."""
        return (await self.quote_figures(symbol)).as_quote()

    async def company_news(self, symbol: Symbol, start: date, end: date) -> list[Headline]:
        """Headlines about `symbol` dated `start` to `end` inclusive (Finnhub's `from`/`to`),
        oldest first; items without a title or a time are skipped."""
        params = {"symbol": symbol, "from": start.isoformat(), "to": end.isoformat()}
        data = await self._http.get("/company-news", params=params)
        if not isinstance(data, list):
            raise _shape("/company-news", "a list")
        found: dict[object, Headline] = {}
        for item in data:
            if not isinstance(item, Mapping):
                continue
            stamp, title = _int(item.get("datetime")), str(item.get("headline") or "").strip()
            if not stamp or not title:
                continue
            headline = Headline(
                symbol=symbol,
                title=title,
                source=str(item.get("source") or ""),
                published_at=datetime.fromtimestamp(stamp, UTC),
                url=str(item.get("url") or ""),
            )
            found[item.get("id") or (title, stamp)] = headline
        return sorted(found.values(), key=lambda h: (h.published_at, h.title))

    async def company_news_items(self, symbol: Symbol, start: date, end: date) -> list[NewsItem]:
        """`/company-news` about `symbol` dated `start` to `end` inclusive, as `NewsItem`s with
        stable ids, oldest first; bad items are skipped."""
        params = {"symbol": symbol, "from": start.isoformat(), "to": end.isoformat()}
        data = await self._http.get("/company-news", params=params)
        if not isinstance(data, list):
            raise _shape("/company-news", "a list")
        return sorted(decode_news(data, symbol).items, key=lambda i: (i.published_at, i.news_id))

    async def general_news(self, min_id: int = 0) -> list[NewsItem]:
        """`/news?category=general`: market news newer than the item id `min_id` (0: the latest
        page), oldest first; `max_news_id` of the answer is the next call's `min_id`."""
        params = {"category": "general", "minId": str(min_id)}
        data = await self._http.get("/news", params=params)
        if not isinstance(data, list):
            raise _shape("/news", "a list")
        return sorted(decode_news(data).items, key=lambda i: (i.published_at, i.news_id))

    async def market_status(self, exchange: str = "US") -> MarketStatus:
        """Whether `exchange` is open now, and its session (`pre-market`, `regular`, ...)."""
        endpoint = "/stock/market-status"
        data = _mapping(await self._http.get(endpoint, params={"exchange": exchange}), endpoint)
        stamp = _int(data.get("t"))
        return MarketStatus(
            exchange=str(data.get("exchange") or exchange),
            is_open=bool(data.get("isOpen")),
            session=_text(data.get("session")),
            holiday=_text(data.get("holiday")),
            at=datetime.fromtimestamp(stamp, UTC) if stamp else None,
        )

    async def market_holidays(self, exchange: str = "US") -> list[MarketHoliday]:
        """The exchange's holidays and shortened days Finnhub lists, by date."""
        endpoint = "/stock/market-holiday"
        data = _mapping(await self._http.get(endpoint, params={"exchange": exchange}), endpoint)
        rows = data.get("data")
        if not isinstance(rows, list):
            raise _shape(endpoint, "an object with a `data` list")
        holidays = []
        for row in rows:
            if not isinstance(row, Mapping):
                continue
            try:
                day = date.fromisoformat(str(row.get("atDate")))
            except ValueError:
                continue
            holidays.append(
                MarketHoliday(
                    name=str(row.get("eventName") or ""),
                    day=day,
                    trading_hours=str(row.get("tradingHour") or ""),
                )
            )
        return sorted(holidays, key=lambda h: h.day)

    async def profile(self, symbol: Symbol) -> CompanyProfile | None:
        """The company behind `symbol` (shares outstanding in shares), None if Finnhub has none."""
        endpoint = "/stock/profile2"
        data = _mapping(await self._http.get(endpoint, params={"symbol": symbol}), endpoint)
        if not data:
            return None
        shares, cap = (
            _decimal(data.get("shareOutstanding")),
            _decimal(data.get("marketCapitalization")),
        )
        ipo_text = _text(data.get("ipo"))
        try:
            ipo = date.fromisoformat(ipo_text) if ipo_text else None
        except ValueError:
            ipo = None
        return CompanyProfile(
            symbol=symbol,
            name=str(data.get("name") or ""),
            exchange=str(data.get("exchange") or ""),
            currency=str(data.get("currency") or ""),
            industry=str(data.get("finnhubIndustry") or ""),
            shares_outstanding=shares * MILLION if shares is not None else None,
            market_cap_usd=cap * MILLION if cap is not None else None,
            ipo=ipo,
        )


def _shape(endpoint: str, expected: str) -> DataError:
    return DataError(
        f"finnhub {endpoint} answered with JSON that is not {expected}: the API changed or a "
        "proxy answered; check finnhub's base URL"
    )


def _mapping(data: Any, endpoint: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _shape(endpoint, "an object")
    return data


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _price(value: Any) -> Decimal:
    number = _decimal(value)
    return number if number is not None and number > 0 else Decimal(0)


def _int(value: Any) -> int:
    number = _decimal(value)
    return int(number) if number is not None and number > 0 else 0


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
