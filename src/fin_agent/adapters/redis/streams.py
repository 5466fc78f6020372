"""Stream layout, settings and counters of the Redis Streams bus, and the dead-letter entry shape.

Events go to `<prefix>:events`, market data to `<prefix>:market`; entries that cannot be handled go
to `<prefix>:dlq` with the reason, the original stream, id and fields. Each consumer group keeps
the ids it has handled in `<prefix>:seen:<group>` (a sorted set scored by time), so a duplicated
XADD or a redelivery is skipped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

EVENTS: Final = "events"
MARKET: Final = "market"
DLQ: Final = "dlq"
ORIGINAL_PREFIX: Final = "orig."


def default_consumer() -> str:
    """A consumer name unique to this process: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def topic_of(event_type: str) -> str:
    """The stream topic an event type travels on."""
    return MARKET if event_type.startswith("market.") else EVENTS


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamsSettings:
    """Tuning of the bus; the defaults suit one agent on one Redis."""

    prefix: str = "fin"
    consumer: str = field(default_factory=default_consumer)
    block_ms: int = 1000
    read_count: int = 200
    claim_idle_ms: int = 30_000
    claim_interval_secs: float = 5.0
    max_deliveries: int = 5
    max_in_flight: int = 10_000
    max_lag: int = 100_000
    dedupe_retention_secs: int = 3 * 86_400
    take_over_on_start: bool = False  # the one active instance claims every pending entry

    def key(self, name: str) -> str:
        """The Redis key of stream or set `name` under the prefix."""
        return f"{self.prefix}:{name}"

    @property
    def socket_timeout_secs(self) -> float:
        """Longer than the blocking read, so redis-py never times out (and retries) a BLOCK."""
        return self.block_ms / 1000 + 5.0


@dataclass(slots=True)
class BusCounters:
    """What the bus did, for metrics: nothing is dropped without being counted here."""

    published: int = 0
    delivered: int = 0
    handled: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0
    claimed: int = 0
    deleted: int = 0
    backpressure_waits: int = 0
    reconnects: int = 0
    groups_recreated: int = 0
    data_losses: int = 0
    republished: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One dead-letter entry: why, from where, and the original fields as they were."""

    id: str
    stream: str
    entry_id: str
    group: str
    reason: str
    detail: str
    deliveries: int
    fields: Mapping[str, str]

    @property
    def event_type(self) -> str:
        """The original entry's event type, if it had one."""
        return self.fields.get("type", "?")


# redis-py replies are bytes or str (by decode_responses) nested in lists and dicts whose typing
# is too wide to be useful: replies are read as `Reply` and checked by how they are used.
Reply = Any
RawFields = Mapping[Any, Any]


def text(value: bytes | str) -> str:
    """A Redis reply value as text (invalid UTF-8 is replaced, never raised)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def dead_letter_fields(
    *,
    stream: str,
    entry_id: str,
    group: str,
    reason: str,
    detail: str,
    deliveries: int,
    fields: RawFields,
) -> dict[str, str]:
    """The fields of a dead-letter entry; the original fields keep their names under `orig.`."""
    out = {
        "stream": stream,
        "entry_id": entry_id,
        "group": group,
        "reason": reason,
        "detail": detail[:2000],
        "deliveries": str(deliveries),
    }
    for key, value in fields.items():
        out[ORIGINAL_PREFIX + text(key)] = text(value)
    return out


def parse_dead_letter(dlq_id: str, fields: RawFields) -> DeadLetter:
    """Read a dead-letter entry back."""
    flat = {text(k): text(v) for k, v in fields.items()}
    original = {
        k[len(ORIGINAL_PREFIX) :]: v for k, v in flat.items() if k.startswith(ORIGINAL_PREFIX)
    }
    return DeadLetter(
        id=dlq_id,
        stream=flat.get("stream", ""),
        entry_id=flat.get("entry_id", ""),
        group=flat.get("group", ""),
        reason=flat.get("reason", ""),
        detail=flat.get("detail", ""),
        deliveries=int(flat.get("deliveries", "0") or 0),
        fields=original,
    )
