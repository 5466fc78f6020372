"""Domain events: frozen, versioned facts in the past tense, each with a dotted type.

Ids are deterministic (a UUID5 of the type and a natural key such as the plan id), so the same
decision made twice, by a redelivery or a replay, carries the same id and stores dedupe on it.

The strategy's decisions (a scan, a plan, an order, a close) say which config made them, twice:
`config_version` is the hash of the whole config in force (what `config diff` and the dashboard
name), `strategy_version` the hash of only the sections that decide (scan, plan, risk, execution),
which an audit replay compares; '' when unknown. A field change is a new VERSION with an upcaster
in the event codec and a new golden payload under tests/golden (see its README).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from fin_agent.domain.gap_scanner import Candidate, ScanResult, UniverseSnapshot
from fin_agent.domain.news import NewsItem
from fin_agent.domain.orders import BracketOrder, Fill
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.report import DailyReport
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.domain.trade_plan import TradePlan
from fin_agent.domain.values import Bar, Symbol, require_utc

EVENT_NAMESPACE = uuid.UUID("5b0b3a52-3c1e-4b8e-9a57-6f1f2b7d4c11")


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def event_id(event_type: str, key: str) -> str:
    """The id of the event of `event_type` about `key`: the same inputs give the same id.

    It is `str(uuid.uuid5(EVENT_NAMESPACE, f"{event_type}|{key}"))`, written out (RFC 4122:
    SHA-1 of namespace and name, version 5, variant bits) because a backtest makes one a minute
    and `uuid.UUID` builds an object around the same hex.
    """
    name = f"{event_type}|{key}".encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    high = int.from_bytes(digest[:16]) & ~(0xF000 << 64) & ~(0xC000 << 48)
    text = f"{high | (0x5000 << 64) | (0x8000 << 48):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Base of every event: id, UTC time and trading day; subclasses set TYPE and VERSION."""

    TYPE: ClassVar[str] = "event"
    VERSION: ClassVar[int] = 1

    id: str
    occurred_at: datetime
    trading_day: date

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is not UTC:  # the usual case, checked first (as `Bar` does)
            require_utc(self.occurred_at, f"{self.TYPE} occurred_at")

    @classmethod
    def id_for(cls, key: str) -> str:
        """The deterministic id of this event type about `key`."""
        return event_id(cls.TYPE, key)


@dataclass(frozen=True, slots=True, kw_only=True)
class DayStarted(DomainEvent):
    """A trading day began with this equity and strategy."""

    TYPE: ClassVar[str] = "day.started"
    start_equity: Decimal
    strategy: str
    session_open: datetime
    session_close: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotTaken(DomainEvent):
    """The scan took its inputs: the store keeps them as scan record `record` (`ScanRecords`),
    written before this event is published, so the day can be audited by replay.

    `snapshot` is the inputs themselves when the event carries them: a v3 event (v1 to v3 carried
    the whole snapshot on the bus; their upcast leaves `record` empty) or an event whose record
    was read back (`with_snapshot`). On the bus a v4 event carries the key and counts only.
    """

    TYPE: ClassVar[str] = "scan.snapshot_taken"
    # v1 had no prev_session nor quoted_prev_close; v2 wrote an object per daily bar, v3 wrote
    # the snapshot as columns, v4 refers to the scan record (the codec upcasts all three)
    VERSION: ClassVar[int] = 4
    record: str
    symbols: int
    daily_bars: int
    snapshot: UniverseSnapshot | None

    @classmethod
    def of(cls, key: str, *, at: datetime, day: date, snapshot: UniverseSnapshot) -> SnapshotTaken:
        """The event of `snapshot` kept as record `key` (the inputs attached, see `on_bus`)."""
        return cls(
            id=cls.id_for(key),
            occurred_at=at,
            trading_day=day,
            record=key,
            symbols=len(snapshot.symbols),
            daily_bars=sum(len(s.daily_bars) for s in snapshot.symbols),
            snapshot=snapshot,
        )

    def on_bus(self) -> SnapshotTaken:
        """The event as published: the record's key and counts, without the inputs (a record's
        event that carries them) or as it is (a v3 event, whose inputs are nowhere else)."""
        return replace(self, snapshot=None) if self.record else self

    def with_snapshot(self, snapshot: UniverseSnapshot) -> SnapshotTaken:
        """The event with its record's inputs attached (a resumed day folds them)."""
        return replace(self, snapshot=snapshot)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCompleted(DomainEvent):
    """The pre-market scan finished: ranked candidates and every rejection."""

    TYPE: ClassVar[str] = "scan.completed"
    VERSION: ClassVar[int] = 2  # v1 had no strategy_version (codec upcasts it)
    result: ScanResult
    config_version: str = ""
    strategy_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalGenerated(DomainEvent):
    """A symbol passed the scan and is a candidate for a plan."""

    TYPE: ClassVar[str] = "signal.generated"
    candidate: Candidate


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanCreated(DomainEvent):
    """A candidate became a plan with entry, stop, target and size."""

    TYPE: ClassVar[str] = "plan.created"
    VERSION: ClassVar[int] = 2  # v1 had no strategy_version (codec upcasts it)
    plan: TradePlan
    config_version: str = ""
    strategy_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRejected(DomainEvent):
    """A candidate or plan was refused (no range, zero size, a risk limit), with a reason code."""

    TYPE: ClassVar[str] = "plan.rejected"
    plan_id: str
    symbol: Symbol
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(DomainEvent):
    """A plan's trigger printed, risk approved it, and its bracket order went to the broker."""

    TYPE: ClassVar[str] = "order.placed"
    VERSION: ClassVar[int] = 2  # v1 had no strategy_version (codec upcasts it)
    order: BracketOrder
    config_version: str = ""
    strategy_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanExecuted(DomainEvent):
    """A plan's entry filled: a position is open."""

    TYPE: ClassVar[str] = "plan.executed"
    plan_id: str
    fill: Fill


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanExpired(DomainEvent):
    """A plan's entry deadline passed without a trigger."""

    TYPE: ClassVar[str] = "plan.expired"
    plan_id: str
    symbol: Symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(DomainEvent):
    """A position was closed at its stop, its target, or the end-of-day flatten."""

    TYPE: ClassVar[str] = "position.closed"
    VERSION: ClassVar[int] = 2  # v1 had no strategy_version (codec upcasts it)
    trade: ClosedTrade
    fill: Fill
    config_version: str = ""
    strategy_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskStateChanged(DomainEvent):
    """The trading state moved (ACTIVE, REDUCING, HALTED) with a reason code."""

    TYPE: ClassVar[str] = "risk.state_changed"
    previous: TradingState
    current: TradingState
    reason: RiskReason
    detail: str


