"""The stores' schema and how each event projects into its rows; shared by every store adapter.

Every table is append-only and keyed on the event id (plus a sub-key) and its time column, so
writing the same event twice adds nothing and a unique index can live on a hypertable (it includes
the time column); only `bars_1m` is keyed otherwise (symbol and start). A store adds the `events`
rows of a batch first, learning which events are new, then in the same transaction only the new
events' rows of the other tables (`new_rows`): those cannot be stored yet, bars excepted. Numbers
are `NUMERIC(20, 6)`; every figure (a gap percentage, a split-adjusted price) is rounded half-even
to 6 places here, the one place that rounds, identically for every store.

Schema version 2 adds the daily bar cache's two tables (`daily_bars`, `daily_bar_coverage`): no
event projects into them, so they are not in `TABLES`; each store's migrations create them.
Version 3 adds `config_version` (last) to the tables of the events that carry one (`VERSIONED`):
the content hash of the config that produced the scan, plan, order or trade, `''` when unknown.
Version 4 adds the scan records' tables (`scan_records`, `scan_inputs`, `scan_bars`: see
`scan_record_rows`), outside `TABLES` like the daily bar cache's.
The SQL of each version is frozen in `duckdb_migrations` and `timescale_migrations`; a change
here is a new version there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.domain.events import (
    BarsClosed,
    DomainEvent,
    ErrorRaised,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    ScanCompleted,
)

SCHEMA_VERSION: Final = 4
SIX_PLACES = Decimal("0.000001")


class Kind(StrEnum):
    """Column types, mapped to SQL by each adapter."""

    TEXT = "text"
    INT = "int"
    BIGINT = "bigint"
    NUMERIC = "numeric"
    TIMESTAMP = "timestamp"
    DATE = "date"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Column:
    """A column: name, type and whether it may be null."""

    name: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A table: columns in order, the unique key (with the time column) and the time column."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.columns)


def _c(spec: str) -> tuple[Column, ...]:
    """Columns from 'name:kind' words; a trailing '?' marks a nullable column."""
    out = []
    for word in spec.split():
        name, _, kind = word.partition(":")
        nullable = kind.endswith("?")
        out.append(Column(name, Kind(kind.rstrip("?")), nullable))
    return tuple(out)


_EVENT = "event_id:text occurred_at:timestamp trading_day:date"
TABLES: Final[Mapping[str, Table]] = {
    t.name: t
    for t in (
        Table(
            name="events",
            columns=_c(f"{_EVENT} type:text version:int trace:text data:json"),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="bars_1m",
            columns=_c(
                "symbol:text start:timestamp trading_day:date open:numeric high:numeric "
                "low:numeric close:numeric volume:bigint event_id:text"
            ),
            key=("symbol", "start"),
            time_column="start",
        ),
        Table(
            name="scan_candidates",
            columns=_c(
                f"{_EVENT} symbol:text rank:int side:text prev_close:numeric pm_last:numeric "
                "pm_volume:bigint? gap_pct:numeric atr:numeric adv:numeric history_bars:int "
                "headline_count:int top_headline:text? skipped_rules:text config_version:text"
            ),
            key=("event_id", "symbol", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="scan_rejections",
            columns=_c(
                f"{_EVENT} symbol:text rule:text detail:text gap_pct:numeric? config_version:text"
            ),
            key=("event_id", "symbol", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="plans",
            columns=_c(
                f"{_EVENT} plan_id:text symbol:text side:text rank:int entry:numeric "
                "stop:numeric target:numeric qty:int atr:numeric or_high:numeric "
                "or_low:numeric entry_from:timestamp entry_until:timestamp strategy:text "
                "config_version:text"
            ),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="plan_states",
            columns=_c(f"{_EVENT} plan_id:text symbol:text state:text detail:text"),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="orders",
            columns=_c(
                f"{_EVENT} client_order_id:text symbol:text side:text qty:int "
                "trigger:numeric stop:numeric target:numeric config_version:text"
            ),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="fills",
            columns=_c(
                f"{_EVENT} client_order_id:text symbol:text side:text kind:text qty:int "
                "price:numeric commission:numeric"
            ),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="trades",
            columns=_c(
                f"{_EVENT} plan_id:text symbol:text side:text qty:int entry_price:numeric "
                "exit_price:numeric entry_at:timestamp exit_at:timestamp exit_reason:text "
                "gross_pnl:numeric commission:numeric net_pnl:numeric r_multiple:numeric "
                "config_version:text"
            ),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="daily_reports",
            columns=_c(
                f"{_EVENT} strategy:text candidates:int plans:int plans_rejected:int "
                "start_equity:numeric end_equity:numeric net_pnl:numeric gross_pnl:numeric "
                "commissions:numeric trades:int wins:int losses:int win_rate:numeric "
                "avg_r:numeric max_drawdown:numeric max_drawdown_pct:numeric"
            ),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="errors",
            columns=_c(f"{_EVENT} source:text code:text message:text severity:text"),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
        Table(
            name="risk_states",
            columns=_c(f"{_EVENT} previous:text current:text reason:text detail:text"),
            key=("event_id", "occurred_at"),
            time_column="occurred_at",
        ),
    )
}

RowValues = tuple[object, ...]
VERSIONED: Final = ("scan_candidates", "scan_rejections", "plans", "orders", "trades")
"""The tables whose rows carry their event's `config_version` (schema version 3)."""
EVENT_ID_AT: Final[Mapping[str, int]] = {
    name: table.names.index("event_id") for name, table in TABLES.items()
}
"""Where each table's rows carry the id of the event they come from."""
_SUB_KEYED: Final[Mapping[str, tuple[int, ...]]] = {
    name: tuple(table.names.index(k) for k in table.key)
    for name, table in TABLES.items()
    if name != "bars_1m" and set(table.key) != {"event_id", table.time_column}
}
"""Tables with more than one row per event (one per symbol): positions of their key columns."""


