"""The stored daily reports a day's risk looks back on: the equity peak (the maximum drawdown)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fin_agent.domain.events import ReportDaily
from fin_agent.domain.report import DailyReport, equity_peak
from fin_agent.ports.store import Store


async def reports_before(store: Store, day: date | None = None) -> list[DailyReport]:
    """The latest stored report of each day before `day` (every day when None), oldest first."""
    events = await store.events(types=[ReportDaily.TYPE])
    latest: dict[date, DailyReport] = {}
    for event in events:
        if isinstance(event, ReportDaily) and (day is None or event.trading_day < day):
            latest[event.trading_day] = event.report
    return [latest[d] for d in sorted(latest)]


async def equity_peak_before(store: Store, day: date) -> Decimal | None:
    """The highest equity of the days reported before `day` (None: none reported)."""
    return equity_peak(await reports_before(store, day))
