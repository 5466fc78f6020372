"""The coordinator through failures: its database down for 30 s under load, its process SIGKILLed
mid-batch, and a store whose writes fail for a while.

The PostgreSQL tests run on their OWN throwaway clusters (never the machine's servers), one plain
and one preloading timescaledb, so each runs on both kinds of store (`tests/pg_cluster.py`). They
are stopped and deleted at teardown, even when a test fails. Redis servers come from
`redis_server_factory`.

The SIGKILL test runs the coordinator as `coordinator_worker.py` in a subprocess writing to that
cluster, so what the killed process committed is visible here.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import InMemoryEventBus
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings, text
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.app.coordinator import GROUP, Coordinator
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.server import HttpDeps, make_app, store_check
from fin_agent.app.serve import readiness_checks
from fin_agent.domain.errors import AdapterError
from fin_agent.domain.events import BarsClosed, DomainEvent, ErrorRaised
from fin_agent.domain.values import Bar, symbol
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.store import Row, StoreInfo
from pg_cluster import PostgresCluster, make_cluster

CODEC = EventCodec(default_registry())
DAY = date(2025, 3, 3)
OPEN = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
WORKER = Path(__file__).with_name("coordinator_worker.py")
OUTAGE_SECS = 30.0
RATE_PER_SEC = 50

RedisServerFactory = Callable[..., Any]  # see tests/integration/conftest.py


# -- events ---------------------------------------------------------------------------------------


def error_event(n: int, tag: str = "resilience") -> ErrorRaised:
    """An `error.raised` event (the `events` stream) with a deterministic id."""
    return ErrorRaised(
        id=ErrorRaised.id_for(f"{tag}-{n}"),
        occurred_at=OPEN + timedelta(milliseconds=n),
        trading_day=DAY,
        source="test",
        code="test.event",
        message=f"event {n}",
    )


def bars_event(n: int, tag: str = "resilience") -> BarsClosed:
    """A `market.bars_closed` event (the `market` stream) with two bars of its own minute."""
    start = OPEN + timedelta(minutes=n)
    price = Decimal("10.00") + Decimal(n % 500) / 100
    bars = tuple(
        Bar(
            symbol=symbol(name),
            start=start,
            open=price,
            high=price + Decimal("0.05"),
            low=price - Decimal("0.05"),
            close=price + Decimal("0.01"),
            volume=1_000 + n,
        )
        for name in ("AAA", "BBB")
    )
    return BarsClosed(
        id=BarsClosed.id_for(f"{tag}-{n}"),
        occurred_at=start + timedelta(minutes=1),
        trading_day=DAY,
        bars=bars,
    )


def mixed_event(n: int) -> DomainEvent:
    """Every third event is market data: both streams of the coordinator's group get traffic."""
    return bars_event(n) if n % 3 == 2 else error_event(n)


# -- waiting --------------------------------------------------------------------------------------


async def eventually(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    what: str,
    timeout_secs: float = 15.0,
    every_secs: float = 0.02,
) -> None:
    """Poll `condition` (sync or async) until it holds; fail after `timeout_secs`."""
    deadline = time.monotonic() + timeout_secs
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        await asyncio.sleep(every_secs)


# -- a throwaway PostgreSQL cluster, plain or TimescaleDB ------------------------------------------


@pytest.fixture(scope="module", params=["postgres", "timescale"])
def pg_cluster(request: pytest.FixtureRequest) -> Iterator[PostgresCluster]:
    """One throwaway cluster per kind for this module: plain PostgreSQL, then one preloading
    timescaledb (hypertables); stopped and deleted at the end, whatever happens."""
    cluster = make_cluster(preload=request.param == "timescale")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg(pg_cluster: PostgresCluster) -> PostgresCluster:
    """The module's cluster, running (a test that stopped it and failed may have left it down)."""
    pg_cluster.start()
    return pg_cluster


@pytest_asyncio.fixture
async def pg_store(pg: PostgresCluster) -> AsyncIterator[TimescaleStore]:
    """A migrated TimescaleStore in a schema of its own on the throwaway cluster."""
    store = await TimescaleStore.connect(
        pg.dsn,
        CODEC,
        schema=f"t_{uuid.uuid4().hex[:12]}",
        connect_timeout_secs=2,
        command_timeout_secs=10,
        ping_timeout_secs=1,
    )
    try:
        info = await store.migrate()
        assert info.backend == ("timescaledb" if pg.preload else "postgresql"), info
        yield store
    finally:
        await store.close()