def _n(value: Decimal) -> Decimal:
    return value.quantize(SIX_PLACES)


def _on(e: DomainEvent) -> RowValues:
    return (e.id, e.occurred_at, e.trading_day)


class Projector:
    """Turns events into rows per table, in the column order of `TABLES`."""

    def __init__(self, codec: EventCodec) -> None:
        self._codec = codec

    def rows(self, events: Iterable[DomainEvent]) -> dict[str, list[RowValues]]:
        """Rows for every table touched by `events` (duplicates inside the batch removed)."""
        out: dict[str, list[RowValues]] = {name: [] for name in TABLES}
        seen: set[str] = set()
        for event in events:
            if event.id in seen:
                continue
            seen.add(event.id)
            out["events"].append(
                (*_on(event), event.TYPE, event.VERSION, "", self._codec.payload(event))
            )
            for table, row in _project(event):
                out[table].append(row)
        return {name: rows for name, rows in out.items() if rows}

    def table_rows(self, table: str, events: Iterable[DomainEvent]) -> Iterator[RowValues]:
        """The rows of `table` alone made from `events`, each event taken as it comes (the raw
        log's payload made only when `table` is `events`): a store keeping events can answer a
        table read from them."""
        for event in events:
            if table == "events":
                yield (*_on(event), event.TYPE, event.VERSION, "", self._codec.payload(event))
                continue
            for name, row in _project(event):
                if name == table:
                    yield row


def new_rows(
    tables: Mapping[str, list[RowValues]], new: Collection[str]
) -> dict[str, list[RowValues]]:
    """The rows of every table but `events` that come from the events whose id is in `new`.

    `tables` is what `Projector.rows` made of a batch and `new` the ids its `events` insert added.
    Rows of the tables keyed on the event id (all but `bars_1m`) cannot be stored yet when their
    event was not, so a plain insert takes them; a sub-keyed table's rows are unique by key here
    (the first row of a key kept, as `ON CONFLICT DO NOTHING` would) so that it cannot fail. A bar
    may be stored already, under another event: the stores still check `bars_1m`.
    """
    every = len(new) == len(tables.get("events", ()))  # the projector made one row per event
    out: dict[str, list[RowValues]] = {}
    for name, rows in tables.items():
        if name == "events":
            continue
        if not every:
            at = EVENT_ID_AT[name]
            rows = [row for row in rows if row[at] in new]
        key_at = _SUB_KEYED.get(name)
        if key_at is not None and len(rows) > 1:
            unique: dict[tuple[object, ...], RowValues] = {}
            for row in rows:
                unique.setdefault(tuple([row[i] for i in key_at]), row)
            rows = list(unique.values())
        if rows:
            out[name] = rows
    return out


