"""The `EventEncoder` port: an event as it travels and is stored (the wire format)."""

from __future__ import annotations

from typing import Protocol

from fin_agent.domain.events import DomainEvent


class EventEncoder(Protocol):
    """Encodes events into stream entry fields (`type`, `v`, `id`, `ts`, `trace`, `data`)."""

    def encode(self, event: DomainEvent, *, trace: str = "") -> dict[str, str]:
        """The entry fields of `event`; `trace` is a W3C traceparent or ""."""
        ...
