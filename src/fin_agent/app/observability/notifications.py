"""Notifications from domain events: fills, exits, errors and the daily report, told to people.

`notification_for` renders an event as a `Notification`; `NotificationRouter` subscribes the
`notifier` consumer group and hands every notification to each notifier. Nothing here can fail the
bus or trading: a rendering bug, or a notifier that raises or stalls, is logged and counted, and the
handler returns normally.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

import structlog

from fin_agent.domain.events import (
    DomainEvent,
    ErrorRaised,
    NewsAttached,
    OperatorCommandApplied,
    OperatorCommandRefused,
    PlanExecuted,
    PositionClosed,
    ReportDaily,
    Severity,
)
from fin_agent.domain.orders import ExitReason
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.notifier import (
    Notification,
    NotificationKind,
    NotificationSeverity,
    Notifier,
)

log = structlog.get_logger(__name__)

NOTIFIER_GROUP = "notifier"
"""The consumer group the router reads the bus as."""

_PRICE_STEP = Decimal("0.0001")
_CENT = Decimal("0.01")
_SEVERITY_ORDER = (Severity.WARNING, Severity.ERROR, Severity.CRITICAL)
_ERROR_SEVERITY = {
    Severity.WARNING: NotificationSeverity.WARNING,
    Severity.ERROR: NotificationSeverity.ERROR,
    Severity.CRITICAL: NotificationSeverity.CRITICAL,
}


def _price(value: Decimal) -> str:
    """A price with at least cents and at most four places: 12.5 -> 12.50, 0.1234 -> 0.1234."""
    rounded = value.quantize(_PRICE_STEP).normalize()
    exponent = rounded.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        rounded = rounded.quantize(_CENT)
    return f"{rounded:,f}"


def _money(value: Decimal) -> str:
    """Signed dollars and cents: +$1,234.50, -$12.00."""
    sign = "-" if value < 0 else "+"
    return f"{sign}${abs(value):,.2f}"


def _r(value: Decimal) -> str:
    return f"{value:+.2f}R"


def _plan_executed(event: PlanExecuted) -> Notification:
    fill = event.fill
    side = fill.side.value.upper()
    return Notification(
        kind=NotificationKind.PLAN_EXECUTED,
        title=f"Entered {side} {fill.qty} {fill.symbol} @ {_price(fill.price)}",
        text=f"Plan {event.plan_id} filled its entry.",
        fields=(
            ("Symbol", fill.symbol),
            ("Side", side),
            ("Qty", str(fill.qty)),
            ("Price", _price(fill.price)),
            ("Commission", _money(-fill.commission)),
        ),
        event_id=event.id,
        occurred_at=event.occurred_at,
    )


def _position_closed(event: PositionClosed) -> Notification:
    trade = event.trade
    side = trade.side.value.upper()
    halted = trade.exit_reason is ExitReason.HALTED
    return Notification(
        kind=NotificationKind.POSITION_CLOSED,
        title=(
            f"Closed {side} {trade.symbol} ({trade.exit_reason}): "
            f"{_money(trade.net_pnl)} ({_r(trade.r_multiple)})"
        ),
        text=f"Plan {trade.plan_id}: {trade.qty} shares, exit reason {trade.exit_reason}.",
        fields=(
            ("Symbol", trade.symbol),
            ("Side", side),
            ("Qty", str(trade.qty)),
            ("Entry", _price(trade.entry_price)),
            ("Exit", _price(trade.exit_price)),
            ("Exit reason", str(trade.exit_reason)),
            ("Net P&L", _money(trade.net_pnl)),
            ("R", _r(trade.r_multiple)),
        ),
        severity=NotificationSeverity.WARNING if halted else NotificationSeverity.INFO,
        event_id=event.id,
        occurred_at=event.occurred_at,
    )


def _error_raised(event: ErrorRaised) -> Notification:
    return Notification(
        kind=NotificationKind.ERROR_RAISED,
        title=f"{event.severity.value.upper()} in {event.source}: {event.code}",
        text=event.message,
        fields=(
            ("Severity", str(event.severity)),
            ("Source", event.source),
            ("Code", event.code),
        ),
        severity=_ERROR_SEVERITY[event.severity],
        event_id=event.id,
        occurred_at=event.occurred_at,
    )


def _report_daily(event: ReportDaily) -> Notification:
    report, perf = event.report, event.report.performance
    trades = len(perf.trades)
    return Notification(
        kind=NotificationKind.REPORT_DAILY,
        title=f"Daily report {report.day}: {_money(perf.net_pnl)} over {trades} trades",
        text=(
            f"Strategy {report.strategy}: {report.candidates} candidates, {report.plans} plans, "
            f"{report.plans_rejected} rejected."
        ),
        fields=(
            ("Trades", str(trades)),
            ("Wins / losses", f"{perf.wins} / {perf.losses}"),
            ("Win rate", f"{perf.win_rate * 100:.1f}%"),
            ("Net P&L", _money(perf.net_pnl)),
            ("Avg R", _r(perf.avg_r)),
            ("Max drawdown", f"{_money(-perf.max_drawdown)} ({perf.max_drawdown_pct:.2f}%)"),
            ("End equity", f"${perf.end_equity:,.2f}"),
        ),
        event_id=event.id,
        occurred_at=event.occurred_at,
    )


def _operator(event: OperatorCommandApplied | OperatorCommandRefused) -> Notification:
    applied = isinstance(event, OperatorCommandApplied)
    outcome = event.detail if isinstance(event, OperatorCommandApplied) else event.reason
    return Notification(
        kind=NotificationKind.OPERATOR_COMMAND,
        title=f"Operator {event.kind} {'applied' if applied else 'refused'}",
        text=outcome,
        fields=(
            ("Command", str(event.kind)),
            ("Outcome", "applied" if applied else "refused"),
            ("Command id", event.command_id),
            ("Trading day", event.trading_day.isoformat()),
        ),
        severity=NotificationSeverity.WARNING,
        event_id=event.id,
        occurred_at=event.occurred_at,
    )


def _news_attached(event: NewsAttached) -> Notification | None:
    """News on an open position, or news that cancelled a plan; other news is not told."""
    if not (event.position_open or event.cancelled):
        return None
    what = "cancelled the plan of" if event.cancelled else "on open position"
    return Notification(
        kind=NotificationKind.NEWS_ATTACHED,
        title=f"News {what} {event.symbol}: {event.title}",
        text=event.url or event.title,
        fields=(
            ("Symbol", event.symbol),
            ("Source", event.source or "unknown"),
            ("Published", f"{event.published_at:%Y-%m-%d %H:%M} UTC"),
            ("Keywords", ", ".join(event.keywords) or "none"),
        ),
        severity=NotificationSeverity.WARNING,
        event_id=event.id,
        occurred_at=event.occurred_at,
    )


_KINDS: dict[str, NotificationKind] = {
    PlanExecuted.TYPE: NotificationKind.PLAN_EXECUTED,
    PositionClosed.TYPE: NotificationKind.POSITION_CLOSED,
    ErrorRaised.TYPE: NotificationKind.ERROR_RAISED,
    ReportDaily.TYPE: NotificationKind.REPORT_DAILY,
    OperatorCommandApplied.TYPE: NotificationKind.OPERATOR_COMMAND,
    OperatorCommandRefused.TYPE: NotificationKind.OPERATOR_COMMAND,
    NewsAttached.TYPE: NotificationKind.NEWS_ATTACHED,
}


def notification_for(event: DomainEvent) -> Notification | None:
    """The notification telling people about `event`, or None for an event they are not told."""
    match event:
        case PlanExecuted():
            return _plan_executed(event)
        case PositionClosed():
            return _position_closed(event)
        case ErrorRaised():
            return _error_raised(event)
        case ReportDaily():
            return _report_daily(event)
        case OperatorCommandApplied() | OperatorCommandRefused():
            return _operator(event)
        case NewsAttached():
            return _news_attached(event)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterStats:
    """What the router did so far; every failure is counted here and logged."""

    handled: int = 0
    notified: int = 0
    skipped: int = 0
    duplicates: int = 0
    render_failures: int = 0
    notifier_failures: int = 0


class NotificationRouter:
    """Turns the bus's events into notifications and hands each to every notifier.

    Each notifier is called on its own, within `notify_timeout_secs`, so one that raises or stalls
    never affects the others or the bus. An event id already notified (a redelivery) is skipped.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        *,
        kinds: Collection[NotificationKind] = tuple(NotificationKind),
        min_error_severity: Severity = Severity.WARNING,
        notify_timeout_secs: float = 1.0,
        remembered_ids: int = 10_000,
    ) -> None:
        self._notifiers = tuple(notifiers)
        self._kinds = frozenset(kinds)
        self._min_error_rank = _SEVERITY_ORDER.index(min_error_severity)
        self._notify_timeout_secs = notify_timeout_secs
        self._remembered_ids = remembered_ids
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._counts = {f.name: 0 for f in fields(RouterStats)}

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event types the router subscribes to: those of the enabled kinds."""
        return tuple(t for t, kind in _KINDS.items() if kind in self._kinds)

    @property
    def stats(self) -> RouterStats:
        """The counts so far (a snapshot)."""
        return RouterStats(**self._counts)

    def attach(self, bus: EventBus) -> None:
        """Subscribe the `notifier` consumer group to the enabled event types."""
        if self._notifiers and self.event_types:
            bus.subscribe(NOTIFIER_GROUP, self.event_types, self.handle)

    async def handle(self, event: DomainEvent) -> None:
        """Notify every notifier about `event`; never raises (except on cancellation)."""
        self._counts["handled"] += 1
        message = self._render(event)
        if message is None:
            self._counts["skipped"] += 1
            return
        if message.event_id in self._seen:
            self._counts["duplicates"] += 1
            log.debug("notification_duplicate", event_type=event.TYPE, event_id=event.id)
            return
        self._remember(message.event_id)
        for notifier in self._notifiers:
            await self._notify(notifier, message)

    def _render(self, event: DomainEvent) -> Notification | None:
        if _KINDS.get(event.TYPE) not in self._kinds:
            return None
        if isinstance(event, ErrorRaised) and (
            _SEVERITY_ORDER.index(event.severity) < self._min_error_rank
        ):
            return None
        try:
            return notification_for(event)
        except Exception as exc:  # a rendering bug must not fail the bus's handler
            self._counts["render_failures"] += 1
            log.error(
                "notification_render_failed",
                event_type=event.TYPE,
                event_id=event.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return None

    async def _notify(self, notifier: Notifier, message: Notification) -> None:
        try:
            async with asyncio.timeout(self._notify_timeout_secs):
                await notifier.notify(message)
        except Exception as exc:  # one broken notifier must not affect the others or the bus
            self._counts["notifier_failures"] += 1
            # Only the exception's type: its message could carry a notifier's secret URL.
            log.error(
                "notifier_failed",
                notifier=type(notifier).__name__,
                kind=str(message.kind),
                event_id=message.event_id,
                error=type(exc).__name__,
            )
        else:
            self._counts["notified"] += 1

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > self._remembered_ids:
            self._seen.popitem(last=False)
