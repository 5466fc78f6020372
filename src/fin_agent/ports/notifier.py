"""The `Notifier` port: tells people what the agent did, without ever holding up trading.

A `Notification` is a rendered, transport-neutral message (title, text, ordered fields) made from a
domain event; an adapter turns it into a Discord message, a JSON webhook body, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from fin_agent.domain.errors import DataError
from fin_agent.domain.values import require_utc


class NotificationKind(StrEnum):
    """What a notification is about: the domain event type it was made from."""

    PLAN_EXECUTED = "plan.executed"
    POSITION_CLOSED = "position.closed"
    ERROR_RAISED = "error.raised"
    REPORT_DAILY = "report.daily"
    OPERATOR_COMMAND = "operator.command"
    NEWS_ATTACHED = "news.attached"  # news about an open position, or one cancelling a plan


class NotificationSeverity(StrEnum):
    """How urgently a person should look: transports map it to a colour or a priority."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One message for people: a one-line title, free text and named values, in order.

    `event_id` is the id of the event it tells about, so a receiver can drop a message it has
    already seen (the bus delivers at least once).
    """

    kind: NotificationKind
    title: str
    text: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    severity: NotificationSeverity = NotificationSeverity.INFO
    event_id: str
    occurred_at: datetime

    def __post_init__(self) -> None:
        require_utc(self.occurred_at, "notification occurred_at")
        if not self.title.strip():
            raise DataError(f"notification {self.event_id} needs a non-blank title")


class Notifier(Protocol):
    """Delivers notifications somewhere people look.

    `notify` only hands the message over: it returns at once, never waits on the network and never
    raises. A message it cannot deliver is dropped, counted and logged by the notifier.
    """

    async def notify(self, message: Notification) -> None:
        """Hand `message` over for delivery; returns at once and never raises."""
        ...
