"""`LiveAgent`: a container on the live market with the parts only a live run has, typed by
ports and app services (`app.bootstrap.build_live` builds it); and `in_session`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fin_agent.app.container import Container
from fin_agent.app.live.days import LiveDays
from fin_agent.app.live.market_feed import MarketFeed, TradeSource
from fin_agent.app.live.news import LiveNews
from fin_agent.app.schedule.scheduler import Scheduler
from fin_agent.domain.errors import ConfigError
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.market_data import LiveMarketData
from fin_agent.ports.rate_budget import RateBudgetStats


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveAgent:
    """A container on the live market, with the parts only a live run has.

    `budgets`: the vendors' rate budgets (Finnhub's REST calls, the daily bars'), for metrics.
    """

    container: Container
    market: LiveMarketData
    trades: TradeSource
    feed: MarketFeed
    scheduler: Scheduler
    days: LiveDays
    budgets: tuple[RateBudgetStats, ...]
    news: LiveNews | None = None
    """The news stream of `news.source` (None: off)."""


def in_session(calendar: Calendar, now: datetime, tz: ZoneInfo) -> bool:
    """Whether `now` falls inside a regular session (a silent socket then is suspicious)."""
    try:
        session = calendar.session(now.astimezone(tz).date())
    except ConfigError:
        return False
    return session is not None and session.open <= now < session.close
