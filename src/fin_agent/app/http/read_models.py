"""Read models for the dashboard and operators, built from the store's tables.

They read through the `Store` port only, so they work the same on DuckDB and TimescaleDB; the
agent serves them over HTTP, so nobody else opens its DuckDB file while it writes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fin_agent.app.http.risk_view import trading_risk, value_at_risk
from fin_agent.domain.events import (
    EVENT_TYPES,
    BarsClosed,
    DayStarted,
    DomainEvent,
    ErrorRaised,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    ScanCompleted,
    SignalGenerated,
)
from fin_agent.ports.store import CandleWidth, Row, Store

JSONValue = Any
ZERO = Decimal(0)


def jsonable(value: object) -> JSONValue:
    """Decimal as string, datetimes and dates as ISO 8601, containers recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _latest_by(rows: Sequence[Row], key: str) -> dict[str, Row]:
    latest: dict[str, Row] = {}
    for row in rows:  # rows come oldest first
        latest[str(row[key])] = row
    return latest


class ReadModels:
    """Answers what the trader's screens ask, per day and across days."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        """The store the models read (for read models kept in their own modules)."""
        return self._store

    async def days(self) -> list[dict[str, JSONValue]]:
        """Every stored trading day with its report figures when it has one."""
        reports = _latest_by(await self._store.rows("daily_reports"), "trading_day")
        out = []
        for day in await self._store.days():
            report = reports.get(str(day))
            out.append({"day": day, "report": dict(report) if report else None})
        return jsonable(out)  # type: ignore[no-any-return]

    async def day(self, day: date) -> dict[str, JSONValue]:
        """Everything about one trading day: scan, plans, orders, fills, positions, P&L, errors.

        Scan rows, plans, orders and trades carry the `config_version` that produced them ('' when
        unknown), as their events did.
        """
        store = self._store
        plans = await store.rows("plans", day=day)
        states = _latest_by(await store.rows("plan_states", day=day), "plan_id")
        trades = await store.rows("trades", day=day)
        fills = await store.rows("fills", day=day)
        bars = await store.rows("bars_1m", day=day)
        risk = await store.rows("risk_states", day=day)
        reports = await store.rows("daily_reports", day=day)
        last_close = {str(b["symbol"]): b["close"] for b in bars}
        closed = {str(t["plan_id"]) for t in trades}
        positions = []
        unrealised_total = ZERO
        for fill in fills:
            plan_key = str(fill["client_order_id"])
            if fill["kind"] != "entry" or plan_key in closed:
                continue
            price, qty = _dec(fill["price"]), int(str(fill["qty"]))
            mark = last_close.get(str(fill["symbol"]))
            sign = 1 if fill["side"] == "long" else -1
            unrealised = (_dec(mark) - price) * qty * sign if mark is not None else None
            positions.append({**fill, "mark": mark, "unrealised_pnl": unrealised})
            unrealised_total += unrealised or ZERO
        realised = sum((_dec(t["net_pnl"]) for t in trades), ZERO)
        return jsonable(  # type: ignore[no-any-return]
            {
                "day": day,
                "trading_state": risk[-1]["current"] if risk else "active",
                "candidates": await store.rows("scan_candidates", day=day),
                "rejections": await store.rows("scan_rejections", day=day),
                "plans": [{**p, "state": _state(states, p)} for p in plans],
                "plan_states": list(states.values()),
                "orders": await store.rows("orders", day=day),
                "fills": fills,
                "positions": positions,
                "trades": trades,
                "pnl": {
                    "realised": realised,
                    "unrealised": unrealised_total,
                    "total": realised + unrealised_total,
                },
                "equity_curve": _intraday_curve(await self._start_equity(day), trades),
                "errors": await store.rows("errors", day=day),
                "report": reports[-1] if reports else None,
                "risk": trading_risk(risk),
                "var": await value_at_risk(store, day, positions),
            }
        )

    async def _start_equity(self, day: date) -> Decimal | None:
        started = await self._store.events(day=day, types={DayStarted.TYPE}, limit=1)
        first = started[0] if started else None
        return first.start_equity if isinstance(first, DayStarted) else None

    async def status(self, today: date | None = None) -> dict[str, JSONValue]:
        """The banner: the latest day's state, counts, P&L and the most recent errors."""
        days = await self._store.days()
        day = today if today is not None else (days[-1] if days else None)
        if day is None:
            return {"day": None, "trading_state": "idle", "errors": []}
        detail = await self.day(day)
        return {
            "day": detail["day"],
            "trading_state": detail["trading_state"],
            "candidates": len(detail["candidates"]),
            "plans": len(detail["plans"]),
            "open_positions": len(detail["positions"]),
            "trades": len(detail["trades"]),
            "pnl": detail["pnl"],
            "errors": detail["errors"][-5:],
            "last_command": await self._last_command(day),
            "risk": detail["risk"],
            "var": detail["var"],
        }

    async def _last_command(self, day: date) -> dict[str, JSONValue] | None:
        """The day's latest operator command outcome, for the banner."""
        types = {OperatorCommandApplied.TYPE, OperatorCommandRefused.TYPE}
        found = await self._store.events(day=day, types=types)
        if not found:
            return None
        last = found[-1]
        return jsonable(  # type: ignore[no-any-return]
            {
                "type": last.TYPE,
                "occurred_at": last.occurred_at,
                "summary": event_summary(last),
            }
        )

    async def equity_curve(self) -> list[dict[str, JSONValue]]:
        """End-of-day equity across every reported day."""
        reports = _latest_by(await self._store.rows("daily_reports"), "trading_day")
        return jsonable(  # type: ignore[no-any-return]
            [
                {"day": r["trading_day"], "equity": r["end_equity"], "net_pnl": r["net_pnl"]}
                for r in reports.values()
            ]
        )

    async def candles(
        self, day: date, width: CandleWidth = CandleWidth.M5, symbol: str | None = None
    ) -> dict[str, JSONValue]:
        """A day's price chart: its minute bars bucketed by `width` per symbol (one symbol when
        given), oldest first. TimescaleDB answers from its continuous aggregates or
        `time_bucket`, the other stores with their own bucketing: the same candles everywhere."""
        found = await self._store.candles(width, day=day, symbol=symbol)
        return jsonable(  # type: ignore[no-any-return]
            {
                "day": day,
                "width": str(width),
                "symbol": symbol,
                "symbols": sorted({str(r["symbol"]) for r in found}),
                "candles": [dict(r) for r in found],
            }
        )

    async def errors(self, limit: int = 50) -> list[dict[str, JSONValue]]:
        """The most recent errors across days, newest last."""
        rows = await self._store.rows("errors")
        return jsonable([dict(r) for r in rows[-limit:]])  # type: ignore[no-any-return]

    async def events(
        self,
        day: date | None = None,
        *,
        types: Collection[str] | None = None,
        exclude: Collection[str] = (BarsClosed.TYPE,),
        limit: int = 200,
    ) -> dict[str, JSONValue]:
        """The event log of one trading day (default: the latest), newest last, one line each.

        `types` keeps only those types; `exclude` drops types (by default the minute bars, which
        would bury everything else). Each event comes with a one-line summary for people.
        """
        if day is None:
            days = await self._store.days()
            if not days:
                return {"day": None, "total": 0, "events": []}
            day = days[-1]
        wanted = {t.TYPE for t in EVENT_TYPES} if types is None else set(types)
        found = await self._store.events(day=day, types=wanted - set(exclude))
        shown = found[-limit:] if limit > 0 else []
        return jsonable(  # type: ignore[no-any-return]
            {
                "day": day,
                "total": len(found),
                "events": [
                    {
                        "id": e.id,
                        "type": e.TYPE,
                        "version": e.VERSION,
                        "occurred_at": e.occurred_at,
                        "trading_day": e.trading_day,
                        "symbol": _event_symbol(e),
                        "summary": event_summary(e),
                    }
                    for e in shown
                ],
            }
        )


