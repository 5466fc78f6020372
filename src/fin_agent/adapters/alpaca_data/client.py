"""`AlpacaMarketData`: Alpaca's assets, snapshots and daily bars, many symbols per call.

- `assets()`: `/v2/assets` on the trading API: the active, tradable US equities on a real
  exchange (not OTC), class shares kept (`BRK.B`).
- `snapshots(symbols)`: `/v2/stocks/snapshots`, `snapshot_symbols_per_call` symbols a call.
- `daily_bars_many(symbols, start, end)`: `/v2/stocks/bars?timeframe=1Day`, split-adjusted,
  `bar_symbols_per_call` symbols a call, each call's pages followed (10,000 bars a page).
- `splits(start, end)`: `/v1/corporate-actions?types=forward_split,reverse_split` of the whole
  market (no symbols given), ex-dated `start`..`end`, 1,000 actions a page (`splits.py`).
Every call (each page too) takes its place in the shared Alpaca `RateBudget` and passes its
endpoint's breaker (`JsonHttpClient`). alpaca-py's `StockHistoricalDataClient` is not used here:
it is synchronous, follows a request's pages inside one call (outside the budget) and builds a
pydantic model for each of a whole market's snapshots and bars.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import aiohttp
import structlog

from fin_agent.adapters.alpaca_data.snapshot import NY, AlpacaSnapshot, parse_snapshot
from fin_agent.adapters.alpaca_data.splits import SPLIT_TYPES, parse_splits
from fin_agent.adapters.vendor_http.json_client import HttpPolicy, JsonHttpClient
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import DailyBar, Symbol, symbol

log = structlog.get_logger(__name__)

Feed = Literal["iex", "sip"]
EXCHANGES = frozenset({"NYSE", "NASDAQ", "ARCA", "AMEX", "BATS", "NYSEARCA"})
PAGE_LIMIT = 10_000
ACTIONS_PAGE_LIMIT = 1_000
_AUTH_HINT = (
    "Alpaca refused the key: check the alpaca_key_id and alpaca_secret_key secrets (the market "
    "data API takes the trading keys), and broker.alpaca.feed (sip needs a paid plan)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaDataConfig:
    """Where Alpaca is and how many symbols go in one call."""

    trading_url: str
    data_url: str
    feed: Feed = "iex"
    snapshot_symbols_per_call: int = 500
    bar_symbols_per_call: int = 200
    max_in_flight: int = 4

    def __post_init__(self) -> None:
        if min(self.snapshot_symbols_per_call, self.bar_symbols_per_call, self.max_in_flight) < 1:
            raise ConfigError("Alpaca symbols per call and calls in flight must be at least 1")


class AlpacaMarketData:
    """Alpaca's assets, snapshots and daily bars within one shared budget (see the module)."""

    name = "alpaca"

    def __init__(
        self,
        config: AlpacaDataConfig,
        *,
        key_id: str,
        secret_key: str,
        budget: RateBudget,
        session: aiohttp.ClientSession | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        secrets = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}
        common: dict[str, Any] = {"budget": budget, "auth_hint": _AUTH_HINT, "policy": policy,
                                  "secret_headers": secrets, "session": session}  # fmt: skip
        self.config = config
        self._trading = JsonHttpClient(service="alpaca", base_url=config.trading_url, **common)
        self._data = JsonHttpClient(service="alpaca-data", base_url=config.data_url, **common)
        # A few calls at once: a large answer waiting behind twenty others would time out.
        self._in_flight = asyncio.Semaphore(config.max_in_flight)

    @property
    def budget(self) -> RateBudget:
        """The shared Alpaca budget every call waits on."""
        return self._data.budget

    async def close(self) -> None:
        """Close the HTTP sessions these clients opened."""
        await self._trading.close()
        await self._data.close()

    async def assets(self) -> list[Symbol]:
        """The active, tradable US equities on a real exchange, sorted (one call)."""
        body = await self._trading.get(
            "/v2/assets", params={"status": "active", "asset_class": "us_equity"}
        )
        if not isinstance(body, list):
            raise DataError("Alpaca /v2/assets did not answer a list: check broker.alpaca.base_url")
        kept: set[Symbol] = set()
        skipped = 0
        for asset in body:
            if not _listed(asset):
                continue
            try:
                kept.add(symbol(str(asset["symbol"])))
            except DataError:
                skipped += 1  # a warrant or unit written with '/' or '+', say
        log.info("alpaca_assets", listed=len(body), kept=len(kept), unreadable=skipped)
        return sorted(kept)

    async def snapshots(self, symbols: Sequence[Symbol]) -> dict[Symbol, AlpacaSnapshot]:
        """The snapshots of `symbols` (a symbol that never traded is missing)."""
        chunks = _chunks(sorted(set(symbols)), self.config.snapshot_symbols_per_call)
        answers = await asyncio.gather(*(self._snapshot_chunk(c) for c in chunks))
        return {s: snap for answer in answers for s, snap in answer.items()}

    async def daily_bars_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, list[DailyBar]]:
        """The daily bars of sessions `start`..`end` of each of `symbols`, oldest first."""
        if end < start or not symbols:
            return {}
        chunks = _chunks(sorted(set(symbols)), self.config.bar_symbols_per_call)
        answers = await asyncio.gather(*(self._bar_chunk(c, start, end) for c in chunks))
        return {s: bars for answer in answers for s, bars in answer.items()}

    async def daily_bars(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """One symbol's bars (a `DailyBarSource`, for a symbol outside the batch)."""
        return (await self.daily_bars_many([symbol], start, end)).get(symbol, [])

    async def splits(self, start: date, end: date) -> list[Split]:
        """Every symbol's splits ex-dated `start`..`end` (one call a page, the whole market)."""
        if end < start:
            return []
        params = {"types": ",".join(SPLIT_TYPES), "start": start.isoformat(),
                  "end": end.isoformat(), "limit": str(ACTIONS_PAGE_LIMIT)}  # fmt: skip
        found: list[Split] = []
        token: str | None = None
        while True:
            async with self._in_flight:
                page = await self._data.get(
                    "/v1/corporate-actions",
                    params={**params, **({"page_token": token} if token else {})},
                )
            found.extend(s for s in parse_splits(page) if start <= s.session <= end)
            token = page.get("next_page_token")
            if not token:
                return found

    async def _snapshot_chunk(self, chunk: Sequence[Symbol]) -> dict[Symbol, AlpacaSnapshot]:
        async with self._in_flight:
            body = await self._data.get(
                "/v2/stocks/snapshots",
                params={"symbols": ",".join(chunk), "feed": self.config.feed},
            )
        if not isinstance(body, Mapping):
            raise DataError("Alpaca snapshots did not answer an object: check broker.alpaca")
        found: dict[Symbol, AlpacaSnapshot] = {}
        for name, item in body.items():
            snap = parse_snapshot(symbol(str(name)), item) if item else None
            if snap is not None:
                found[snap.symbol] = snap
        return found

    async def _bar_chunk(
        self, chunk: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, list[DailyBar]]:
        params = {
            "symbols": ",".join(chunk),
            "timeframe": "1Day",
            "start": start.isoformat(),
            "end": (end + timedelta(days=1)).isoformat(),
            "adjustment": "split",
            "feed": self.config.feed,
            "limit": str(PAGE_LIMIT),
        }
        found: dict[Symbol, list[DailyBar]] = {}
        token: str | None = None
        while True:
            async with self._in_flight:
                page = await self._data.get(
                    "/v2/stocks/bars", params={**params, **({"page_token": token} if token else {})}
                )
            for name, rows in (page.get("bars") or {}).items():
                sym = symbol(str(name))
                bars = found.setdefault(sym, [])
                bars.extend(b for b in (_bar(sym, r) for r in rows) if start <= b.session <= end)
            token = page.get("next_page_token")
            if not token:
                return found


def _listed(asset: Any) -> bool:
    return bool(
        asset.get("status") == "active"
        and asset.get("tradable")
        and asset.get("class", "us_equity") == "us_equity"
        and asset.get("exchange") in EXCHANGES
    )


def _chunks(items: Sequence[Symbol], size: int) -> list[Sequence[Symbol]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _bar(sym: Symbol, row: Any) -> DailyBar:
    try:
        at = datetime.fromisoformat(str(row["t"]).replace("Z", "+00:00"))
        return DailyBar(
            symbol=sym,
            session=at.astimezone(NY).date(),
            open=Decimal(row["o"]),
            high=Decimal(row["h"]),
            low=Decimal(row["l"]),
            close=Decimal(row["c"]),
            volume=int(row["v"]),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise DataError(
            f"Alpaca daily bar of {sym} is not in the expected shape ({exc!r})"
        ) from None
