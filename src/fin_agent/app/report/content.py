"""`report.json`: a finished backtest as JSON-ready values, the one source of the HTML report.

Money to the cent and ratios as strings (exact decimals), counts as numbers, times in ISO 8601 UTC,
None (null) for a figure that cannot be computed. The HTML page shows these strings as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fin_agent.app.report.material import BacktestResult, TradeContext
from fin_agent.domain.performance import Statistics, buy_and_hold, statistics
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.values import Bar

CENTS = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
R_BUCKET = Decimal("0.5")
TIME_BUCKET_MINUTES = 30
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIGURES = (
    ("net_pnl", "Net P&L ($)"),
    ("gross_pnl", "Gross P&L ($)"),
    ("end_equity", "End equity ($)"),
    ("cagr_pct", "CAGR (%)"),
    ("sharpe", "Sharpe (daily, annualised)"),
    ("sortino", "Sortino (daily, annualised)"),
    ("max_drawdown", "Max drawdown ($)"),
    ("max_drawdown_pct", "Max drawdown (%)"),
    ("max_drawdown_sessions", "Max drawdown duration (sessions)"),
    ("trade_count", "Trades"),
    ("profit_factor", "Profit factor"),
    ("expectancy_r", "Expectancy (R)"),
    ("win_rate_pct", "Win rate (%)"),
    ("exposure_pct", "Exposure (% of market time)"),
    ("avg_holding_minutes", "Average holding time (minutes)"),
)
"""The figures of the report, in the order shown, with their labels."""


def _money(value: Decimal) -> str:
    return str(value.quantize(CENTS))


def price(value: Decimal) -> str:
    """A price to the cent, with sub-cent digits only when it has them (slippage, half cents)."""
    text = f"{value.quantize(PRICE_STEP):f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def figures(stats: Statistics) -> dict[str, Any]:
    """The figures of a strategy's or benchmark's run."""
    holding = stats.avg_holding
    return {
        "start_equity": _money(stats.start_equity),
        "end_equity": _money(stats.end_equity),
        "net_pnl": _money(stats.net_pnl),
        "gross_pnl": _money(stats.gross_pnl),
        "sessions": stats.sessions,
        "cagr_pct": _ratio(stats.cagr_pct),
        "sharpe": _ratio(stats.sharpe),
        "sortino": _ratio(stats.sortino),
        "max_drawdown": _money(stats.max_drawdown),
        "max_drawdown_pct": _ratio(stats.max_drawdown_pct),
        "max_drawdown_sessions": stats.max_drawdown_sessions,
        "trade_count": stats.trade_count,
        "profit_factor": _ratio(stats.profit_factor),
        "expectancy_r": _ratio(stats.expectancy_r),
        "win_rate_pct": None if stats.win_rate is None else str(stats.win_rate * 100),
        "exposure_pct": _ratio(stats.exposure_pct),
        "avg_holding_minutes": None
        if holding is None
        else str((Decimal(holding.total_seconds()) / 60).quantize(CENTS)),
    }


def report_content(result: BacktestResult) -> dict[str, Any]:
    """Everything `report.json` holds (and the HTML page shows)."""
    daily_equity = [r.performance.end_equity for r in result.reports]
    trades = [c.trade for c in result.trades]
    market_time = sum((s.close - s.open for s in result.sessions), timedelta(0))
    strategy = statistics(
        start_equity=result.start_equity,
        daily_equity=daily_equity,
        trades=trades,
        market_time=market_time,
    )
    bench = result.benchmark
    bench_stats = (
        buy_and_hold(
            start_equity=result.start_equity, first_open=bench.first_open, closes=bench.closes
        )
        if bench is not None and bench.first_open is not None
        else None
    )
    zone = ZoneInfo(result.timezone)
    return {
        "period": {
            "from": result.sessions[0].day.isoformat() if result.sessions else None,
            "to": result.sessions[-1].day.isoformat() if result.sessions else None,
            "sessions": len(result.sessions),
        },
        "timezone": result.timezone,
        "figure_labels": dict(FIGURES),
        "strategy": figures(strategy),
        "benchmark": None
        if bench is None
        else {
            "symbol": bench.symbol,
            "note": bench.note,
            "figures": None if bench_stats is None else figures(bench_stats),
        },
        "equity_curve": _curve(result, bench_stats),
        "daily_pnl": [
            {"day": r.day.isoformat(), "net_pnl": _money(r.performance.net_pnl)}
            for r in result.reports
        ],
        "r_distribution": _r_distribution(trades),
        "by_symbol": _groups(trades, lambda t: str(t.symbol)),
        "by_weekday": _groups(
            trades,
            lambda t: WEEKDAYS[t.entry_at.astimezone(zone).weekday()],
            order=WEEKDAYS.index,
        ),
        "by_entry_time": _groups(
            trades, lambda t: _bucket(t.entry_at - timedelta(minutes=1), zone)
        ),
        "trades": [_trade(c, result.timezone) for c in result.trades],
    }


def _curve(result: BacktestResult, bench: Statistics | None) -> list[dict[str, Any]]:
    """Each session's end equity, its drawdown from the running peak, and the benchmark's."""
    bench_curve: list[Decimal | None] = [None] * len(result.reports)
    if bench is not None and result.benchmark is not None and result.benchmark.first_open:
        first = result.benchmark.first_open
        bench_curve = [result.start_equity * c / first for c in result.benchmark.closes]
    rows = []
    peak = result.start_equity
    for report, bench_equity in zip(result.reports, bench_curve, strict=False):
        equity = report.performance.end_equity
        peak = max(peak, equity)
        rows.append(
            {
                "day": report.day.isoformat(),
                "equity": _money(equity),
                "drawdown": _money(equity - peak),
                "drawdown_pct": str((100 * (equity - peak) / peak).quantize(CENTS)),
                "benchmark_equity": None if bench_equity is None else _money(bench_equity),
            }
        )
    return rows


def _r_distribution(trades: Sequence[ClosedTrade]) -> list[dict[str, Any]]:
    """Trades counted in half-R buckets [from, to), every bucket from the lowest to the highest."""
    if not trades:
        return []
    index = [
        int((t.r_multiple / R_BUCKET).to_integral_value(rounding="ROUND_FLOOR")) for t in trades
    ]
    counts = {i: index.count(i) for i in set(index)}
    return [
        {"from": str(i * R_BUCKET), "to": str((i + 1) * R_BUCKET), "count": counts.get(i, 0)}
        for i in range(min(index), max(index) + 1)
    ]


def _bucket(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    minute = local.minute - local.minute % TIME_BUCKET_MINUTES
    return f"{local.hour:02d}:{minute:02d}"


def _groups(
    trades: Iterable[ClosedTrade],
    key: Callable[[ClosedTrade], str],
    order: Callable[[str], Any] = str,
) -> list[dict[str, Any]]:
    """Trades, net P&L, win rate and mean R by `key`, in `order` of the keys."""
    grouped: dict[str, list[ClosedTrade]] = defaultdict(list)
    for trade in trades:
        grouped[key(trade)].append(trade)
    rows = []
    for name, group in sorted(grouped.items(), key=lambda item: order(item[0])):
        wins = sum(1 for t in group if t.net_pnl > 0)
        rows.append(
            {
                "key": name,
                "trades": len(group),
                "net_pnl": _money(sum((t.net_pnl for t in group), Decimal(0))),
                "win_rate_pct": str((Decimal(100 * wins) / len(group)).quantize(CENTS)),
                "avg_r": str(
                    (sum((t.r_multiple for t in group), Decimal(0)) / len(group)).quantize(CENTS)
                ),
            }
        )
    return rows


def _trade(context: TradeContext, zone: str) -> dict[str, Any]:
    t, plan = context.trade, context.plan
    return {
        "day": context.day.isoformat(),
        "plan_id": t.plan_id,
        "symbol": str(t.symbol),
        "side": str(t.side),
        "qty": t.qty,
        "entry": price(t.entry_price),
        "exit": price(t.exit_price),
        "entry_at": t.entry_at.isoformat(),
        "exit_at": t.exit_at.isoformat(),
        "exit_reason": str(t.exit_reason),
        "gross_pnl": _money(t.gross_pnl),
        "net_pnl": _money(t.net_pnl),
        "r_multiple": str(t.r_multiple),
        "holding_minutes": str(
            (Decimal((t.exit_at - t.entry_at).total_seconds()) / 60).quantize(CENTS)
        ),
        "chart": {
            "symbol": str(t.symbol),
            "day": context.day.isoformat(),
            "candles": [_candle(b) for b in context.bars],
            "opening_range": None
            if plan is None
            else {
                "start": context.session.open.isoformat(),
                "end": plan.window.opens_at.isoformat(),
                "high": str(plan.or_high),
                "low": str(plan.or_low),
            },
            "levels": None
            if plan is None
            else {"entry": str(plan.entry), "stop": str(plan.stop), "target": str(plan.target)},
            "entry": {"at": t.entry_at.isoformat(), "price": price(t.entry_price)},
            "exit": {
                "at": t.exit_at.isoformat(),
                "price": price(t.exit_price),
                "reason": str(t.exit_reason),
            },
        },
    }


def _candle(bar: Bar) -> dict[str, Any]:
    return {
        "start": bar.start.isoformat(),
        "open": str(bar.open),
        "high": str(bar.high),
        "low": str(bar.low),
        "close": str(bar.close),
        "volume": bar.volume,
    }
