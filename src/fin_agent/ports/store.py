"""The `Store` port: the durable, queryable record of every trading day.

A store keeps the raw event log and projects each event into plain tables (scans, plans, orders,
fills, trades, daily reports, 1-minute bars, errors, risk states). Writes are idempotent: an event
whose id is already stored adds nothing, so redelivery never duplicates a row. It also holds the
daily bars fetched for ATR and average volume (`daily_bar_cache`), which are no event's projection,
and the scans' inputs (`scan_records`), which travel on the bus only as a reference.
Candles (`candles`) are the stored minute bars bucketed by time, the same answer on every store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Protocol

from fin_agent.domain.events import DomainEvent
from fin_agent.ports.daily_bar_cache import DailyBarCache
from fin_agent.ports.scan_records import ScanRecords

Row = Mapping[str, object]


class CandleWidth(StrEnum):
    """How much time one candle spans: minutes, an hour, or one trading day."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    D1 = "1d"

    @property
    def span(self) -> timedelta:
        """The bucket's length (a trading day's bucket is its exchange-time calendar day)."""
        return _SPANS[self]


_SPANS = {
    CandleWidth.M1: timedelta(minutes=1),
    CandleWidth.M5: timedelta(minutes=5),
    CandleWidth.M15: timedelta(minutes=15),
    CandleWidth.M30: timedelta(minutes=30),
    CandleWidth.H1: timedelta(hours=1),
    CandleWidth.D1: timedelta(days=1),
}
CANDLE_COLUMNS = (
    "symbol",
    "trading_day",
    "start",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "minutes",
)
"""A candle row: its symbol and trading day, the bucket's start (UTC; for `1d` the exchange's
midnight), open (of the first minute), high, low, close (of the last minute), volume, and how
many minute bars it holds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreInfo:
    """What a store is and what it can do, as it says at start."""

    backend: str
    schema_version: int
    features: tuple[str, ...] = ()
    detail: str = ""


class Store(Protocol):
    """Keeps events and their projections; every write is one transaction."""

    async def migrate(self) -> StoreInfo:
        """Bring the schema to the latest version (idempotent) and say what the store is."""
        ...

    async def write(self, events: Sequence[DomainEvent]) -> int:
        """Store events and their projections in one transaction; return how many were new."""
        ...

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        """Stored events in time order (then id), filtered by trading day and type."""
        ...

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        """Rows of a projection table (`adapters.storage.rows.TABLES`), oldest first."""
        ...

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        ...

    async def candles(
        self, width: CandleWidth, *, day: date | None = None, symbol: str | None = None
    ) -> Sequence[Row]:
        """The stored minute bars (`bars_1m`) bucketed by `width` per symbol and trading day, as
        `CANDLE_COLUMNS` rows, by start then symbol; on `day` and of `symbol` when given."""
        ...

    def daily_bar_cache(self) -> DailyBarCache:
        """The daily bars this store keeps, so each day fetches only what is new (after `migrate`).

        Bound to the store: it shares the store's connection (or pool); not for use after `close`.
        """
        ...

    def scan_records(self) -> ScanRecords:
        """The scans' inputs this store keeps, each daily bar once (after `migrate`).

        Bound to the store like `daily_bar_cache`; every call answers the same records.
        """
        ...

    async def ping(self) -> None:
        """Raise `AdapterError` when the store cannot be used right now (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
