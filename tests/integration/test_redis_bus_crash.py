"""RedisStreamsEventBus through crashes: a consumer process SIGKILLed mid-batch, Redis killed.

The consumer is `bus_worker.py` in a subprocess; it fsyncs each handled id to a file, so the file
tells exactly what was handled before a SIGKILL. Redis crashes use the servers of
`redis_server_factory`: killed and restarted on its AOF, or restarted with no data at all.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.domain.events import DomainEvent, ErrorRaised

WORKER = Path(__file__).with_name("bus_worker.py")
OCCURRED_AT = datetime(2025, 3, 3, 14, 45, tzinfo=UTC)
PREFIX = "crash"
EVENTS_KEY = f"{PREFIX}:events"
CODEC = EventCodec(default_registry())
READ_COUNT = 20

RedisServerFactory = Callable[..., Any]  # see tests/integration/conftest.py


def error_event(n: int) -> ErrorRaised:
    """An `error.raised` event with a deterministic id: the test's unit of traffic."""
    return ErrorRaised(
        id=ErrorRaised.id_for(f"crash-test-{n}"),
        occurred_at=OCCURRED_AT,
        trading_day=OCCURRED_AT.date(),
        source="test",
        code="test.event",
        message=f"event {n}",
    )


def wait_until(condition: Callable[[], bool], what: str, timeout_secs: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        time.sleep(0.005)


async def eventually(condition: Callable[[], bool], what: str, timeout_secs: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        await asyncio.sleep(0.01)


# -- a consumer process killed mid-batch -----------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `bus_worker.py` processes (output in tmp_path); any still running are SIGKILLed."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(url: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        args = [sys.executable, str(WORKER), "--url", url, "--prefix", PREFIX, "--out", str(out)]
        args += ["--group", "recorder", "--consumer", "worker-1", *extra]
        with log:
            procs.append(subprocess.Popen(args, stdout=log, stderr=log))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_consumer_killed_mid_batch_loses_nothing_after_restart_under_the_same_name(
    redis_server_factory: RedisServerFactory,
    workers: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    server = redis_server_factory(appendonly=False)  # Redis itself does not crash here
    client = server.client()
    events = [error_event(n) for n in range(10 * READ_COUNT)]
    pipe = client.pipeline(transaction=False)
    for event in events:  # published before the worker starts: every batch is READ_COUNT entries
        entry: dict[Any, Any] = CODEC.encode(event)
        pipe.xadd(EVENTS_KEY, entry)
    entry_ids = [i.decode() for i in pipe.execute()]
    event_of = dict(zip(entry_ids, (e.id for e in events), strict=True))
    out = tmp_path / "handled.txt"
    first = workers(server.url, out, "--handle-ms", "10", "--read-count", str(READ_COUNT))

    wait_until(
        lambda: len(lines_of(out)) >= 2 * READ_COUNT + READ_COUNT // 2 or first.poll() is not None,
        "the worker is half-way through its third batch",
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    handled_before = lines_of(out)
    unacked = {
        event_of[row["message_id"].decode()]
        for row in client.xpending_range(EVENTS_KEY, "recorder", "-", "+", count=1000)
    }

    assert first.returncode == -signal.SIGKILL
    assert 0 < len(unacked) <= READ_COUNT  # killed holding a batch it had not acknowledged
    assert len(handled_before) < len(events)

    second = workers(server.url, out, "--read-count", str(READ_COUNT), "--until-drained")
    assert second.wait(timeout=30) == 0, (tmp_path / "worker-1.log").read_text()

    handled = Counter(lines_of(out))
    duplicated = {event_id for event_id, times in handled.items() if times > 1}
    assert set(handled) == {e.id for e in events}
    assert max(handled.values()) <= 2
    assert duplicated == unacked & set(handled_before)
    assert len(duplicated) <= READ_COUNT
    assert client.xpending(EVENTS_KEY, "recorder")["pending"] == 0
    client.close()


# -- Redis crashes under a running bus -------------------------------------------------------------


@pytest_asyncio.fixture
async def buses() -> AsyncIterator[Callable[[str], RedisStreamsEventBus]]:
    """Build buses as bootstrap does (redis-py's default retries); stop and close them after."""
    made: list[tuple[RedisStreamsEventBus, Redis]] = []

    def factory(url: str) -> RedisStreamsEventBus:
        settings = StreamsSettings(
            prefix=PREFIX, consumer="live", block_ms=50, claim_idle_ms=200, claim_interval_secs=0.1
        )
        client = Redis.from_url(
            url, socket_timeout=settings.socket_timeout_secs, socket_connect_timeout=5.0
        )
        made.append((RedisStreamsEventBus(client, CODEC, settings), client))
        return made[-1][0]

    yield factory
    for bus, client in made:
        await bus.stop()
        await client.aclose()


def counting(into: Counter[str]) -> Callable[[DomainEvent], Awaitable[None]]:
    async def count(event: DomainEvent) -> None:
        into[event.id] += 1

    return count


@pytest.mark.asyncio
async def test_bus_reconnects_after_redis_is_killed_and_restarted_from_its_aof(
    redis_server_factory: RedisServerFactory, buses: Callable[[str], RedisStreamsEventBus]
) -> None:
    server = redis_server_factory(appendonly=True)
    before = [error_event(n) for n in range(30)]
    after = [error_event(n) for n in range(30, 60)]
    handled: Counter[str] = Counter()
    bus = buses(server.url)
    bus.subscribe("recorder", ["*"], counting(handled))
    await bus.start()
    await bus.publish(before)
    await bus.drain(timeout_secs=10)
    await asyncio.sleep(1.5)  # appendfsync everysec: the acks are on disk after ~1 s

    server.kill()
    await eventually(lambda: not bus.connected, "the bus notices Redis is gone")
    await asyncio.to_thread(server.start)
    await eventually(lambda: bus.connected, "the bus reconnects by itself")
    await bus.publish(after)
    await bus.drain(timeout_secs=15)

    assert bus.connected
    assert bus.counters.reconnects > 0
    assert bus.counters.groups_recreated == 0  # the AOF brought the group back
    assert handled == Counter(e.id for e in before + after)  # each exactly once
    check = server.client()
    assert check.xlen(EVENTS_KEY) == len(before) + len(after)
    check.close()


@pytest.mark.asyncio
async def test_bus_recreates_its_groups_when_redis_restarts_without_its_data(
    redis_server_factory: RedisServerFactory, buses: Callable[[str], RedisStreamsEventBus]
) -> None:
    server = redis_server_factory(appendonly=True)
    before = [error_event(n) for n in range(10)]
    after = [error_event(n) for n in range(10, 20)]
    handled: Counter[str] = Counter()
    bus = buses(server.url)
    bus.subscribe("recorder", ["*"], counting(handled))
    await bus.start()
    await bus.publish(before)
    await bus.drain(timeout_secs=10)

    await asyncio.to_thread(server.stop)
    for child in server.folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    await asyncio.to_thread(server.start)
    await eventually(lambda: bus.counters.groups_recreated > 0, "the bus recreates its group")
    await bus.publish(after)
    await bus.drain(timeout_secs=15)

    ours = {e.id for e in before + after}
    assert Counter({i: n for i, n in handled.items() if i in ours}) == Counter(ours)
    assert bus.counters.data_losses == 1
    # ... and said so on the bus: an error.raised each for the loss and the republish
    assert len(handled) - len(ours) == 2
    check = server.client()
    assert check.xlen(EVENTS_KEY) == len(after) + 2  # the data really was gone
    check.close()