def _state(states: Mapping[str, Row], plan: Row) -> object:
    latest = states.get(str(plan["plan_id"]))
    return latest["state"] if latest is not None else "planned"


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _intraday_curve(start: Decimal | None, trades: Sequence[Row]) -> list[dict[str, object]]:
    """Equity after each closed trade of the day, from the day's start equity."""
    if start is None:
        return []
    equity = start
    curve: list[dict[str, object]] = [{"at": None, "equity": equity, "symbol": None}]
    for trade in sorted(trades, key=lambda t: str(t["exit_at"])):
        equity += _dec(trade["net_pnl"])
        curve.append({"at": trade["exit_at"], "equity": equity, "symbol": trade["symbol"]})
    return curve


def _event_symbol(event: DomainEvent) -> str | None:
    if isinstance(event, SignalGenerated):
        return str(event.candidate.symbol)
    if isinstance(event, PlanCreated):
        return str(event.plan.symbol)
    if isinstance(event, OrderPlaced):
        return str(event.order.symbol)
    if isinstance(event, PlanExecuted | PositionClosed):
        return str(event.fill.symbol)
    if isinstance(event, PlanRejected | PlanExpired):
        return str(event.symbol)
    if isinstance(event, OperatorCommand) and event.symbol:
        return event.symbol
    return None


