"""Fixtures of the store contract: a real simulated trading day's events and every store to test.

`trading_day` runs the real app for one session on the seeded simulator (the in-memory bus) and
keeps what it published, plus a risk halt and an error of the same day (the simulator raises
neither) and a few events of the next day. `store` is each `Store` adapter, migrated and empty;
`fresh_store` the same before `migrate()`: in memory, DuckDB, `TimescaleStore` on plain
PostgreSQL (`postgres`: plain tables) and on TimescaleDB (`timescale`: hypertables, compression,
continuous aggregates). `durable` is each SQL store's database, which stores open and close and
which can be taken back to an earlier schema version (`Durable.to_version`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg
import duckdb
import pytest
import pytest_asyncio

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import InMemoryStore
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.adapters.storage.rows import SCHEMA_VERSION, VERSIONED
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_session
from fin_agent.domain.events import (
    BarsClosed,
    DayStarted,
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
    Severity,
    SignalGenerated,
)
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.ports.store import Store

REPO = Path(__file__).resolve().parents[2]
SIMULATED_DAY = date(2025, 3, 12)
"""A day on which the seeded simulator (config.yaml) scans, plans, trades, rejects and expires."""
SIMULATED_TYPES = (
    BarsClosed,
    DayStarted,
    ScanCompleted,
    SignalGenerated,
    PlanCreated,
    OrderPlaced,
    PlanExecuted,
    PositionClosed,
    PlanExpired,
    PlanRejected,
    ReportDaily,
)
"""What the simulator must publish that day; the fixture adds a risk halt and errors itself."""
E = TypeVar("E", bound=DomainEvent)


@dataclass(frozen=True, slots=True)
class TradingDayEvents:
    """One realistic day of events (in publish order) and a few of the next day."""

    day: date
    events: tuple[DomainEvent, ...]
    next_day: date
    next_day_events: tuple[DomainEvent, ...]

    def of(self, cls: type[E]) -> list[E]:
        """The day's events of class `cls`, in publish order."""
        return [e for e in self.events if isinstance(e, cls)]

    @property
    def everything(self) -> tuple[DomainEvent, ...]:
        """Both days' events."""
        return (*self.events, *self.next_day_events)

    @staticmethod
    def in_store_order(events: Iterable[DomainEvent]) -> list[DomainEvent]:
        """`events` as a store returns them: the first of each id, by occurred_at then id."""
        unique = {e.id: e for e in reversed(list(events))}
        return sorted(unique.values(), key=lambda e: (e.occurred_at, e.id))


@pytest.fixture(scope="session")
def codec() -> EventCodec:
    """The production codec."""
    return EventCodec(default_registry())


@pytest.fixture(scope="session")
def trading_day() -> TradingDayEvents:
    """A simulated session's published events, a risk halt, an error, and the next day's few."""
    published = asyncio.run(_simulate(SIMULATED_DAY))
    missing = [c.TYPE for c in SIMULATED_TYPES if not any(isinstance(e, c) for e in published)]
    if missing:
        pytest.fail(
            f"the simulator no longer publishes {', '.join(missing)} on {SIMULATED_DAY}: "
            "pick another SIMULATED_DAY in tests/contract/conftest.py"
        )
    at = _last_bar_at(published)
    extra: list[DomainEvent] = [
        RiskStateChanged(
            id=RiskStateChanged.id_for(f"contract-{SIMULATED_DAY}"),
            occurred_at=at,
            trading_day=SIMULATED_DAY,
            previous=TradingState.ACTIVE,
            current=TradingState.HALTED,
            reason=RiskReason.DAILY_LOSS_LIMIT,
            detail="daily loss 2.1% of equity is past the 2% limit",
        ),
        _error(SIMULATED_DAY, at, "feed_stalled"),
    ]
    next_day = SIMULATED_DAY + timedelta(days=1)
    [started] = [e for e in published if isinstance(e, DayStarted)]
    later = _shifted(started, timedelta(days=1))
    at = later.occurred_at + timedelta(minutes=5)
    next_day_events: list[DomainEvent] = [
        later,
        _error(next_day, at, "broker_timeout"),
        _error(next_day, at, "broker_rejected"),  # the same instant: ordered by id
    ]
    return TradingDayEvents(
        day=SIMULATED_DAY,
        events=(*published, *extra),
        next_day=next_day,
        next_day_events=tuple(next_day_events),
    )


async def _simulate(day: date) -> list[DomainEvent]:
    settings = load_settings(REPO / "config.yaml")
    container = await build_simulation(settings, bus="memory", store="memory")
    async with running(container):
        session = container.calendar.session(day)
        assert session is not None, f"{day} is not a session"
        await run_session(container, session, Decimal(100_000))
    published = getattr(container.bus, "published", None)
    assert isinstance(published, list), "the in-memory bus keeps what it published"
    return list(published)


def _shifted(event: E, by: timedelta) -> E:
    """`event` moved `by` later (every datetime field and the trading day), with a new id."""
    changes: dict[str, Any] = {
        f.name: getattr(event, f.name) + by
        for f in dataclasses.fields(event)
        if isinstance(getattr(event, f.name), datetime)
    }
    return dataclasses.replace(
        event,
        id=type(event).id_for(f"contract-{event.id}-{by}"),
        trading_day=event.trading_day + by,
        **changes,
    )


