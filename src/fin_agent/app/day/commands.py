"""`OperatorDesk`: operator commands in (HTTP, CLI, dashboard), onto the bus, to the day.

`issue` publishes an `operator.command` stamped with the trading day in progress; the `operator`
consumer group hands each to that day, which decides it at its next decision point (the next
minute's bars). A command with no day to take it is refused at once with the reason: commands
are not kept for a day that has not started. `outcome` reads the decision back from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from zoneinfo import ZoneInfo

import structlog

from fin_agent.app.day.agent import Agent
from fin_agent.domain.events import (
    CommandKind,
    DomainEvent,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
)
from fin_agent.domain.operator import refused
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.store import Store

log = structlog.get_logger(__name__)

GROUP = "operator"
"""The consumer group that hands operator commands to the day."""
NO_DAY = (
    "no trading day is running: a command applies to the day in progress (the next day starts "
    "with its scan); send it again then"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRequest:
    """What an operator asks, before it is stamped and published."""

    command_id: str
    kind: CommandKind
    reason: str = ""
    symbol: str = ""
    plan_id: str = ""
    source: str = "http"
    issued_by: str = ""


class OperatorDesk:
    """Publishes operator commands and hands those the bus delivers to the day in progress."""

    def __init__(
        self, *, agent: Agent, bus: EventBus, store: Store, clock: Clock, timezone: ZoneInfo
    ) -> None:
        self._agent = agent
        self._bus = bus
        self._store = store
        self._clock = clock
        self._timezone = timezone
        self._issued: set[str] = set()

    def attach(self, bus: EventBus) -> None:
        """Subscribe the `operator` group to the commands on the bus."""
        bus.subscribe(GROUP, [OperatorCommand.TYPE], self.on_command)

    async def issue(self, request: CommandRequest) -> tuple[OperatorCommand, bool]:
        """Publish the command (stamped with the day in progress); the command and whether it is
        new (False: this command id was issued before, and is not published again)."""
        day = self._agent.day
        at = (day.now if day is not None else self._clock.now()).astimezone(UTC)
        trading_day = day.day if day is not None else at.astimezone(self._timezone).date()
        command = OperatorCommand(
            id=OperatorCommand.id_for(request.command_id),
            occurred_at=at,
            trading_day=trading_day,
            command_id=request.command_id,
            kind=request.kind,
            reason=request.reason,
            symbol=request.symbol,
            plan_id=request.plan_id,
            source=request.source,
            issued_by=request.issued_by,
        )
        if request.command_id in self._issued or await self._stored(request.command_id):
            return command, False
        self._issued.add(request.command_id)
        await self._bus.publish([command])
        log.info(
            "operator_command_issued", command_id=request.command_id, kind=str(request.kind),
            source=request.source, trading_day=str(trading_day),
        )  # fmt: skip
        return command, True

    async def on_command(self, event: DomainEvent) -> None:
        """The `operator` group's handler: queue the command on its day, or refuse it now."""
        if not isinstance(event, OperatorCommand):
            return
        await self._agent.ready()
        day = self._agent.day
        reason = None
        if day is None or day.reported:
            reason = NO_DAY
        elif event.trading_day != day.day:
            reason = (
                f"the command was issued for {event.trading_day}, the day in progress is {day.day}"
            )
        if reason is None and day is not None:
            if day.take_command(event):
                log.info("operator_command_queued", command_id=event.command_id)
            return
        at = self._clock.now().astimezone(UTC)
        decision = refused(event.trading_day, event, reason or NO_DAY, at)
        await self._bus.publish(decision.events)
        log.warning("operator_command_refused", command_id=event.command_id, reason=reason)

    async def outcome(self, command_id: str) -> Mapping[str, object]:
        """The command's state: `applied` or `refused` (with why), `pending` or `unknown`."""
        types = [OperatorCommandApplied.TYPE, OperatorCommandRefused.TYPE]
        for event in reversed(await self._store.events(types=types)):
            if isinstance(event, OperatorCommandApplied) and event.command_id == command_id:
                return _status(event, "applied", event.detail)
            if isinstance(event, OperatorCommandRefused) and event.command_id == command_id:
                return _status(event, "refused", event.reason)
        known = command_id in self._issued or await self._stored(command_id)
        return {"command_id": command_id, "status": "pending" if known else "unknown"}

    async def _stored(self, command_id: str) -> bool:
        found = await self._store.events(types=[OperatorCommand.TYPE])
        return any(isinstance(e, OperatorCommand) and e.command_id == command_id for e in found)


def _status(
    event: OperatorCommandApplied | OperatorCommandRefused, status: str, detail: str
) -> dict[str, object]:
    return {
        "command_id": event.command_id,
        "kind": str(event.kind),
        "status": status,
        "detail": detail,
        "trading_day": event.trading_day.isoformat(),
        "at": event.occurred_at.isoformat(),
    }