async def connect_to(dsn: str, schema: str) -> asyncpg.Connection:
    """A fresh connection whose search_path is `schema`."""
    return await asyncpg.connect(dsn, timeout=5, server_settings={"search_path": schema})


async def stored_counts(dsn: str, schema: str) -> dict[str, int]:
    """Rows, distinct event ids, bars and errors in `schema` (a fresh connection each time)."""
    con = await connect_to(dsn, schema)
    try:
        row = await con.fetchrow(
            "SELECT count(*) AS events, count(DISTINCT event_id) AS ids, "
            "(SELECT count(*) FROM bars_1m) AS bars, (SELECT count(*) FROM errors) AS errors "
            "FROM events"
        )
        assert row is not None
        return dict(row.items())
    finally:
        await con.close()


async def stored_ids(dsn: str, schema: str) -> list[str]:
    """Every stored event id (with repeats, were there any)."""
    con = await connect_to(dsn, schema)
    try:
        return [r["event_id"] for r in await con.fetch("SELECT event_id FROM events")]
    finally:
        await con.close()


# -- Redis group state ----------------------------------------------------------------------------


async def group_state(client: Redis, prefix: str) -> dict[str, int]:
    """The coordinator group's pending and lag summed over both streams, and the DLQ length.

    The lag (entries not yet delivered to the group) is counted with XRANGE after the group's
    last-delivered id: XINFO's `lag` field is Redis 7 only, and the fallback server is 6.2.
    """
    pending = lag = 0
    for topic in ("events", "market"):
        stream = f"{prefix}:{topic}"
        if not await client.exists(stream):
            continue
        for info in await client.xinfo_groups(stream):
            if text(info["name"]) == GROUP:
                pending += int(info["pending"])
                after = "(" + text(info["last-delivered-id"])
                lag += len(await client.xrange(stream, min=after, max="+") or [])
    return {"pending": pending, "lag": lag, "dlq": int(await client.xlen(f"{prefix}:dlq"))}


def consumer_task_alive() -> bool:
    """True while the bus's consumer task of the coordinator group runs (it has not crashed)."""
    return any(t.get_name() == f"bus:{GROUP}" and not t.done() for t in asyncio.all_tasks())


def readiness_deps(bus: EventBus, store: Any, coordinator: Coordinator) -> HttpDeps:
    """The agent's own readiness checks (`runner.readiness_checks`) over these parts."""
    return HttpDeps(
        read_models=ReadModels(store),
        checks=readiness_checks(bus, store, coordinator),
        info={"store": "test"},
    )


