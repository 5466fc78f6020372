"""Notifications from domain events, and a router that no notifier can break."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import structlog

from fin_agent.adapters.memory import InMemoryEventBus
from fin_agent.app.observability.notifications import (
    NOTIFIER_GROUP,
    NotificationRouter,
    notification_for,
)
from fin_agent.domain.events import (
    DomainEvent,
    ErrorRaised,
    PlanExecuted,
    PositionClosed,
    ReportDaily,
    Severity,
)
from fin_agent.domain.orders import ExitReason, Fill, FillKind
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.report import DailyReport, performance
from fin_agent.domain.values import Side, symbol
from fin_agent.ports.event_bus import Handler
from fin_agent.ports.notifier import Notification, NotificationKind, NotificationSeverity

DAY = date(2025, 3, 3)
ENTRY_AT = datetime(2025, 3, 3, 14, 40, tzinfo=UTC)
EXIT_AT = datetime(2025, 3, 3, 15, 55, tzinfo=UTC)
SECRET = "SECRET-TOKEN-123"


class RecordingNotifier:
    """Keeps what it is told."""

    def __init__(self) -> None:
        self.messages: list[Notification] = []

    async def notify(self, message: Notification) -> None:
        self.messages.append(message)


class RaisingNotifier:
    """Breaks the `Notifier` promise: raises, with a secret in the message."""

    async def notify(self, message: Notification) -> None:
        raise RuntimeError(f"could not post to https://discord.com/api/webhooks/1/{SECRET}")


class StallingNotifier:
    """Breaks the `Notifier` promise: never returns."""

    async def notify(self, message: Notification) -> None:
        await asyncio.Event().wait()


class RecordingBus(InMemoryEventBus):
    """The in-memory bus, remembering who subscribed to what."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: list[tuple[str, frozenset[str]]] = []

    def subscribe(self, group: str, event_types: Collection[str], handler: Handler) -> None:
        self.subscriptions.append((group, frozenset(event_types)))
        super().subscribe(group, event_types, handler)


def entry_fill() -> Fill:
    return Fill(
        client_order_id="plan-acme",
        symbol=symbol("ACME"),
        side=Side.LONG,
        kind=FillKind.ENTRY,
        qty=150,
        price=Decimal("12.345"),
        commission=Decimal("0.75"),
        at=ENTRY_AT,
    )


def closed_trade(net: str = "-61.25", r: str = "-1.02", plan: str = "plan-acme") -> ClosedTrade:
    return ClosedTrade(
        plan_id=plan,
        symbol=symbol("ACME"),
        side=Side.LONG,
        qty=150,
        entry_price=Decimal("12.345"),
        exit_price=Decimal("11.94"),
        entry_at=ENTRY_AT,
        exit_at=EXIT_AT,
        exit_reason=ExitReason.STOP,
        gross_pnl=Decimal("-60.75"),
        commission=Decimal("1.50"),
        net_pnl=Decimal(net),
        r_multiple=Decimal(r),
    )


def plan_executed() -> PlanExecuted:
    return PlanExecuted(
        id=PlanExecuted.id_for("plan-acme"),
        occurred_at=ENTRY_AT,
        trading_day=DAY,
        plan_id="plan-acme",
        fill=entry_fill(),
    )


def position_closed() -> PositionClosed:
    exit_fill = Fill(
        client_order_id="plan-acme",
        symbol=symbol("ACME"),
        side=Side.LONG,
        kind=FillKind.STOP,
        qty=150,
        price=Decimal("11.94"),
        commission=Decimal("0.75"),
        at=EXIT_AT,
    )
    return PositionClosed(
        id=PositionClosed.id_for("plan-acme"),
        occurred_at=EXIT_AT,
        trading_day=DAY,
        trade=closed_trade(),
        fill=exit_fill,
    )


def error_raised(severity: Severity = Severity.CRITICAL, key: str = "e1") -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(key),
        occurred_at=EXIT_AT,
        trading_day=DAY,
        source="feed",
        code="feed.stalled",
        message="No bars for 120 s: check the market data connection.",
        severity=severity,
    )


def report_daily() -> ReportDaily:
    trades = [
        closed_trade("250.00", "2.00", "plan-a"),
        closed_trade("-61.25", "-1.02", "plan-b"),
        closed_trade("-40.00", "-0.50", "plan-c"),
    ]
    report = DailyReport(
        day=DAY,
        strategy="gap-and-go",
        candidates=12,
        plans=3,
        plans_rejected=9,
        performance=performance(Decimal(100_000), trades),
    )
    return ReportDaily(
        id=ReportDaily.id_for(str(DAY)), occurred_at=EXIT_AT, trading_day=DAY, report=report
    )


def test_plan_executed_tells_symbol_side_qty_and_price() -> None:
    note = notification_for(plan_executed())

    assert note is not None
    assert note.kind is NotificationKind.PLAN_EXECUTED
    assert note.title == "Entered LONG 150 ACME @ 12.345"
    assert dict(note.fields) == {
        "Symbol": "ACME",
        "Side": "LONG",
        "Qty": "150",
        "Price": "12.345",
        "Commission": "-$0.75",
    }
    assert note.severity is NotificationSeverity.INFO
    assert (note.event_id, note.occurred_at) == (plan_executed().id, ENTRY_AT)


