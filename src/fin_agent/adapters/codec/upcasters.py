"""The upcasters of the event types' released versions, registered by `default_registry`.

The wire format is pinned by a golden payload per type and version (tests/golden): changing an
event's fields, or those of a value it carries, is a new VERSION, an upcaster here from the one
before, and a new golden. An upcaster is a pure function from the `data` of version N to the
`data` of version N + 1, and accepts every shape that version N was ever written in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fin_agent.adapters.codec.snapshot import snapshot_v2_to_v3 as snapshot_columns
from fin_agent.domain.events import (
    OrderPlaced,
    PlanCreated,
    PositionClosed,
    ScanCompleted,
    SnapshotTaken,
)

if TYPE_CHECKING:
    from fin_agent.adapters.codec.registry import EventRegistry

DECISIONS_V2: tuple[str, ...] = tuple(
    cls.TYPE for cls in (ScanCompleted, PlanCreated, OrderPlaced, PositionClosed)
)
"""The decisions whose v2 added `strategy_version`."""


def decision_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2 of a decision. v1 was stored in two shapes: as first released, without
    `config_version`, and later with it (still stamped v1); v2 adds `strategy_version`, unknown
    ('') for anything decided before it existed."""
    return data | {"config_version": data.get("config_version", ""), "strategy_version": ""}


def snapshot_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2 of `scan.snapshot_taken`: v2 adds the snapshot's `prev_session` and each
    pre-market's `quoted_prev_close`, unknown (None) for a snapshot taken before they existed,
    so the scan's previous close stays the last daily bar's, as it was then."""
    snapshot = dict(data["snapshot"])
    snapshot["symbols"] = [
        item
        if item.get("premarket") is None
        else item | {"premarket": {**item["premarket"], "quoted_prev_close": None}}
        for item in snapshot.get("symbols", [])
    ]
    return data | {"snapshot": snapshot | {"prev_session": None}}


def snapshot_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v3 of `scan.snapshot_taken`: the same snapshot written as columns."""
    return data | {"snapshot": snapshot_columns(data["snapshot"])}


def snapshot_v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    """v3 -> v4 of `scan.snapshot_taken`: v4 refers to a scan record in the store; a v3 event
    has none (`record` empty) and keeps its snapshot inline, with the counts of what it holds."""
    snapshot = data["snapshot"]
    counts = snapshot.get("bars", []) if isinstance(snapshot, dict) else []
    return data | {
        "record": "",
        "symbols": len(counts),
        "daily_bars": sum(n for n in counts if isinstance(n, int)),
    }


def register_upcasters(registry: EventRegistry) -> None:
    """Register every upcaster of the released versions in `registry`."""
    for event_type in DECISIONS_V2:
        registry.upcaster(event_type, 1)(decision_v1_to_v2)
    registry.upcaster(SnapshotTaken.TYPE, 1)(snapshot_v1_to_v2)
    registry.upcaster(SnapshotTaken.TYPE, 2)(snapshot_v2_to_v3)
    registry.upcaster(SnapshotTaken.TYPE, 3)(snapshot_v3_to_v4)
