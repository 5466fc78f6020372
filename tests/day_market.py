"""A trading day's market for the app tests: 20 quiet sessions, then gappers with one opening
range (high 11.20, low 10.90, ATR 0.40) and a symbol up 1 % the gap band rejects."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from fin_agent.adapters.memory import FixedCalendar, InMemoryEventBus, InMemoryMarketData
from fin_agent.domain.events import DomainEvent
from fin_agent.domain.values import Bar, DailyBar, Premarket, symbol

NY = ZoneInfo("America/New_York")
DAY = date(2025, 3, 4)  # a Tuesday in EST: the open is 14:30 UTC
D = Decimal


def et(hh: int, mm: int) -> datetime:
    return datetime.combine(DAY, time(hh, mm), NY).astimezone(UTC)


def history(sym: str, close: str = "10.00", volume: int = 1_000_000) -> list[DailyBar]:
    """20 sessions closing at `close` with a 0.40 range: every true range is 0.40, so ATR = 0.40."""
    c = D(close)
    days = FixedCalendar().sessions(DAY - timedelta(days=40), DAY - timedelta(days=1))[-20:]
    return [
        DailyBar(
            symbol=symbol(sym),
            session=s.day,
            open=c,
            high=c + D("0.20"),
            low=c - D("0.20"),
            close=c,
            volume=volume,
        )
        for s in days
    ]


def bar(sym: str, hh: int, mm: int, o: str, h: str, low: str, c: str, v: int = 10_000) -> Bar:
    return Bar(
        symbol=symbol(sym),
        start=et(hh, mm),
        open=D(o),
        high=D(h),
        low=D(low),
        close=D(c),
        volume=v,
    )


def opening_bars(sym: str) -> list[Bar]:
    """09:30-09:34: the opening range is high 11.20, low 10.90."""
    return [
        bar(sym, 9, 30, "11.00", "11.10", "10.90", "11.05"),
        bar(sym, 9, 31, "11.05", "11.20", "11.00", "11.10"),
        bar(sym, 9, 32, "11.10", "11.15", "11.00", "11.05"),
        bar(sym, 9, 33, "11.05", "11.12", "10.95", "11.00"),
        bar(sym, 9, 34, "11.00", "11.10", "10.95", "11.08"),
    ]


def market_with(*gappers: str, extra_bars: list[Bar]) -> InMemoryMarketData:
    market = InMemoryMarketData()
    for sym in gappers:
        market.add_daily(history(sym))
        market.premarkets[(symbol(sym), DAY)] = Premarket(
            symbol=symbol(sym), last=D("11.00"), volume=200_000, as_of=et(9, 0)
        )
        market.add_intraday(opening_bars(sym))
    # a symbol up only 1 %: rejected by the gap band
    market.add_daily(history("FLAT"))
    market.premarkets[(symbol("FLAT"), DAY)] = Premarket(
        symbol=symbol("FLAT"), last=D("10.10"), volume=200_000, as_of=et(9, 0)
    )
    market.add_intraday(extra_bars)
    return market


E = TypeVar("E", bound=DomainEvent)


def of_type(bus: InMemoryEventBus, kind: type[E]) -> list[E]:
    """The events of `kind` the bus carried, in order."""
    return [e for e in bus.published if isinstance(e, kind)]