class Severity(StrEnum):
    """How bad an error is for the trader."""

    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRaised(DomainEvent):
    """Something went wrong that a trader or operator should see (the dashboard's banner)."""

    TYPE: ClassVar[str] = "error.raised"
    source: str
    code: str
    message: str
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportDaily(DomainEvent):
    """The day's report after the close."""

    TYPE: ClassVar[str] = "report.daily"
    report: DailyReport


@dataclass(frozen=True, slots=True, kw_only=True)
class BarsClosed(DomainEvent):
    """One minute of the market closed: the 1-minute bars of the watched symbols."""

    TYPE: ClassVar[str] = "market.bars_closed"
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChanged(DomainEvent):
    """A new config version is in force (live keys), or needs a restart (restart keys)."""

    TYPE: ClassVar[str] = "config.changed"
    version: str
    previous_version: str
    applied_keys: tuple[str, ...]
    restart_keys: tuple[str, ...]


class CommandKind(StrEnum):
    """What an operator asks of the agent."""

    HALT = "halt"
    RESUME = "resume"
    FLATTEN = "flatten"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorCommand(DomainEvent):
    """An operator's command as it travels: halt, resume, flatten (all, or `symbol`) or cancel
    `plan_id`. The day decides it at its next decision point; `command_id` makes it idempotent."""

    TYPE: ClassVar[str] = "operator.command"
    command_id: str
    kind: CommandKind
    reason: str = ""
    symbol: str = ""
    plan_id: str = ""
    source: str = ""
    issued_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorCommandApplied(DomainEvent):
    """An operator's command took effect; `detail` says what it did."""

    TYPE: ClassVar[str] = "operator.command_applied"
    command_id: str
    kind: CommandKind
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorCommandRefused(DomainEvent):
    """An operator's command was refused; `reason` says why and what to do instead."""

    TYPE: ClassVar[str] = "operator.command_refused"
    command_id: str
    kind: CommandKind
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewsPublished(DomainEvent):
    """A headline arrived from a news source (once per `item.news_id`: its event id derives
    from it, so a headline met again after a reconnect or a restart is the same event)."""

    TYPE: ClassVar[str] = "news.published"
    item: NewsItem


@dataclass(frozen=True, slots=True, kw_only=True)
class NewsAttached(DomainEvent):
    """A headline was tied to a symbol of the day: the catalyst the scan found (`at_scan`), or
    news after the scan about a candidate; `cancelled` when its keywords cancelled the plan,
    `position_open` when the symbol had an open position then (people are told)."""

    TYPE: ClassVar[str] = "news.attached"
    symbol: Symbol
    plan_id: str
    news_id: str
    title: str
    source: str
    published_at: datetime
    url: str
    at_scan: bool
    keywords: tuple[str, ...] = ()
    cancelled: bool = False
    position_open: bool = False


EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    BarsClosed,
    DayStarted,
    SnapshotTaken,
    ScanCompleted,
    SignalGenerated,
    PlanCreated,
    PlanRejected,
    OrderPlaced,
    PlanExecuted,
    PlanExpired,
    PositionClosed,
    RiskStateChanged,
    ErrorRaised,
    ReportDaily,
    ConfigChanged,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
    NewsPublished,
    NewsAttached,
)
