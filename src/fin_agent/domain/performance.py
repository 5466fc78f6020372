"""Risk and return statistics of a run: Sharpe, Sortino, CAGR, drawdown, profit factor and more.

Pure functions over an equity curve sampled once per session and the run's closed trades, shared by
the backtest report and (later) the optimiser's objective. Ratios are annualised from daily
returns with `SESSIONS_PER_YEAR`; a figure that cannot be computed (one day, no loss) is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from fin_agent.domain.positions import ClosedTrade

ZERO = Decimal(0)
ONE = Decimal(1)
SESSIONS_PER_YEAR = 252
RATIO_STEP = Decimal("0.0001")
MEANINGLESS_GROWTH_DIGITS = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Drawdown:
    """The largest fall of a curve from a running peak.

    `duration_periods` counts the samples from the peak to the recovery (the first sample back at
    or above the peak), or to the curve's last sample when it never recovered.
    """

    amount: Decimal
    pct: Decimal
    peak_index: int
    trough_index: int
    duration_periods: int
    recovered: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Statistics:
    """The figures of a report, for the strategy or a buy-and-hold benchmark."""

    start_equity: Decimal
    end_equity: Decimal
    net_pnl: Decimal
    gross_pnl: Decimal
    sessions: int
    cagr_pct: Decimal | None
    sharpe: Decimal | None
    sortino: Decimal | None
    max_drawdown: Decimal
    max_drawdown_pct: Decimal
    max_drawdown_sessions: int
    trade_count: int
    profit_factor: Decimal | None
    expectancy_r: Decimal | None
    win_rate: Decimal | None
    exposure_pct: Decimal | None
    avg_holding: timedelta | None


def returns(start: Decimal, curve: Sequence[Decimal]) -> list[Decimal]:
    """The period returns of an equity `curve` that starts from `start` (one per sample)."""
    previous = start
    out: list[Decimal] = []
    for equity in curve:
        out.append(equity / previous - ONE if previous else ZERO)
        previous = equity
    return out


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values)


def sharpe(
    period_returns: Sequence[Decimal], periods_per_year: int = SESSIONS_PER_YEAR
) -> Decimal | None:
    """Annualised Sharpe ratio (risk-free rate 0): mean / sample standard deviation * sqrt(N).

    None with fewer than two returns or when they do not vary.
    """
    if len(period_returns) < 2:
        return None
    mean = _mean(period_returns)
    variance = sum(((r - mean) ** 2 for r in period_returns), ZERO) / (len(period_returns) - 1)
    if variance == 0:
        return None
    return (mean / variance.sqrt() * Decimal(periods_per_year).sqrt()).quantize(RATIO_STEP)


def sortino(
    period_returns: Sequence[Decimal], periods_per_year: int = SESSIONS_PER_YEAR
) -> Decimal | None:
    """Annualised Sortino ratio (target 0): mean / downside deviation * sqrt(N).

    The downside deviation is sqrt(mean(min(r, 0)^2)) over every period; None without a loss.
    """
    if len(period_returns) < 2:
        return None
    downside = sum((min(r, ZERO) ** 2 for r in period_returns), ZERO) / len(period_returns)
    if downside == 0:
        return None
    mean = _mean(period_returns)
    return (mean / downside.sqrt() * Decimal(periods_per_year).sqrt()).quantize(RATIO_STEP)


def cagr_pct(
    start: Decimal, end: Decimal, sessions: int, sessions_per_year: int = SESSIONS_PER_YEAR
) -> Decimal | None:
    """Compound annual growth rate in percent over `sessions` trading sessions.

    None without sessions, when the equity is not positive at both ends, or when a short run
    annualises to a growth past 10^12 (a figure that means nothing).
    """
    if sessions < 1 or start <= 0 or end <= 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        growth = (end / start) ** (Decimal(sessions_per_year) / Decimal(sessions))
        if growth.adjusted() > MEANINGLESS_GROWTH_DIGITS:
            return None
        return (100 * (growth - ONE)).quantize(RATIO_STEP)


def drawdown(start: Decimal, curve: Sequence[Decimal]) -> Drawdown:
    """The largest fall of `start` followed by `curve` from its running peak (index 0 is start)."""
    points = [start, *curve]
    peak_index = 0
    best = Drawdown(
        amount=ZERO, pct=ZERO, peak_index=0, trough_index=0, duration_periods=0, recovered=True
    )
    for i, equity in enumerate(points):
        if equity >= points[peak_index]:
            peak_index = i
            continue
        fall = points[peak_index] - equity
        if fall > best.amount:
            peak = points[peak_index]
            best = Drawdown(
                amount=fall,
                pct=(100 * fall / peak).quantize(RATIO_STEP) if peak > 0 else ZERO,
                peak_index=peak_index,
                trough_index=i,
                duration_periods=0,
                recovered=False,
            )
    if best.amount == 0:
        return best
    peak = points[best.peak_index]
    recovery = next((i for i in range(best.trough_index, len(points)) if points[i] >= peak), None)
    end = len(points) - 1 if recovery is None else recovery
    return Drawdown(
        amount=best.amount,
        pct=best.pct,
        peak_index=best.peak_index,
        trough_index=best.trough_index,
        duration_periods=end - best.peak_index,
        recovered=recovery is not None,
    )


def profit_factor(pnls: Sequence[Decimal]) -> Decimal | None:
    """Gross profit over gross loss of the trades' P&L; None when nothing was lost."""
    won = sum((p for p in pnls if p > 0), ZERO)
    lost = -sum((p for p in pnls if p < 0), ZERO)
    if lost == 0:
        return None
    return (won / lost).quantize(RATIO_STEP)


