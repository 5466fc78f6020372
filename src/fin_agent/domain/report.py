"""The daily report: trades, P&L, R multiples, win rate and drawdown, and a summary across days."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from fin_agent.domain.positions import ClosedTrade

ZERO = Decimal(0)
HUNDRED = Decimal(100)
RATIO_STEP = Decimal("0.0001")


@dataclass(frozen=True, slots=True, kw_only=True)
class Performance:
    """Figures over a run of trades starting from an equity."""

    start_equity: Decimal
    end_equity: Decimal
    trades: tuple[ClosedTrade, ...]
    gross_pnl: Decimal
    commissions: Decimal
    net_pnl: Decimal
    wins: int
    losses: int
    win_rate: Decimal
    avg_r: Decimal
    max_drawdown: Decimal
    max_drawdown_pct: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyReport:
    """One trading day's outcome and what the agent did."""

    day: date
    strategy: str
    candidates: int
    plans: int
    plans_rejected: int
    performance: Performance


def performance(start_equity: Decimal, trades: Sequence[ClosedTrade]) -> Performance:
    """Compute the figures of `trades` (taken in exit order) from `start_equity`.

    Drawdown is the largest fall from a peak of the closed-trade equity curve, in money and as a
    percentage of that peak; the win rate counts trades with positive net P&L.
    """
    ordered = tuple(sorted(trades, key=lambda t: (t.exit_at, t.plan_id)))
    equity = peak = start_equity
    max_dd = max_dd_pct = ZERO
    for trade in ordered:
        equity += trade.net_pnl
        peak = max(peak, equity)
        drawdown = peak - equity
        if drawdown > max_dd:
            max_dd = drawdown
            max_dd_pct = (HUNDRED * drawdown / peak).quantize(RATIO_STEP) if peak else ZERO
    wins = sum(1 for t in ordered if t.net_pnl > 0)
    count = len(ordered)
    return Performance(
        start_equity=start_equity,
        end_equity=equity,
        trades=ordered,
        gross_pnl=sum((t.gross_pnl for t in ordered), ZERO),
        commissions=sum((t.commission for t in ordered), ZERO),
        net_pnl=equity - start_equity,
        wins=wins,
        losses=count - wins,
        win_rate=(Decimal(wins) / count).quantize(RATIO_STEP) if count else ZERO,
        avg_r=(sum((t.r_multiple for t in ordered), ZERO) / count).quantize(RATIO_STEP)
        if count
        else ZERO,
        max_drawdown=max_dd,
        max_drawdown_pct=max_dd_pct,
    )


def summarize(start_equity: Decimal, reports: Sequence[DailyReport]) -> Performance:
    """Performance across several days, equity carried from one day to the next."""
    trades = [t for r in reports for t in r.performance.trades]
    return performance(start_equity, trades)


def equity_peak(reports: Sequence[DailyReport]) -> Decimal | None:
    """The highest equity the reported days stood at, at a start or an end (None: no report)."""
    values = [v for r in reports for v in (r.performance.start_equity, r.performance.end_equity)]
    return max(values, default=None)