def event_summary(event: DomainEvent) -> str:
    """One line saying what an event means to a trader."""
    if isinstance(event, DayStarted):
        return f"day started with equity {event.start_equity:,.2f} ({event.strategy})"
    if isinstance(event, ScanCompleted):
        result = event.result
        return f"scan: {len(result.candidates)} candidates, {len(result.rejections)} rejected" + (
            f" ({', '.join(c.symbol for c in result.candidates)})" if result.candidates else ""
        )
    if isinstance(event, SignalGenerated):
        c = event.candidate
        return f"#{c.rank} {c.symbol} {c.side} gap {c.gap_pct:+.2f}% at {c.pm_last}"
    if isinstance(event, PlanCreated):
        p = event.plan
        return f"plan {p.symbol} {p.side} {p.qty} @ {p.entry} stop {p.stop} target {p.target}"
    if isinstance(event, PlanRejected):
        return f"{event.symbol} refused: {event.reason} ({event.detail})"
    if isinstance(event, OrderPlaced):
        o = event.order
        return (
            f"order {o.symbol} {o.side} {o.qty} trigger {o.trigger} stop {o.stop} target {o.target}"
        )
    if isinstance(event, PlanExecuted):
        f = event.fill
        return f"filled {f.symbol} {f.side} {f.qty} @ {f.price}"
    if isinstance(event, PlanExpired):
        return f"{event.symbol} expired untriggered"
    if isinstance(event, PositionClosed):
        t = event.trade
        return (
            f"closed {t.symbol} {t.qty} @ {t.exit_price} ({t.exit_reason}): "
            f"net {t.net_pnl:+,.2f}, {t.r_multiple:+.2f} R"
        )
    if isinstance(event, RiskStateChanged):
        return f"trading {event.previous} -> {event.current}: {event.reason} ({event.detail})"
    if isinstance(event, ErrorRaised):
        return f"{event.severity} {event.source}/{event.code}: {event.message}"
    if isinstance(event, ReportDaily):
        perf = event.report.performance
        return (
            f"report: {len(perf.trades)} trades, net {perf.net_pnl:+,.2f}, "
            f"equity {perf.end_equity:,.2f}"
        )
    if isinstance(event, OperatorCommand | OperatorCommandApplied | OperatorCommandRefused):
        return operator_summary(event)
    return event.TYPE


def operator_summary(
    event: OperatorCommand | OperatorCommandApplied | OperatorCommandRefused,
) -> str:
    """One line for an operator command or its outcome."""
    if isinstance(event, OperatorCommandApplied):
        return f"operator {event.kind} applied: {event.detail} [{event.command_id}]"
    if isinstance(event, OperatorCommandRefused):
        return f"operator {event.kind} refused: {event.reason} [{event.command_id}]"
    target = event.symbol or event.plan_id
    who = event.issued_by or event.source or "operator"
    return (
        f"operator {event.kind}{' ' + target if target else ''} by {who}"
        + (f": {event.reason}" if event.reason else "")
        + f" [{event.command_id}]"
    )
