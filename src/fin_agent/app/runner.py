"""Runs whole trading days in-process: scan, then the session minute by minute, then the report."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from fin_agent.app.bootstrap import Container
from fin_agent.app.trading_day import DayPorts, DayTimes, TradingDay
from fin_agent.domain.report import DailyReport
from fin_agent.domain.values import Session, symbol


async def run_session(container: Container, session: Session, start_equity: Decimal) -> DailyReport:
    """Run one session end to end and return its report."""
    settings = container.settings
    times = DayTimes.of(
        session, container.strategy, container.timezone, container.scan_time(session.day)
    )
    container.clock.set(times.scan_at)
    day = TradingDay(
        session=session,
        times=times,
        strategy=container.strategy,
        start_equity=start_equity,
        ports=DayPorts(
            clock=container.clock,
            market=container.market,
            news=container.news,
            orders=container.orders,
            bus=container.bus,
        ),
        universe=[symbol(s) for s in settings.scan.universe],
        news_lookback=timedelta(hours=settings.scan.news_lookback_hours),
    )
    await day.scan()
    if day.watchlist:
        bars = await container.market.session_bars(session.day, day.watchlist)
        for _, minute in itertools.groupby(bars, key=lambda b: b.start):
            group = list(minute)
            container.clock.set(group[0].end)
            await day.on_bars(group)
    container.clock.set(max(container.clock.now(), times.closes_at))
    return await day.finish()


async def run_sessions(
    container: Container, sessions: Sequence[Session], start_equity: Decimal
) -> list[DailyReport]:
    """Run sessions in order, each starting with the equity the previous one ended with."""
    reports: list[DailyReport] = []
    equity = start_equity
    for session in sessions:
        report = await run_session(container, session, equity)
        reports.append(report)
        equity = report.performance.end_equity
    return reports
