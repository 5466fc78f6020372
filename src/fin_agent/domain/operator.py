"""Operator commands decided on a day's state: halt, resume, flatten (all or one symbol), cancel.

A command becomes an `operator.command_applied` or `operator.command_refused` keyed by its command
id, with the state changes it makes (a `risk.state_changed`, a cancelled plan's
`plan.rejected`), and the broker actions it needs (positions to close, entries to cancel). A
halt stops new entries only: open positions are still managed to their stop, target and flatten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from fin_agent.domain.events import (
    CommandKind,
    DomainEvent,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
    PlanRejected,
    RiskStateChanged,
)
from fin_agent.domain.positions import Position
from fin_agent.domain.risk_engine import RiskEngine, RiskReason, StateChange, TradingState
from fin_agent.domain.trade_plan import PlanState, TradePlan

OPERATOR_CANCELLED = "operator_cancelled"
"""The `plan.rejected` reason of a plan an operator cancelled."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandDecision:
    """What a command does: its events (the outcome last) and the broker's work."""

    events: list[DomainEvent] = field(default_factory=list)
    close: tuple[str, ...] = ()
    """Plan ids whose positions close at market (at the next bar's open)."""
    cancel: tuple[str, ...] = ()
    """Plan ids whose working entry orders are cancelled."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DayView:
    """The parts of a day's state a command reads."""

    day: date
    risk: RiskEngine
    plans: Sequence[TradePlan]
    positions: Sequence[Position]


def decide(view: DayView, command: OperatorCommand, at: datetime) -> CommandDecision:
    """The decision on `command` at `at` (the caller skips a command id it has handled)."""
    match command.kind:
        case CommandKind.HALT:
            return _halt(view, command, at)
        case CommandKind.RESUME:
            return _resume(view, command, at)
        case CommandKind.FLATTEN:
            return _flatten(view, command, at)
        case CommandKind.CANCEL:
            return _cancel(view, command, at)


def _detail(command: OperatorCommand, default: str) -> str:
    who = command.issued_by or command.source or "an operator"
    return f"{command.reason or default} (by {who})"


def _halt(view: DayView, command: OperatorCommand, at: datetime) -> CommandDecision:
    change = view.risk.halt(_detail(command, "halted by an operator"), RiskReason.OPERATOR)
    if change is None:
        why = view.risk.halted_by or RiskReason.OPERATOR
        return refused(view.day, command, f"trading is already halted ({why})", at)
    return _changed(view.day, command, change, at, "trading halted: no new entries")


def _resume(view: DayView, command: OperatorCommand, at: datetime) -> CommandDecision:
    change = view.risk.resume(_detail(command, "resumed by an operator"), RiskReason.OPERATOR)
    if change is not None:
        return _changed(view.day, command, change, at, f"trading {change.current}")
    if view.risk.state is not TradingState.HALTED:
        return refused(view.day, command, f"trading is not halted (it is {view.risk.state})", at)
    return refused(
        view.day,
        command,
        f"trading is halted by {view.risk.halted_by}, not by an operator: it resumes by itself "
        "when that clears",
        at,
    )


def _flatten(view: DayView, command: OperatorCommand, at: datetime) -> CommandDecision:
    wanted = command.symbol.strip().upper()
    closing = [p for p in view.positions if not wanted or p.symbol == wanted]
    if wanted and not closing:
        held = ", ".join(p.symbol for p in view.positions) or "none"
        return refused(view.day, command, f"no open position in {wanted} (open: {held})", at)
    names = ", ".join(f"{p.symbol} x{p.qty}" for p in closing)
    detail = f"closing {names} at market" if closing else "no open position to close"
    return CommandDecision(
        events=[_applied(view.day, command, detail, at)],
        close=tuple(p.plan_id for p in closing),
    )


def _cancel(view: DayView, command: OperatorCommand, at: datetime) -> CommandDecision:
    plan = next((p for p in view.plans if p.id == command.plan_id), None)
    if plan is None:
        known = ", ".join(p.id for p in view.plans) or "none yet"
        return refused(view.day, command, f"no plan {command.plan_id!r} today (plans: {known})", at)
    if plan.state is PlanState.FILLED:
        return refused(
            view.day,
            command,
            f"plan {plan.id} has an open position: flatten {plan.symbol} instead",
            at,
        )
    if plan.state not in (PlanState.PLANNED, PlanState.TRIGGERED):
        return refused(view.day, command, f"plan {plan.id} is already {plan.state}", at)
    cancelled = PlanRejected(
        id=PlanRejected.id_for(f"{plan.id}:{OPERATOR_CANCELLED}:{command.command_id}"),
        occurred_at=at,
        trading_day=view.day,
        plan_id=plan.id,
        symbol=plan.symbol,
        reason=OPERATOR_CANCELLED,
        detail=_detail(command, "cancelled by an operator"),
    )
    working = plan.state is PlanState.TRIGGERED
    return CommandDecision(
        events=[cancelled, _applied(view.day, command, f"plan {plan.id} cancelled", at)],
        cancel=(plan.id,) if working else (),
    )


def _changed(
    day: date, command: OperatorCommand, change: StateChange, at: datetime, detail: str
) -> CommandDecision:
    # Keyed by the command: a halt, a resume and a halt again in one minute are three events.
    moved = RiskStateChanged(
        id=RiskStateChanged.id_for(f"{day}:{command.command_id}"),
        occurred_at=at,
        trading_day=day,
        previous=change.previous,
        current=change.current,
        reason=change.reason,
        detail=change.detail,
    )
    return CommandDecision(events=[moved, _applied(day, command, detail, at)])


def _applied(day: date, command: OperatorCommand, detail: str, at: datetime) -> DomainEvent:
    return OperatorCommandApplied(
        id=OperatorCommandApplied.id_for(command.command_id),
        occurred_at=at,
        trading_day=day,
        command_id=command.command_id,
        kind=command.kind,
        detail=detail,
    )


def refused(day: date, command: OperatorCommand, reason: str, at: datetime) -> CommandDecision:
    """The refusal of `command` for `reason` (also when no day can take it)."""
    event = OperatorCommandRefused(
        id=OperatorCommandRefused.id_for(command.command_id),
        occurred_at=at,
        trading_day=day,
        command_id=command.command_id,
        kind=command.kind,
        reason=reason,
    )
    return CommandDecision(events=[event])