async def readyz(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = await response.json()
    return response.status, body


# -- 1. the database down for 30 s while events flow ----------------------------------------------


@pytest.mark.asyncio
async def test_database_down_30_s_under_load_keeps_the_backlog_in_redis_then_stores_it_once(
    pg: PostgresCluster,
    pg_store: TimescaleStore,
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(appendonly=False)
    prefix = "outage"
    settings = StreamsSettings(prefix=prefix, consumer="coordinator-1", block_ms=100, read_count=50)
    client = Redis.from_url(
        server.url, socket_timeout=settings.socket_timeout_secs, socket_connect_timeout=2.0
    )
    probe = Redis.from_url(server.url, socket_timeout=5.0)
    bus = RedisStreamsEventBus(client, CODEC, settings)
    coordinator = Coordinator(pg_store)  # the production backoff: up to 5 s between attempts
    coordinator.attach(bus)
    http = TestClient(TestServer(make_app(readiness_deps(bus, pg_store, coordinator))))
    published: list[tuple[float, DomainEvent]] = []
    stop_producing = asyncio.Event()

    async def produce() -> None:
        """50 events a second, on schedule, until told to stop."""
        started = time.monotonic()
        n = 0
        while not stop_producing.is_set():
            event = mixed_event(n)
            await bus.publish([event])
            published.append((time.monotonic(), event))
            n += 1
            await asyncio.sleep(max(0.0, started + n / RATE_PER_SEC - time.monotonic()))

    producer: asyncio.Task[None] | None = None
    await http.start_server()
    try:
        await bus.start()
        producer = asyncio.create_task(produce())
        await eventually(lambda: coordinator.stats.events_written >= 50, "events are stored")
        status, body = await readyz(http)
        assert status == 200, body

        await asyncio.to_thread(pg.stop)
        outage_started = time.monotonic()
        await eventually(lambda: not coordinator.stats.store_up, "the coordinator sees the outage")
        await asyncio.sleep(1.0)  # /readyz may answer from a check made up to 0.5 s ago
        samples: list[dict[str, int]] = []
        while time.monotonic() - outage_started < OUTAGE_SECS:
            status, body = await readyz(http)
            assert status == 503, body
            assert not body["checks"]["store"]["ok"], body
            assert "unreachable" in body["checks"]["store"]["reason"], body
            assert not body["checks"]["coordinator"]["ok"], body
            assert body["checks"]["bus"]["ok"], body
            assert await store_check(pg_store)() is not None
            assert not coordinator.stats.store_up
            assert consumer_task_alive(), "the coordinator's consumer crashed"
            assert not producer.done(), "the producer stopped"
            state = await group_state(probe, prefix)
            assert state["pending"] > 0, state  # the batch being retried is not acknowledged
            assert state["dlq"] == 0, state  # an outage dead-letters nothing
            samples.append(state)
            await asyncio.sleep(1.0)
        outage_secs = time.monotonic() - outage_started
        await asyncio.to_thread(pg.start)
        outage_ended = time.monotonic()

        during = [e for at, e in published if outage_started <= at < outage_ended]
        assert len(during) >= 0.9 * RATE_PER_SEC * outage_secs, "publishing slowed down"
        assert samples[-1]["lag"] > samples[0]["lag"] + RATE_PER_SEC * 10, samples  # backlog grew
        assert bus.counters.failed == 0  # the handler never gave up on a batch

        await eventually(lambda: coordinator.stats.store_up, "the coordinator is back", 30.0)
        recovered_secs = time.monotonic() - outage_ended
        await eventually(lambda: readyz_ok(http), "readiness says ready again", timeout_secs=15.0)
        await asyncio.sleep(1.0)  # a little more traffic once it is back
        stop_producing.set()
        await producer
        await bus.drain(60.0)
        drained_secs = time.monotonic() - outage_ended

        events = [e for _, e in published]
        print(  # shown with -rP or on failure
            f"outage {outage_secs:.1f} s: {len(events)} events published, {len(during)} during "
            f"it; backlog {samples[0]} -> {samples[-1]}; {coordinator.stats.store_failures} "
            f"failed writes; writes back {recovered_secs:.1f} s and drained {drained_secs:.1f} s "
            "after the restart"
        )
        counts = await stored_counts(pg.dsn, pg_store.schema)
        ids = await stored_ids(pg.dsn, pg_store.schema)
        bars = [e for e in events if isinstance(e, BarsClosed)]
        assert counts == {
            "events": len(events),
            "ids": len(events),
            "bars": 2 * len(bars),
            "errors": len(events) - len(bars),
        }
        assert sorted(ids) == sorted(e.id for e in events)
        assert await group_state(probe, prefix) == {"pending": 0, "lag": 0, "dlq": 0}
        assert coordinator.stats.store_failures > 0
        assert 0 < coordinator.stats.events_written <= len(events)
    finally:
        stop_producing.set()
        if producer is not None:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        await bus.stop()
        await client.aclose()
        await probe.aclose()
        await http.close()


async def readyz_ok(http: TestClient[Any, Any]) -> bool:
    status, _ = await readyz(http)
    return status == 200


# -- 2. the coordinator SIGKILLed mid-batch -------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `coordinator_worker.py` processes; any still running are SIGKILLed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker-{len(procs)}.log").open("wb") as log:
            procs.append(
                subprocess.Popen([sys.executable, str(WORKER), *args], stdout=log, stderr=log)
            )
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def status_lines(path: Path) -> list[dict[str, Any]]:
    """The worker's status file, line by line."""
    if not path.exists():
        return []
    complete = path.read_text().split("\n")[:-1]  # the last piece may be a line being written
    return [json.loads(line) for line in complete if line.strip()]


def committed(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "batch" in line]


async def lock_waiter(con: asyncpg.Connection, schema: str) -> int | None:
    """The pid of the store's backend waiting on a lock, if one is."""
    pid: int | None = await con.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
        f"fin_agent {schema}",
    )
    return pid


@pytest.mark.asyncio
@pytest.mark.parametrize("moment", ["after_commit", "in_transaction", "after_commit_renamed"])
async def test_coordinator_killed_mid_batch_stores_every_event_once_after_restart(
    moment: str,
    pg: PostgresCluster,
    pg_store: TimescaleStore,
    redis_server_factory: RedisServerFactory,
    workers: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """after_commit: killed after the store committed a batch, before the bus acknowledged it.
    in_transaction: killed while its write waits on a lock inside the open transaction.
    after_commit_renamed: as after_commit, restarted under another consumer name (the default
    name is host-pid), which takes the dead consumer's batch over with XAUTOCLAIM.
    """
    read_count, batches = 20, 10
    server = redis_server_factory(appendonly=False)  # Redis itself does not crash here
    prefix = f"kill-{moment}"
    sync = server.client()
    probe = Redis.from_url(server.url, socket_timeout=5.0)
    events = [error_event(n, tag=moment) for n in range(read_count * batches)]
    pipe = sync.pipeline(transaction=False)
    for event in events:  # published up front: every batch is read_count entries
        entry: dict[Any, Any] = CODEC.encode(event)
        pipe.xadd(f"{prefix}:events", entry)
    pipe.execute()
    sync.close()
    schema = pg_store.schema
    status = tmp_path / "status.jsonl"
    common = [
        *("--redis-url", server.url, "--prefix", prefix, "--consumer", "coordinator-1"),
        *("--dsn", pg.dsn, "--schema", schema, "--status", str(status)),
        *("--read-count", str(read_count)),
    ]
    admin = await asyncpg.connect(pg.dsn, timeout=5)
    lock: Any = None
    try:
        if moment.startswith("after_commit"):
            first = workers(*common, "--stall-after-batch", "3")
            await eventually(
                lambda: (
                    any("stalled" in s for s in status_lines(status)) or first.poll() is not None
                ),
                "the worker committed its third batch and stalls before the ack",
                timeout_secs=30.0,
            )
            assert first.poll() is None, (tmp_path / "worker-0.log").read_text()
        else:
            first = workers(*common, "--write-delay-ms", "100")
            await eventually(
                lambda: len(committed(status_lines(status))) >= 2 or first.poll() is not None,
                "the worker committed two batches",
                timeout_secs=30.0,
            )
            assert first.poll() is None, (tmp_path / "worker-0.log").read_text()
            lock = admin.transaction()
            await lock.start()
            await admin.execute(f'LOCK TABLE "{schema}".events IN SHARE MODE')  # blocks INSERTs
            await eventually(
                lambda: lock_waiter_found(pg.dsn, schema),
                "the worker's write waits on the lock inside its transaction",
            )
        stored_before = await stored_counts(pg.dsn, schema)
        written_before = sum(line["new"] for line in committed(status_lines(status)))
        assert stored_before["events"] == written_before < len(events)
        first.send_signal(signal.SIGKILL)
        first.wait()
        if lock is not None:
            waiter = await lock_waiter(admin, schema)
            await lock.commit()  # the dead client's backend gets the lock, then rolls back
            lock = None
            await eventually(
                lambda: backend_gone(admin, waiter), "the killed worker's backend ended"
            )
        state = await group_state(probe, prefix)
        assert state["pending"] == read_count, state  # the batch it held is not acknowledged
        assert await stored_counts(pg.dsn, schema) == stored_before  # no half batch landed

        restart = ["--consumer", "coordinator-2", "--claim-idle-ms", "500"]
        second = workers(
            *common, *(restart if moment.endswith("renamed") else ()), "--until-drained"
        )
        await eventually(lambda: second.poll() is not None, "the restarted worker drains", 60.0)
        assert second.returncode == 0, (tmp_path / "worker-1.log").read_text()

        lines = status_lines(status)
        assert sum(line["new"] for line in committed(lines)) == len(events)
        counts = await stored_counts(pg.dsn, schema)
        assert counts == {
            "events": len(events),
            "ids": len(events),
            "bars": 0,
            "errors": len(events),
        }
        assert sorted(await stored_ids(pg.dsn, schema)) == sorted(e.id for e in events)
        assert await group_state(probe, prefix) == {"pending": 0, "lag": 0, "dlq": 0}
        done = lines[-1]["done"]
        assert done["store_failures"] == 0
        if moment.startswith("after_commit"):  # the committed batch came again: not doubled
            assert done["duplicates_skipped"] == read_count
    finally:
        if lock is not None:
            await lock.rollback()
        await admin.close()
        await probe.aclose()


async def lock_waiter_found(dsn: str, schema: str) -> bool:
    con = await asyncpg.connect(dsn, timeout=5)
    try:
        return await lock_waiter(con, schema) is not None
    finally:
        await con.close()


async def backend_gone(con: asyncpg.Connection, pid: int | None) -> bool:
    return not await con.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)


# -- 3. a DuckDB store whose writes fail for a while ----------------------------------------------


class FlakyStore:
    """A DuckDBStore whose first `failures` writes raise `AdapterError` (transient)."""

    def __init__(self, inner: DuckDBStore, failures: int) -> None:
        self._inner = inner
        self.failures_left = failures
        self.attempts = 0

    async def write(self, events: Sequence[DomainEvent]) -> int:
        self.attempts += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise AdapterError("DuckDB store test.duckdb: write failed (disk I/O error): retry")
        return await self._inner.write(events)

    async def migrate(self) -> StoreInfo:
        return await self._inner.migrate()

    async def events(self, **filters: Any) -> Sequence[DomainEvent]:
        return await self._inner.events(**filters)

    async def rows(self, table: str, **filters: Any) -> Sequence[Row]:
        return await self._inner.rows(table, **filters)

    async def days(self) -> Sequence[date]:
        return await self._inner.days()

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()


FAILURES = 8


@pytest_asyncio.fixture
async def flaky(tmp_path: Path) -> AsyncIterator[FlakyStore]:
    inner = DuckDBStore(tmp_path / "store.duckdb", CODEC)
    await inner.migrate()
    store = FlakyStore(inner, FAILURES)
    try:
        yield store
    finally:
        await store.close()


async def assert_stored_once(store: FlakyStore, events: Sequence[DomainEvent]) -> None:
    stored = await store.events()
    assert sorted(e.id for e in stored) == sorted(e.id for e in events)
    bars = sum(len(e.bars) for e in events if isinstance(e, BarsClosed))
    assert len(await store.rows("bars_1m")) == bars


@pytest.mark.asyncio
async def test_duckdb_write_failing_for_a_while_is_retried_in_place_on_the_in_memory_bus(
    flaky: FlakyStore,
) -> None:
    bus = InMemoryEventBus()
    coordinator = Coordinator(cast(Any, flaky), max_backoff_secs=0.1)
    coordinator.attach(bus)
    await bus.start()
    events = [mixed_event(n) for n in range(30)]
    deps = readiness_deps(bus, flaky, coordinator)

    publishing = asyncio.create_task(bus.publish(events))  # returns once the batch is stored
    try:
        await eventually(lambda: flaky.attempts >= 2, "the store failed twice")
        assert not publishing.done()  # the in-process bus waits on its batch group
        assert not coordinator.stats.store_up
        assert "disk I/O error" in (await deps.checks["coordinator"]() or "")
        assert await deps.checks["store"]() is None  # reads still work: only writes fail
        await asyncio.wait_for(asyncio.shield(publishing), 30.0)
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)  # no exception left unread

    assert coordinator.stats.store_up
    assert await deps.checks["coordinator"]() is None
    assert flaky.attempts == FAILURES + 1
    assert coordinator.stats.store_failures == FAILURES
    assert coordinator.stats.batches == 1
    assert coordinator.stats.events_written == len(events)
    await assert_stored_once(flaky, events)


