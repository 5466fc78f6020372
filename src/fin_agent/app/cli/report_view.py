"""Renders daily reports for people (a text table) and for programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.report import DailyReport, Performance

CENTS = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENTS))


def _price(value: Decimal) -> str:
    """A price to the cent, with sub-cent digits only when it has them (slippage)."""
    text = f"{value.quantize(PRICE_STEP):f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def trade_dict(trade: ClosedTrade, day: date) -> dict[str, Any]:
    """One round trip of trading day `day` as JSON-ready fields."""
    return {
        "day": day.isoformat(),
        "plan_id": trade.plan_id,
        "symbol": trade.symbol,
        "side": str(trade.side),
        "qty": trade.qty,
        "entry": _price(trade.entry_price),
        "exit": _price(trade.exit_price),
        "entry_at": trade.entry_at.isoformat(),
        "exit_at": trade.exit_at.isoformat(),
        "exit_reason": str(trade.exit_reason),
        "gross_pnl": _money(trade.gross_pnl),
        "commission": _money(trade.commission),
        "net_pnl": _money(trade.net_pnl),
        "r_multiple": str(trade.r_multiple),
    }


def _figures(perf: Performance) -> dict[str, Any]:
    return {
        "start_equity": _money(perf.start_equity),
        "end_equity": _money(perf.end_equity),
        "net_pnl": _money(perf.net_pnl),
        "gross_pnl": _money(perf.gross_pnl),
        "commissions": _money(perf.commissions),
        "trade_count": len(perf.trades),
        "wins": perf.wins,
        "losses": perf.losses,
        "win_rate": str(perf.win_rate),
        "avg_r": str(perf.avg_r),
        "max_drawdown": _money(perf.max_drawdown),
        "max_drawdown_pct": str(perf.max_drawdown_pct),
    }


def report_dict(reports: Sequence[DailyReport], summary: Performance) -> dict[str, Any]:
    """The whole run: summary figures, every trade, and one entry per day."""
    return {
        **_figures(summary),
        "trades": [trade_dict(t, r.day) for r in reports for t in r.performance.trades],
        "days": [
            {
                "day": r.day.isoformat(),
                "candidates": r.candidates,
                "plans": r.plans,
                "plans_rejected": r.plans_rejected,
                **_figures(r.performance),
            }
            for r in reports
        ],
    }


def report_json(reports: Sequence[DailyReport], summary: Performance) -> str:
    """`report_dict` as indented JSON."""
    return json.dumps(report_dict(reports, summary), indent=2)


def report_text(reports: Sequence[DailyReport], summary: Performance) -> str:
    """A readable report: one line per day, one per trade, and the totals."""
    lines = ["day         cand plans trades   net P&L   win rate  max DD"]
    for r in reports:
        p = r.performance
        lines.append(
            f"{r.day}  {r.candidates:>4} {r.plans:>5} {len(p.trades):>6} {_money(p.net_pnl):>9}"
            f"  {p.win_rate:>8.2%}  {_money(p.max_drawdown):>6}"
        )
    lines.append("")
    lines.append("symbol side   qty      entry       exit  reason   R        net P&L")
    for t in summary.trades:
        lines.append(
            f"{t.symbol:<6} {t.side:<5} {t.qty:>5} {_price(t.entry_price):>10} "
            f"{_price(t.exit_price):>10}  {t.exit_reason:<7} {t.r_multiple:>6.2f} "
            f"{_money(t.net_pnl):>12}"
        )
    lines.append("")
    lines.append(
        f"trades {len(summary.trades)}  net P&L {_money(summary.net_pnl)}  "
        f"win rate {summary.win_rate:.2%}  avg R {summary.avg_r:.2f}  "
        f"max drawdown {_money(summary.max_drawdown)} ({summary.max_drawdown_pct}%)  "
        f"equity {_money(summary.start_equity)} -> {_money(summary.end_equity)}"
    )
    return "\n".join(lines)
