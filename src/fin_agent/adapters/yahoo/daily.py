"""`YahooDailyBars`: daily OHLCV from Yahoo's chart endpoint, for ATR and average volume.

`GET {base}/v8/finance/chart/{symbol}?period1=&period2=&interval=1d` answers
`chart.result[0]` with `timestamp` (each session's open, epoch seconds), `indicators.quote[0]`
(`open`/`high`/`low`/`close`/`volume`, null where Yahoo has nothing) and
`meta.exchangeTimezoneName`. Sessions are the exchange-local dates of the stamps; null rows are
skipped. Prices are the `quote` arrays, never `adjclose`: not adjusted for dividends (Yahoo does
scale them for splits, which `LiveMarket` notices and refetches). Asked with `events=split`, the
answer also holds `events.splits` (`{stamp: {date, numerator, denominator, splitRatio}}`, the
numerator the new shares): the splits of the range. Its own budget and breakers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
import structlog

from fin_agent.adapters.vendor_http.json_client import HttpPolicy, HttpStats, JsonHttpClient
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.domain.errors import DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import DailyBar, Symbol

log = structlog.get_logger(__name__)

YAHOO_BASE_URL = "https://query1.finance.yahoo.com"
CHART_ENDPOINT = "/v8/finance/chart"
# Yahoo publishes no limit; this stays well under the rates reported to trigger its 429s.
YAHOO_WINDOWS: tuple[RateWindow, ...] = (
    RateWindow(max_calls=100, per_secs=60.0),
    RateWindow(max_calls=4, per_secs=1.0),
)
DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; fin-agent/0.1)"
PRICE_PLACES = Decimal("0.0001")

_AUTH_HINT = (
    "Yahoo refused the chart request; it blocks some networks and user agents: set "
    "yahoo.user_agent to a browser's, or put another source first in the daily bar source order"
)


def yahoo_symbol(symbol: Symbol) -> str:
    """Yahoo's spelling of a US ticker: share classes take a dash (BRK.B is BRK-B)."""
    return symbol.replace(".", "-")


