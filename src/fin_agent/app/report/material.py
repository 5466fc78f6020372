"""What a backtest report is made of, gathered after the run: each trade with its plan and bars,
the sessions, and the benchmark's daily bars when the data has the benchmark symbol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from fin_agent.app.container import Container
from fin_agent.domain.events import PlanCreated
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.report import DailyReport
from fin_agent.domain.trade_plan import TradePlan
from fin_agent.domain.values import Bar, Session, symbol

CHART_AFTER_EXIT = timedelta(minutes=30)
CHART_AT_LEAST = timedelta(minutes=90)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeContext:
    """One closed trade, the plan it came from and the bars of its chart."""

    day: date
    session: Session
    trade: ClosedTrade
    plan: TradePlan | None
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Benchmark:
    """Buy-and-hold of one symbol: its open on the first session and its close on each."""

    symbol: str
    first_open: Decimal | None
    closes: tuple[Decimal, ...]
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    """A finished backtest, as the report reads it."""

    sessions: tuple[Session, ...]
    reports: tuple[DailyReport, ...]
    start_equity: Decimal
    trades: tuple[TradeContext, ...]
    benchmark: Benchmark | None
    timezone: str


async def gather(
    container: Container,
    sessions: Sequence[Session],
    reports: Sequence[DailyReport],
    start_equity: Decimal,
    benchmark_symbol: str | None,
) -> BacktestResult:
    """Read the plans from the run's store and the bars from its market, after the run."""
    by_day = {s.day: s for s in sessions}
    contexts: list[TradeContext] = []
    for report in reports:
        session = by_day[report.day]
        created = await container.store.events(day=report.day, types=[PlanCreated.TYPE])
        plans = {e.plan.id: e.plan for e in created if isinstance(e, PlanCreated)}
        for trade in report.performance.trades:
            bars = await container.market.session_bars(report.day, [trade.symbol])
            until = max(trade.exit_at + CHART_AFTER_EXIT, session.open + CHART_AT_LEAST)
            contexts.append(
                TradeContext(
                    day=report.day,
                    session=session,
                    trade=trade,
                    plan=plans.get(trade.plan_id),
                    bars=tuple(b for b in bars if b.symbol == trade.symbol and b.start < until),
                )
            )
    benchmark = (
        await _benchmark(container, sessions, benchmark_symbol) if benchmark_symbol else None
    )
    return BacktestResult(
        sessions=tuple(sessions),
        reports=tuple(reports),
        start_equity=start_equity,
        trades=tuple(contexts),
        benchmark=benchmark,
        timezone=container.settings.timezone,
    )


async def _benchmark(container: Container, sessions: Sequence[Session], name: str) -> Benchmark:
    """The benchmark's first open and daily closes: from its daily bars, else its minute bars."""
    market = container.market
    wanted = symbol(name)
    if not sessions or wanted not in await market.symbols():
        return Benchmark(
            symbol=name,
            first_open=None,
            closes=(),
            note=f"{name} is not in the data: no benchmark (report.benchmark_symbol)",
        )
    last = sessions[-1].day
    daily = {
        b.session: b
        for b in await market.daily_bars(wanted, last + timedelta(days=1), len(sessions) + 10)
    }
    opens: list[Decimal] = []
    closes: list[Decimal] = []
    for session in sessions:
        bar = daily.get(session.day)
        if bar is not None:
            opens.append(bar.open)
            closes.append(bar.close)
            continue
        minutes = [
            b for b in await market.session_bars(session.day, [wanted]) if b.symbol == wanted
        ]
        if not minutes:
            return Benchmark(
                symbol=name,
                first_open=None,
                closes=(),
                note=f"{name} has no bars on {session.day}: no benchmark",
            )
        opens.append(minutes[0].open)
        closes.append(minutes[-1].close)
    return Benchmark(
        symbol=name,
        first_open=opens[0],
        closes=tuple(closes),
        note=f"buy {name} at the open of {sessions[0].day}, hold to the close of {last}",
    )
