"""The live trade feed's values and the `MinuteAggregator` port.

A trade feed (`FinnhubTradeFeed`) hands `TickBatch`es to a `Sink` and reports `FeedStats`; a
`MinuteAggregator` (`BarAggregator`) turns ticks into `ClosedMinute`s and reports
`AggregatorStats`. The app's `MarketFeed` runs one into the other and onto the bus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from fin_agent.domain.values import Bar, Trade

Price = float | Decimal
RawTick = tuple[str, Price, int, int, Sequence[str]]
"""A trade as the wire gave it: (symbol, price, at_ms, size, conditions); plain tuples are cheap."""


class TickBatch(Protocol):
    """The trades of one frame of the feed, in the order they came."""

    @property
    def ticks(self) -> Sequence[RawTick]:
        """The trades as the wire gave them."""
        ...

    def trades(self) -> tuple[Trade, ...]:
        """The batch as domain `Trade` values (decimal prices, aware UTC times)."""
        ...


Sink = Callable[[TickBatch], Awaitable[None]]
"""Where a trade source hands each batch (it waits: back-pressure)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStats:
    """A snapshot of the feed's health and counts since it was made (for metrics and readiness).

    `reconnects` counts connections made after the first; `downtime_secs` the time spent without
    a connection after a drop or a failed attempt (including the outage in progress).
    """

    connected: bool
    reconnects: int
    connect_failures: int
    disconnects: int
    stale_reconnects: int
    downtime_secs: float
    frames: int
    trades: int
    malformed: int
    malformed_trades: int
    ignored_trades: int
    pings: int
    server_errors: int
    subscribed: int
    watchlist: int
    last_frame_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedMinute:
    """Every symbol's bar of one closed minute (symbols without a trade in it have none)."""

    start: datetime
    bars: tuple[Bar, ...]

    @property
    def end(self) -> datetime:
        """The instant the minute ended (exclusive)."""
        return self.start + timedelta(seconds=60)


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregatorStats:
    """What the aggregator did with the trades it was given."""

    trades: int
    excluded: int
    late: int
    bars: int
    minutes: int
    open_bars: int
    closed_through: datetime | None


class MinuteAggregator(Protocol):
    """Builds 1-minute bars from ticks and closes minutes (`BarAggregator` is one)."""

    @property
    def stats(self) -> AggregatorStats:
        """What it did so far."""
        ...

    def add(self, ticks: Sequence[RawTick]) -> Sequence[ClosedMinute]:
        """Take `ticks`; return the minutes they closed."""
        ...

    def flush(self, now: datetime) -> Sequence[ClosedMinute]:
        """Close the minutes that ended by `now`."""
        ...

    def close_all(self) -> Sequence[ClosedMinute]:
        """Close every minute with trades, finished or not."""
        ...