def test_position_closed_tells_exit_reason_pnl_and_r() -> None:
    note = notification_for(position_closed())

    assert note is not None
    assert note.title == "Closed LONG ACME (stop): -$61.25 (-1.02R)"
    fields = dict(note.fields)
    assert (fields["Exit reason"], fields["Net P&L"], fields["R"]) == ("stop", "-$61.25", "-1.02R")
    assert (fields["Entry"], fields["Exit"]) == ("12.345", "11.94")


def test_error_raised_tells_severity_source_and_message() -> None:
    note = notification_for(error_raised())

    assert note is not None
    assert note.title == "CRITICAL in feed: feed.stalled"
    assert note.text == "No bars for 120 s: check the market data connection."
    assert note.severity is NotificationSeverity.CRITICAL
    assert dict(note.fields)["Source"] == "feed"


def test_report_daily_tells_trades_net_pnl_win_rate_and_drawdown() -> None:
    note = notification_for(report_daily())

    assert note is not None
    assert note.title == "Daily report 2025-03-03: +$148.75 over 3 trades"
    fields = dict(note.fields)
    assert fields["Trades"] == "3"
    assert fields["Wins / losses"] == "1 / 2"
    assert fields["Win rate"] == "33.3%"
    assert fields["Net P&L"] == "+$148.75"
    assert fields["Max drawdown"] == "-$101.25 (0.10%)"


def test_events_nobody_is_told_about_give_no_notification() -> None:
    assert notification_for(DomainEvent(id="x", occurred_at=EXIT_AT, trading_day=DAY)) is None


def test_router_subscribes_the_notifier_group_to_the_enabled_kinds() -> None:
    bus = RecordingBus()
    router = NotificationRouter(
        [RecordingNotifier()],
        kinds=[NotificationKind.POSITION_CLOSED, NotificationKind.REPORT_DAILY],
    )

    router.attach(bus)

    assert bus.subscriptions == [(NOTIFIER_GROUP, frozenset({"position.closed", "report.daily"}))]


def test_router_without_notifiers_does_not_subscribe() -> None:
    bus = RecordingBus()

    NotificationRouter([]).attach(bus)

    assert bus.subscriptions == []


@pytest.mark.asyncio
async def test_router_hands_every_notification_to_every_notifier_through_the_bus() -> None:
    bus, first, second = RecordingBus(), RecordingNotifier(), RecordingNotifier()
    router = NotificationRouter([first, second])
    router.attach(bus)

    await bus.publish([plan_executed(), position_closed(), error_raised(), report_daily()])

    kinds = [m.kind for m in first.messages]
    assert kinds == [
        NotificationKind.PLAN_EXECUTED,
        NotificationKind.POSITION_CLOSED,
        NotificationKind.ERROR_RAISED,
        NotificationKind.REPORT_DAILY,
    ]
    assert second.messages == first.messages
    assert router.stats.notified == 8


@pytest.mark.asyncio
async def test_a_raising_notifier_affects_neither_the_others_nor_the_bus() -> None:
    bus, before, after = RecordingBus(), RecordingNotifier(), RecordingNotifier()
    router = NotificationRouter([before, RaisingNotifier(), after])
    router.attach(bus)

    with structlog.testing.capture_logs() as logs:
        await bus.publish([plan_executed(), position_closed()])

    assert len(before.messages) == len(after.messages) == 2
    assert router.stats.notifier_failures == 2
    failures = [e for e in logs if e["event"] == "notifier_failed"]
    assert [(e["notifier"], e["error"]) for e in failures] == [
        ("RaisingNotifier", "RuntimeError"),
        ("RaisingNotifier", "RuntimeError"),
    ]
    assert all(SECRET not in json.dumps(e, default=repr) for e in logs)


@pytest.mark.asyncio
async def test_a_stalling_notifier_is_cut_off_and_the_others_still_hear() -> None:
    after = RecordingNotifier()
    router = NotificationRouter([StallingNotifier(), after], notify_timeout_secs=0.05)

    await asyncio.wait_for(router.handle(plan_executed()), timeout=2)

    assert len(after.messages) == 1
    assert router.stats.notifier_failures == 1


@pytest.mark.asyncio
async def test_a_redelivered_event_is_notified_once() -> None:
    notifier = RecordingNotifier()
    router = NotificationRouter([notifier])

    await router.handle(plan_executed())
    await router.handle(plan_executed())

    assert len(notifier.messages) == 1
    assert router.stats.duplicates == 1


@pytest.mark.asyncio
async def test_errors_below_the_minimum_severity_are_not_notified() -> None:
    notifier = RecordingNotifier()
    router = NotificationRouter([notifier], min_error_severity=Severity.ERROR)

    await router.handle(error_raised(Severity.WARNING, key="w"))
    await router.handle(error_raised(Severity.ERROR, key="e"))

    assert [m.severity for m in notifier.messages] == [NotificationSeverity.ERROR]
    assert router.stats.skipped == 1


@pytest.mark.asyncio
async def test_an_event_that_cannot_be_rendered_is_counted_not_raised() -> None:
    notifier = RecordingNotifier()
    router = NotificationRouter([notifier])
    broken = PlanExecuted(
        id="broken",
        occurred_at=ENTRY_AT,
        trading_day=DAY,
        plan_id="plan-acme",
        fill=None,  # type: ignore[arg-type]  # what a bad upcaster might produce
    )

    with structlog.testing.capture_logs() as logs:
        await router.handle(broken)

    assert notifier.messages == []
    assert router.stats.render_failures == 1
    [failure] = [e for e in logs if e["event"] == "notification_render_failed"]
    assert failure["event_id"] == "broken"