class YahooDailyBars:
    """Daily bars of a symbol from Yahoo's chart endpoint, one call per range asked for."""

    name = "yahoo"

    def __init__(
        self,
        budget: RateBudget,
        base_url: str = YAHOO_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        *,
        policy: HttpPolicy | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._http = JsonHttpClient(
            service="yahoo",
            base_url=base_url,
            budget=budget,
            auth_hint=_AUTH_HINT,
            policy=policy,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=True,
            session=session,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )

    def __repr__(self) -> str:
        return f"YahooDailyBars(base_url={str(self._http.base_url)!r})"

    @property
    def stats(self) -> HttpStats:
        """Calls, retries, 429s, failures and the breaker of the chart endpoint."""
        return self._http.stats

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        await self._http.close()

    async def daily_bars(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """The bars of sessions `start` to `end` inclusive, oldest first ([] for an unknown symbol).

        The request spans a day more on each side, so no time zone can cut a session off.
        """
        bars, _ = await self.bars_and_splits(symbol, start, end)
        return list(bars)

    async def bars_and_splits(
        self, symbol: Symbol, start: date, end: date
    ) -> tuple[tuple[DailyBar, ...], tuple[Split, ...]]:
        """The bars of sessions `start` to `end` and the splits Yahoo reports from `start` on
        (one of the next session, the scan's day, included: its ex-date is after `end`)."""
        if end < start:
            return (), ()
        period1 = datetime.combine(start - timedelta(days=1), datetime.min.time(), UTC)
        period2 = datetime.combine(end + timedelta(days=2), datetime.min.time(), UTC)
        params = {
            "period1": str(int(period1.timestamp())),
            "period2": str(int(period2.timestamp())),
            "interval": "1d",
            "includePrePost": "false",
            "events": "split",
        }
        data = await self._http.get(
            CHART_ENDPOINT,
            path=f"{CHART_ENDPOINT}/{yahoo_symbol(symbol)}",
            params=params,
            not_found_ok=True,
        )
        if data is None:
            return (), ()
        bars = tuple(b for b in parse_chart(symbol, data) if start <= b.session <= end)
        return bars, tuple(s for s in parse_splits(symbol, data) if start <= s.session)


def parse_splits(symbol: Symbol, data: Any) -> list[Split]:
    """The split events of a chart answer, oldest first ([] when it has none). An event that
    does not read as a split is skipped with a warning naming it."""
    try:
        result = data["chart"]["result"][0]
    except (KeyError, IndexError, TypeError):
        return []
    events = result.get("events") if isinstance(result, Mapping) else None
    found = events.get("splits") if isinstance(events, Mapping) else None
    if not isinstance(found, Mapping):
        return []
    tz = _zone(symbol, result.get("meta"))
    splits: dict[date, Split] = {}
    for key, event in found.items():
        try:
            stamp = int(event.get("date", key))
            ratio = Fraction(str(event["numerator"])) / Fraction(str(event["denominator"]))
            session = datetime.fromtimestamp(stamp, tz).date()
            splits[session] = Split.of_ratio(symbol, session, ratio)
        except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError, DataError) as e:
            log.warning(
                "yahoo_split_skipped", symbol=symbol, split_event=str(event)[:200], error=str(e)
            )
    return [splits[d] for d in sorted(splits)]


def parse_chart(symbol: Symbol, data: Any) -> list[DailyBar]:
    """The daily bars in a chart answer, oldest first, one per session (the last row wins).

    Rows with a null price or volume are skipped; so are rows whose OHLC contradict each other,
    with a warning. An error answer with no result ("Not Found": an unknown symbol) is no bars.
    """
    chart = data.get("chart") if isinstance(data, Mapping) else None
    if not isinstance(chart, Mapping):
        raise _shape(symbol, "no `chart` object")
    results = chart.get("result")
    if not results:
        error = chart.get("error")
        code = error.get("code") if isinstance(error, Mapping) else None
        if error is None or code == "Not Found":
            return []
        text = error.get("description") if isinstance(error, Mapping) else error
        raise DataError(f"yahoo chart for {symbol}: {code}: {text}; check the symbol and dates")
    result = results[0] if isinstance(results, list) else None
    if not isinstance(result, Mapping):
        raise _shape(symbol, "no `chart.result[0]`")
    stamps = result.get("timestamp") or []
    if not stamps:  # no session in the range asked for
        return []
    tz = _zone(symbol, result.get("meta"))
    try:
        quote = result["indicators"]["quote"][0]
        columns = [quote.get(k) or [] for k in ("open", "high", "low", "close", "volume")]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _shape(symbol, "timestamps but no `indicators.quote[0]`") from None
    by_session: dict[date, DailyBar] = {}
    skipped = 0
    for i, stamp in enumerate(stamps):
        row: list[Any] = [column[i] if i < len(column) else None for column in columns]
        if stamp is None or any(v is None for v in row):
            continue
        try:
            session = datetime.fromtimestamp(int(stamp), tz).date()
            o, h, lo, c = (_price(v) for v in row[:4])
            bar = DailyBar(
                symbol=symbol, session=session, open=o, high=h, low=lo, close=c, volume=int(row[4])
            )
        except (DataError, InvalidOperation, ValueError, TypeError, OverflowError) as exc:
            skipped += 1
            log.warning("yahoo_bar_skipped", symbol=symbol, stamp=stamp, error=str(exc))
            continue
        by_session[session] = bar
    if skipped:
        log.warning("yahoo_bars_skipped", symbol=symbol, skipped=skipped)
    return [by_session[d] for d in sorted(by_session)]


def _price(value: Any) -> Decimal:
    """A price rounded to 4 places: Yahoo sends binary floats (187.44000244140625)."""
    return Decimal(str(value)).quantize(PRICE_PLACES)


def _zone(symbol: Symbol, meta: Any) -> ZoneInfo:
    name = meta.get("exchangeTimezoneName") if isinstance(meta, Mapping) else None
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("America/New_York")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(
            f"yahoo chart for {symbol}: unknown exchange time zone {name!r}; update tzdata"
        ) from exc


def _shape(symbol: Symbol, what: str) -> DataError:
    return DataError(
        f"yahoo chart for {symbol} has {what}: the API changed or a proxy answered; "
        "check yahoo.base_url"
    )