def _last_bar_at(events: Sequence[DomainEvent]) -> datetime:
    return max(e.occurred_at for e in events if isinstance(e, BarsClosed))


def _error(day: date, at: datetime, code: str) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"contract-{day}-{code}"),
        occurred_at=at,
        trading_day=day,
        source="contract",
        code=code,
        message=f"{code.replace('_', ' ')} (contract fixture)",
        severity=Severity.WARNING,
    )


STORE_KINDS: Final = ("memory", "duckdb", "postgres", "timescale")
BACKENDS: Final = {
    "memory": "memory",
    "duckdb": "duckdb",
    "postgres": "postgresql",
    "timescale": "timescaledb",
}
"""What `migrate()` must say each kind of store is."""


@pytest.fixture
def expected_backend(request: pytest.FixtureRequest) -> str:
    """The backend `migrate()` must name for the store the test runs on (`BACKENDS`)."""
    params = request.node.callspec.params
    kind: str = params.get("fresh_store") or params["durable"]
    return BACKENDS[kind]


@pytest_asyncio.fixture(params=STORE_KINDS)
async def fresh_store(
    request: pytest.FixtureRequest, codec: EventCodec, tmp_path: Path
) -> AsyncIterator[Store]:
    """Each store adapter, empty and not yet migrated; closed (and dropped) afterwards."""
    if request.param == "memory":
        memory = InMemoryStore(codec)
        yield memory
        await memory.close()
    elif request.param == "duckdb":
        duck = DuckDBStore(tmp_path / "store.duckdb", codec)
        yield duck
        await duck.close()
    else:
        from fin_agent.adapters.storage.timescale_store import TimescaleStore

        dsn: str = request.getfixturevalue(f"{request.param}_dsn")
        schema = f"contract_{uuid.uuid4().hex[:12]}"
        timescale = await TimescaleStore.connect(dsn, codec, schema=schema)
        try:
            yield timescale
        finally:
            await timescale.drop_schema()
            await timescale.close()


@pytest_asyncio.fixture
async def store(fresh_store: Store) -> Store:
    """Each store adapter, migrated and empty."""
    await fresh_store.migrate()
    return fresh_store


# -- the SQL stores' databases, and their earlier schema versions ---------------------------------

UNDO: Final[Mapping[int, tuple[str, ...]]] = {
    4: ('DROP TABLE "scan_records"', 'DROP TABLE "scan_inputs"', 'DROP TABLE "scan_bars"'),
    3: tuple(f'ALTER TABLE "{table}" DROP COLUMN "config_version"' for table in VERSIONED),
    2: ('DROP TABLE "daily_bars"', 'DROP TABLE "daily_bar_coverage"'),
}
"""Schema version -> the SQL that takes a database at that version back to the one before."""


@dataclass
class Durable:
    """A SQL store's database: `open()` a store on it (not migrated), `to_version(n)` it."""

    connect: Callable[[], Awaitable[Store]]
    execute: Callable[[Sequence[str]], Awaitable[None]]
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store = await self.connect()
        self.opened.append(store)
        return store

    async def to_version(self, version: int) -> None:
        """Close every store on it, then undo every later version: a database as `version` left
        it, its rows kept (a dropped column's values are lost, as they never were there)."""
        await self.close_all()
        undo = [sql for v in range(SCHEMA_VERSION, version, -1) for sql in UNDO[v]]
        forget = f'DELETE FROM "schema_migrations" WHERE "version" > {int(version)}'  # noqa: S608
        await self.execute([*undo, forget])

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest_asyncio.fixture(params=["duckdb", "postgres", "timescale"])
async def durable(
    request: pytest.FixtureRequest, codec: EventCodec, tmp_path: Path
) -> AsyncIterator[Durable]:
    """Each SQL store's database, empty; every store opened on it closed (and dropped) after."""
    if request.param == "duckdb":
        path = tmp_path / "durable.duckdb"

        async def open_duckdb() -> Store:
            return DuckDBStore(path, codec)

        async def execute_duckdb(statements: Sequence[str]) -> None:
            con = duckdb.connect(str(path))
            try:
                for sql in statements:
                    con.execute(sql)
            finally:
                con.close()

        found = Durable(open_duckdb, execute_duckdb)
        try:
            yield found
        finally:
            await found.close_all()
    else:
        from fin_agent.adapters.storage.timescale_store import TimescaleStore

        dsn = request.getfixturevalue(f"{request.param}_dsn")
        schema = f"contract_{uuid.uuid4().hex[:12]}"

        async def open_timescale() -> Store:
            return await TimescaleStore.connect(dsn, codec, schema=schema)

        async def execute_timescale(statements: Sequence[str]) -> None:
            con = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
            try:
                for sql in statements:
                    await con.execute(sql)
            finally:
                await con.close()

        found = Durable(open_timescale, execute_timescale)
        try:
            yield found
        finally:
            await found.close_all()
            cleanup = await TimescaleStore.connect(dsn, codec, schema=schema)
            try:
                await cleanup.drop_schema()
            finally:
                await cleanup.close()
