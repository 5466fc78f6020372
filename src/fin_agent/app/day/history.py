"""What a new day starts from: the stored daily reports its risk looks back on (the equity peak,
for the maximum drawdown), and the equity it is sized from (the broker's account when it keeps
one)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import structlog

from fin_agent.domain.events import ReportDaily
from fin_agent.domain.report import DailyReport, equity_peak
from fin_agent.ports.orders import Orders
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)


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


async def sizing_equity(orders: Orders, recorded: Decimal) -> Decimal:
    """The start-of-day equity a new day is sized from: the broker's account equity when it keeps
    an account (the broker is the truth), else `recorded`, the project's own records."""
    account = await orders.account_equity()
    if account is None:
        return recorded
    if account != recorded:
        log.info("equity_from_broker", broker=str(account), records=str(recorded))
    return account
