"""The instants that shape a trading day, and the ports a trading day talks to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fin_agent.domain.rules import Strategy
from fin_agent.domain.values import Session
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News
from fin_agent.ports.orders import Orders


@dataclass(frozen=True, slots=True, kw_only=True)
class DayTimes:
    """The instants (UTC) that shape a session's decisions, from the calendar and the rules."""

    scan_at: datetime
    opens_at: datetime
    range_ends_at: datetime
    entries_until: datetime
    flatten_at: datetime
    closes_at: datetime

    @classmethod
    def of(cls, session: Session, strategy: Strategy, tz: ZoneInfo, scan_time: time) -> DayTimes:
        """Work out the day's instants for `session` in exchange time zone `tz`."""
        rules = strategy.plan
        range_end = session.open + timedelta(minutes=rules.opening_range_minutes)
        deadline = datetime.combine(session.day, rules.entry_deadline, tz).astimezone(
            session.open.tzinfo
        )
        return cls(
            scan_at=datetime.combine(session.day, scan_time, tz).astimezone(session.open.tzinfo),
            opens_at=session.open,
            range_ends_at=range_end,
            entries_until=min(deadline, session.close),
            flatten_at=session.close - timedelta(minutes=rules.flatten_before_close_minutes),
            closes_at=session.close,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPorts:
    """The ports a trading day talks to."""

    clock: Clock
    market: MarketData
    news: News
    orders: Orders
    bus: EventBus