@pytest.mark.asyncio
async def test_duckdb_write_failing_for_a_while_is_retried_in_place_on_redis(
    flaky: FlakyStore, redis_server_factory: RedisServerFactory
) -> None:
    server = redis_server_factory(appendonly=False)
    prefix = "flaky"
    settings = StreamsSettings(prefix=prefix, consumer="coordinator-1", block_ms=50, read_count=500)
    client = Redis.from_url(server.url, socket_timeout=settings.socket_timeout_secs)
    probe = Redis.from_url(server.url, socket_timeout=5.0)
    bus = RedisStreamsEventBus(client, CODEC, settings)
    coordinator = Coordinator(cast(Any, flaky), max_backoff_secs=0.1)
    coordinator.attach(bus)
    events = [mixed_event(n) for n in range(90)]
    try:
        await bus.start()
        await bus.publish(events)  # returns at once: Redis holds them
        await eventually(lambda: flaky.attempts >= 2, "the store failed twice")
        assert not coordinator.stats.store_up
        state = await group_state(probe, prefix)
        assert state["pending"] > 0, state
        assert state["dlq"] == 0, state
        await bus.drain(30.0)

        assert coordinator.stats.store_up
        assert coordinator.stats.store_failures == FAILURES
        assert coordinator.stats.events_written == len(events)
        assert bus.counters.failed == 0  # retried in place, never failed back to the bus
        assert bus.counters.delivered == len(events)  # nothing was delivered twice
        assert await group_state(probe, prefix) == {"pending": 0, "lag": 0, "dlq": 0}
        await assert_stored_once(flaky, events)
    finally:
        await bus.stop()
        await client.aclose()
        await probe.aclose()