def expectancy_r(r_multiples: Sequence[Decimal]) -> Decimal | None:
    """The mean R multiple: what a trade earns on average, in units of its initial risk."""
    if not r_multiples:
        return None
    return _mean(r_multiples).quantize(RATIO_STEP)


def win_rate(pnls: Sequence[Decimal]) -> Decimal | None:
    """Share of trades with a positive P&L (0..1); None without trades."""
    if not pnls:
        return None
    return (Decimal(sum(1 for p in pnls if p > 0)) / len(pnls)).quantize(RATIO_STEP)


def exposure_pct(
    held: Sequence[tuple[datetime, datetime]], market_time: timedelta
) -> Decimal | None:
    """Share of `market_time` (the run's session time) with at least one position open, percent.

    Overlapping holdings count once (their union); None when there was no market time.
    """
    if market_time <= timedelta(0):
        return None
    covered = timedelta(0)
    end: datetime | None = None
    for start, stop in sorted(held):
        if end is None or start > end:
            covered += stop - start
            end = stop
        elif stop > end:
            covered += stop - end
            end = stop
    ratio = Decimal(covered.total_seconds()) / Decimal(market_time.total_seconds())
    return (100 * ratio).quantize(RATIO_STEP)


def average_holding(held: Sequence[tuple[datetime, datetime]]) -> timedelta | None:
    """Mean time from entry to exit; None without trades."""
    if not held:
        return None
    total = sum((stop - start for start, stop in held), timedelta(0))
    return total / len(held)


def statistics(
    *,
    start_equity: Decimal,
    daily_equity: Sequence[Decimal],
    trades: Sequence[ClosedTrade],
    market_time: timedelta,
) -> Statistics:
    """Every figure of a strategy's run: `daily_equity` holds its equity at each session's end."""
    end = daily_equity[-1] if daily_equity else start_equity
    daily = returns(start_equity, daily_equity)
    fall = drawdown(start_equity, daily_equity)
    pnls = [t.net_pnl for t in trades]
    held = [(t.entry_at, t.exit_at) for t in trades]
    return Statistics(
        start_equity=start_equity,
        end_equity=end,
        net_pnl=end - start_equity,
        gross_pnl=sum((t.gross_pnl for t in trades), ZERO),
        sessions=len(daily_equity),
        cagr_pct=cagr_pct(start_equity, end, len(daily_equity)),
        sharpe=sharpe(daily),
        sortino=sortino(daily),
        max_drawdown=fall.amount,
        max_drawdown_pct=fall.pct,
        max_drawdown_sessions=fall.duration_periods,
        trade_count=len(trades),
        profit_factor=profit_factor(pnls),
        expectancy_r=expectancy_r([t.r_multiple for t in trades]),
        win_rate=win_rate(pnls),
        exposure_pct=exposure_pct(held, market_time),
        avg_holding=average_holding(held),
    )


def buy_and_hold(
    *, start_equity: Decimal, first_open: Decimal, closes: Sequence[Decimal]
) -> Statistics:
    """Buying `start_equity` worth at the first session's open and holding to each close.

    Fractional shares, no costs: the benchmark's curve is `start * close / first_open`.
    """
    curve = [start_equity * close / first_open for close in closes]
    end = curve[-1] if curve else start_equity
    daily = returns(start_equity, curve)
    fall = drawdown(start_equity, curve)
    return Statistics(
        start_equity=start_equity,
        end_equity=end,
        net_pnl=end - start_equity,
        gross_pnl=end - start_equity,
        sessions=len(curve),
        cagr_pct=cagr_pct(start_equity, end, len(curve)),
        sharpe=sharpe(daily),
        sortino=sortino(daily),
        max_drawdown=fall.amount,
        max_drawdown_pct=fall.pct,
        max_drawdown_sessions=fall.duration_periods,
        trade_count=1 if curve else 0,
        profit_factor=None,
        expectancy_r=None,
        win_rate=None,
        exposure_pct=Decimal(100) if curve else None,
        avg_holding=None,
    )