def _project(e: DomainEvent) -> Sequence[tuple[str, RowValues]]:
    """The projection rows of one event (the raw log row is added by the caller)."""
    match e:
        case BarsClosed():
            return [
                ("bars_1m", (b.symbol, b.start, e.trading_day, _n(b.open), _n(b.high), _n(b.low),
                             _n(b.close), b.volume, e.id))
                for b in e.bars
            ]  # fmt: skip
        case ScanCompleted():
            result = e.result
            return [
                ("scan_candidates", (*_on(e), c.symbol, c.rank, str(c.side), _n(c.prev_close),
                                     _n(c.pm_last), c.pm_volume, _n(c.gap_pct), _n(c.atr),
                                     _n(c.adv), c.history_bars, c.headline_count,
                                     c.top_headline, ",".join(c.skipped_rules),
                                     e.config_version))
                for c in result.candidates
            ] + [
                ("scan_rejections", (*_on(e), r.symbol, str(r.rule), r.detail,
                                     None if r.gap_pct is None else _n(r.gap_pct),
                                     e.config_version))
                for r in result.rejections
            ]  # fmt: skip
        case PlanCreated():
            p = e.plan
            return [
                ("plans", (*_on(e), p.id, p.symbol, str(p.side), p.rank, _n(p.entry), _n(p.stop),
                           _n(p.target), p.qty, _n(p.atr), _n(p.or_high), _n(p.or_low),
                           p.window.opens_at, p.window.closes_at, p.strategy,
                           e.config_version)),
                ("plan_states", (*_on(e), p.id, p.symbol, "planned", "")),
            ]  # fmt: skip
        case OrderPlaced():
            o = e.order
            return [
                ("orders", (*_on(e), o.client_order_id, o.symbol, str(o.side), o.qty,
                            _n(o.trigger), _n(o.stop), _n(o.target), e.config_version)),
                ("plan_states", (*_on(e), o.client_order_id, o.symbol, "triggered", "")),
            ]  # fmt: skip
        case PlanExecuted():
            f = e.fill
            return [
                ("fills", (*_on(e), f.client_order_id, f.symbol, str(f.side), str(f.kind), f.qty,
                           _n(f.price), _n(f.commission))),
                ("plan_states", (*_on(e), e.plan_id, f.symbol, "filled", f"at {f.price}")),
            ]  # fmt: skip
        case PositionClosed():
            t, f = e.trade, e.fill
            return [
                ("fills", (*_on(e), f.client_order_id, f.symbol, str(f.side), str(f.kind), f.qty,
                           _n(f.price), _n(f.commission))),
                ("trades", (*_on(e), t.plan_id, t.symbol, str(t.side), t.qty, _n(t.entry_price),
                            _n(t.exit_price), t.entry_at, t.exit_at, str(t.exit_reason),
                            _n(t.gross_pnl), _n(t.commission), _n(t.net_pnl), _n(t.r_multiple),
                            e.config_version)),
                ("plan_states", (*_on(e), t.plan_id, t.symbol, "closed", str(t.exit_reason))),
            ]  # fmt: skip
        case PlanExpired():
            return [("plan_states", (*_on(e), e.plan_id, e.symbol, "expired", ""))]
        case PlanRejected():
            state = f"rejected:{e.reason}"
            return [("plan_states", (*_on(e), e.plan_id, e.symbol, state, e.detail))]
        case ReportDaily():
            r, perf = e.report, e.report.performance
            return [
                ("daily_reports", (*_on(e), r.strategy, r.candidates, r.plans, r.plans_rejected,
                                   _n(perf.start_equity), _n(perf.end_equity),
                                   _n(perf.net_pnl), _n(perf.gross_pnl), _n(perf.commissions),
                                   len(perf.trades), perf.wins, perf.losses, _n(perf.win_rate),
                                   _n(perf.avg_r), _n(perf.max_drawdown),
                                   _n(perf.max_drawdown_pct)))
            ]  # fmt: skip
        case ErrorRaised():
            return [("errors", (*_on(e), e.source, e.code, e.message, str(e.severity)))]
        case RiskStateChanged():
            return [
                ("risk_states", (*_on(e), str(e.previous), str(e.current), str(e.reason),
                                 e.detail))
            ]  # fmt: skip
        case _:
            return []
