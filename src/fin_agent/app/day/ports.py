"""`DayPorts`: the ports a trading day talks to."""

from __future__ import annotations

from dataclasses import dataclass

from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News
from fin_agent.ports.orders import Orders
from fin_agent.ports.scan_records import ScanRecords


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPorts:
    """The ports a trading day talks to."""

    clock: Clock
    market: MarketData
    news: News
    orders: Orders
    bus: EventBus
    records: ScanRecords
    """Where the scan's inputs are kept (the store's `scan_records()`)."""
