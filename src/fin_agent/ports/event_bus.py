"""The `EventBus` port: publish domain events and have subscribers handle them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from fin_agent.domain.events import DomainEvent

Handler = Callable[[DomainEvent], Awaitable[None]]


class EventBus(Protocol):
    """Carries events from producers to subscribed handlers."""

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish events in order; returns once the bus has accepted them."""
        ...

    def subscribe(self, event_type: str, handler: Handler) -> None:
        """Call `handler` with every event of `event_type` ("*" for every event)."""
        ...
