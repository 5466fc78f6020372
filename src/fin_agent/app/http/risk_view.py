"""The risk figures the banner and the system view show: the trading state with its reason, and
the one-day historical VaR (95 % and 99 %) of the open book and of the strategy.

The book's VaR takes the day's open positions at their last minute close and the daily returns of
the day's scan record (its exposed symbols only); the strategy's takes the net P&L of every
stored daily report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from fin_agent.app.day.scan_record import snapshot_of
from fin_agent.domain.book import BookReturns
from fin_agent.domain.events import ReportDaily, SnapshotTaken
from fin_agent.domain.values import Symbol, symbol
from fin_agent.domain.var import ValueAtRisk, var_of
from fin_agent.ports.store import Row, Store


def trading_risk(risk_rows: Sequence[Row]) -> dict[str, Any]:
    """The latest trading state of a day with its reason and detail ('active' when none)."""
    if not risk_rows:
        return {"state": "active", "reason": None, "detail": None, "at": None}
    last = risk_rows[-1]
    return {
        "state": last["current"],
        "reason": last["reason"],
        "detail": last["detail"],
        "at": last["occurred_at"],
    }


async def value_at_risk(
    store: Store, day: date, positions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The book's and the strategy's one-day VaR, in money, with the days each stands on."""
    exposed: dict[Symbol, Decimal] = {}
    for p in positions:
        price = Decimal(str(p["mark"] if p.get("mark") is not None else p["price"]))
        sign = 1 if p["side"] == "long" else -1
        name = symbol(str(p["symbol"]))
        exposed[name] = exposed.get(name, Decimal(0)) + price * int(str(p["qty"])) * sign
    returns = BookReturns()
    # Read the scan's inputs only when something is held, and only the symbols held.
    snapshots = await store.events(day=day, types=[SnapshotTaken.TYPE]) if exposed else []
    for event in snapshots[-1:]:
        if isinstance(event, SnapshotTaken):
            returns.take(await snapshot_of(store.scan_records(), event, symbols=list(exposed)))
    return {
        "book": _figures(returns.var(exposed)),
        "strategy": _figures(var_of(await _daily_pnls(store))),
    }


async def _daily_pnls(store: Store) -> list[Decimal]:
    """The net P&L of each reported day (its latest report)."""
    latest: dict[date, Decimal] = {}
    for event in await store.events(types=[ReportDaily.TYPE]):
        if isinstance(event, ReportDaily):
            latest[event.trading_day] = event.report.performance.net_pnl
    return [latest[d] for d in sorted(latest)]


def _figures(var: ValueAtRisk) -> dict[str, Any]:
    return {"var95": var.var95, "var99": var.var99, "days": var.days}
