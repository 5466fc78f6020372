"""Audit replay: re-run a stored day's inputs through the domain and compare every decision.

The inputs on record are the scan's snapshot (the scan record `scan.snapshot_taken` refers to, or
the snapshot a v3 event carries), the session times and start
equity (`day.started`) and the minutes of bars (`market.bars_closed`). Decisions carry
deterministic ids, so each replayed decision is matched to the recorded one by id and compared
field by field; a difference names the event and what changed.

A decision's `config_version` (the whole config's hash: a port or an address changes it) is not
compared; its `strategy_version` (the hash of scan, plan, risk and execution) is. A decision
recorded before strategy versions existed gets its strategy version from the recorded config
(`data_dir/config/<config_version>.json`); when that is not on file either, the version is
unknown and the decision is compared on what it decided only (counted as `unversioned`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from fin_agent.app.bootstrap import build_audit
from fin_agent.app.config.settings import Settings
from fin_agent.app.config.version import ConfigHistory, strategy_version_of
from fin_agent.app.container import running
from fin_agent.app.day.scan_record import snapshot_of
from fin_agent.app.runner import run_session
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.events import (
    BarsClosed,
    DayStarted,
    DomainEvent,
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
    SnapshotTaken,
)
from fin_agent.domain.values import Session
from fin_agent.ports.event_codec import EventEncoder
from fin_agent.ports.store import Store

DECISIONS: tuple[type[DomainEvent], ...] = (
    ScanCompleted,
    SignalGenerated,
    PlanCreated,
    PlanRejected,
    OrderPlaced,
    PlanExecuted,
    PlanExpired,
    PositionClosed,
    RiskStateChanged,
    ReportDaily,
)
Versioned = ScanCompleted | PlanCreated | OrderPlaced | PositionClosed
"""The decisions that carry the config and strategy versions they were made under."""
NOT_COMPARED = frozenset({"config_version"})
"""Fields of a decision that say where it came from but not what it decided."""
UNKNOWN = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One decision that differs: missing from the replay, new in it, or changed."""

    kind: str
    event_type: str
    event_id: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditResult:
    """The outcome of replaying one day."""

    day: date
    decisions: int
    differences: tuple[Difference, ...]
    unversioned: int = 0
    """Decisions recorded without a strategy version that could not be recovered."""

    @property
    def matches(self) -> bool:
        """True when every decision was made again exactly."""
        return not self.differences


async def audit_day(store: Store, settings: Settings, day: date) -> AuditResult:
    """Replay `day` from the store with the current strategy and compare its decisions."""
    recorded = _with_strategy_versions(
        await store.events(day=day), ConfigHistory(settings.data_path("config"))
    )
    started = _one(recorded, DayStarted, day)
    snapshot = await snapshot_of(store.scan_records(), _one(recorded, SnapshotTaken, day))
    bars = [b for e in recorded if isinstance(e, BarsClosed) for b in e.bars]
    session = Session(day=day, open=started.session_open, close=started.session_close)
    container = await build_audit(settings, day, snapshot, bars)
    async with running(container):
        await run_session(
            container,
            session,
            started.start_equity,
            universe=[s.symbol for s in snapshot.symbols],
            commands=decided_commands(recorded),
        )
        replayed = await container.store.events(day=day)
    return compare(day, recorded, replayed, codec=container.codec)


def decided_commands(recorded: Sequence[DomainEvent]) -> list[tuple[datetime, OperatorCommand]]:
    """The operator commands the recorded day decided, each at the instant it decided it."""
    commands = {e.command_id: e for e in recorded if isinstance(e, OperatorCommand)}
    return [
        (e.occurred_at, commands[e.command_id])
        for e in recorded
        if isinstance(e, OperatorCommandApplied | OperatorCommandRefused)
        and e.command_id in commands
    ]


def compare(
    day: date,
    recorded: Sequence[DomainEvent],
    replayed: Sequence[DomainEvent],
    *,
    codec: EventEncoder,
) -> AuditResult:
    """Match decisions by id and compare their fields as they travel (`codec`: the wire format;
    time of the decision excluded)."""
    kinds = tuple(DECISIONS)
    before = {e.id: e for e in recorded if isinstance(e, kinds)}
    after = {e.id: e for e in replayed if isinstance(e, kinds)}
    differences: list[Difference] = []
    unversioned = 0
    for event_id, old in before.items():
        new = after.get(event_id)
        if new is None:
            differences.append(
                Difference(kind="missing", event_type=old.TYPE, event_id=event_id,
                           detail="recorded, but the replay did not decide it")
            )  # fmt: skip
            continue
        old_data, new_data = _compared(codec, old), _compared(codec, new)
        if old_data.get("strategy_version") == UNKNOWN:  # decided before strategy versions
            unversioned += 1
            del old_data["strategy_version"]
            new_data.pop("strategy_version", None)
        if old_data != new_data:
            keys = old_data.keys() | new_data.keys()
            changed = sorted(k for k in keys if old_data.get(k) != new_data.get(k))
            differences.append(
                Difference(kind="changed", event_type=old.TYPE, event_id=event_id,
                           detail=f"fields differ: {', '.join(changed)}")
            )  # fmt: skip
    for event_id, new in after.items():
        if event_id not in before:
            differences.append(
                Difference(kind="extra", event_type=new.TYPE, event_id=event_id,
                           detail="the replay decided it, the record does not have it")
            )  # fmt: skip
    return AuditResult(
        day=day, decisions=len(before), differences=tuple(differences), unversioned=unversioned
    )


def _compared(codec: EventEncoder, event: DomainEvent) -> dict[str, Any]:
    """The fields of `event` that the audit compares, as they travel."""
    data: dict[str, Any] = json.loads(codec.encode(event)["data"])
    return {k: v for k, v in data.items() if k not in NOT_COMPARED}


def _with_strategy_versions(
    events: Sequence[DomainEvent], history: ConfigHistory
) -> list[DomainEvent]:
    """`events` with the strategy version of a decision that lacks one (recorded before they
    existed) worked out from its recorded config, when that config is on file."""
    known: dict[str, str] = {}
    out: list[DomainEvent] = []
    for event in events:
        if isinstance(event, Versioned) and event.config_version and not event.strategy_version:
            config = event.config_version
            if config not in known:
                try:
                    known[config] = strategy_version_of(history.load(config))
                except ConfigError:
                    known[config] = UNKNOWN
            event = dataclasses.replace(event, strategy_version=known[config])
        out.append(event)
    return out


E = TypeVar("E", bound=DomainEvent)


def _one(events: Sequence[DomainEvent], kind: type[E], day: date) -> E:
    for event in events:
        if isinstance(event, kind):
            return event
    raise DataError(
        f"no {kind.TYPE} event stored for {day}: the day cannot be replayed (it was recorded "
        "without its inputs, or `fin-agent db` points at another store)"
    )
