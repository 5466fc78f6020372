"""RedisStreamsEventBus on a real redis-server: reclaim, dead letters, dedupe, trim, back-pressure.

Each test gets its own throwaway server (`redis_url`), so one stream prefix serves them all. Timings
are small (BLOCK 50 ms, claim after 200 ms idle) and every wait is a bounded poll, never a sleep.
Crashes of a consumer process and of Redis itself are in `test_redis_bus_crash.py`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from fin_agent.adapters.codec.event_codec import DecodeError, EventCodec, default_registry
from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.dead_letters import RedisDeadLetters
from fin_agent.adapters.redis.streams import StreamsSettings, text
from fin_agent.domain.events import BarsClosed, DomainEvent, ErrorRaised
from fin_agent.domain.values import Bar, Symbol

OCCURRED_AT = datetime(2025, 3, 3, 14, 45, tzinfo=UTC)
PREFIX = "t"
EVENTS_KEY = f"{PREFIX}:events"
CODEC = EventCodec(default_registry())
FAST = StreamsSettings(
    prefix=PREFIX,
    consumer="live",
    block_ms=50,
    read_count=50,
    claim_idle_ms=200,
    claim_interval_secs=0.1,
)

MakeBus = Callable[..., RedisStreamsEventBus]
Reply = Any  # redis-py's reply types are too wide to help: read as Any, checked by use (as in src)


def error_event(n: int, *, source: str = "test") -> ErrorRaised:
    """An `error.raised` event with a deterministic id: the test's unit of traffic."""
    return ErrorRaised(
        id=ErrorRaised.id_for(f"bus-test-{n}"),
        occurred_at=OCCURRED_AT,
        trading_day=OCCURRED_AT.date(),
        source=source,
        code="test.event",
        message=f"event {n}",
    )


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_secs: float = 10.0
) -> None:
    """Poll `condition` (sync or async) every 10 ms until true; fail after `timeout_secs`."""
    deadline = time.monotonic() + timeout_secs
    while True:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        await asyncio.sleep(0.01)


def recorder(into: list[str]) -> Callable[[DomainEvent], Awaitable[None]]:
    """A handler appending each event's id to `into`."""

    async def record(event: DomainEvent) -> None:
        into.append(event.id)

    return record


async def xadd_raw(raw: Redis, fields: dict[str, str], stream: str = EVENTS_KEY) -> str:
    """XADD `fields` as they are (a retried XADD, or junk from another producer)."""
    entry: dict[Any, Any] = fields
    return text(await raw.xadd(stream, entry))


def decoded(fields: Reply) -> dict[str, str]:
    return {text(k): text(v) for k, v in fields.items()}


# -- reclaiming a dead consumer's entries ----------------------------------------------------------


@pytest.mark.asyncio
async def test_entries_read_by_a_dead_consumer_are_reclaimed_and_handled_by_a_live_one(
    make_bus: MakeBus, raw: Redis
) -> None:
    events = [error_event(n) for n in range(30)]
    await raw.xgroup_create(EVENTS_KEY, "workers", id="0", mkstream=True)
    for event in events:
        await xadd_raw(raw, CODEC.encode(event))
    taken: Reply = await raw.xreadgroup("workers", "dead", {EVENTS_KEY: ">"}, count=100)
    assert len(taken[0][1]) == len(events)  # all pending on "dead", which never acks
    handled: list[str] = []
    bus = make_bus()
    bus.subscribe("workers", ["*"], recorder(handled))

    await bus.start()
    await bus.drain(timeout_secs=10)

    assert handled == [e.id for e in events]
    assert bus.counters.claimed == len(events)
    assert (await raw.xpending(EVENTS_KEY, "workers"))["pending"] == 0


# -- dead letters ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_poison_entry_is_dead_lettered_after_max_deliveries_and_replays_once_fixed(
    make_bus: MakeBus, raw: Redis
) -> None:
    events = [error_event(n) for n in range(10)]
    poison = events[4]
    calls: Counter[str] = Counter()
    handled: list[str] = []
    fixed = False

    async def fragile(event: DomainEvent) -> None:
        if not isinstance(event, ErrorRaised) or event.source != "test":
            return  # the bus's own error.raised events
        calls[event.id] += 1
        if event.id == poison.id and not fixed:
            raise RuntimeError("handler bug")
        handled.append(event.id)

    alerts: list[ErrorRaised] = []

    async def alert(event: DomainEvent) -> None:
        if isinstance(event, ErrorRaised) and event.source != "test":
            alerts.append(event)

    bus = make_bus(max_deliveries=3)
    bus.subscribe("worker", [ErrorRaised.TYPE], fragile)
    bus.subscribe("alerts", [ErrorRaised.TYPE], alert)
    dead_letters = RedisDeadLetters(raw, bus.settings)
    await bus.start()

    await bus.publish(events)

    async def dead_lettered() -> bool:
        return await dead_letters.count() == 1

    await eventually(dead_lettered, "the poison entry is dead-lettered")
    await bus.drain(timeout_secs=10)

    rows: Reply = await raw.xrange(EVENTS_KEY)
    poison_entry = next(text(i) for i, f in rows if f[b"id"] == poison.id.encode())
    assert calls[poison.id] == 3
    assert handled == [e.id for e in events if e is not poison]
    [letter] = await dead_letters.oldest()
    assert letter == await dead_letters.get(letter.id)
    assert (letter.reason, letter.group, letter.stream) == ("max_deliveries", "worker", EVENTS_KEY)
    assert (letter.entry_id, letter.deliveries) == (poison_entry, 4)
    assert letter.fields == CODEC.encode(poison)
    [dead_letter_alert] = alerts
    assert dead_letter_alert.code == "dead_letter.max_deliveries"
    assert dead_letter_alert.source == "bus:worker"
    assert poison_entry in dead_letter_alert.message
    assert (bus.counters.failed, bus.counters.dead_lettered) == (3, 1)

    fixed = True
    await dead_letters.replay([letter.id])
    await bus.drain(timeout_secs=10)

    assert calls[poison.id] == 4
    assert handled == [e.id for e in events if e is not poison] + [poison.id]
    assert await dead_letters.count() == 0
    assert bus.counters.dead_lettered == 1


def garbage_entries() -> list[tuple[str, dict[str, str]]]:
    """Entries a consumer cannot decode, each with the codec's reason."""
    valid = CODEC.encode(error_event(100))
    data = json.loads(valid["data"])
    del data["code"]
    return [
        ("garbage", {"hello": "world"}),
        ("unknown_type", {**valid, "type": "no.such_event"}),
        ("unknown_version", {**valid, "v": "99"}),
        ("missing_field", {**valid, "data": json.dumps(data)}),
        ("garbage", {k: v for k, v in valid.items() if k != "id"}),
    ]


@pytest.mark.asyncio
async def test_undecodable_entries_are_dead_lettered_with_the_codec_reason_and_others_handled(
    make_bus: MakeBus, raw: Redis
) -> None:
    junk = garbage_entries()
    events = [error_event(n) for n in range(len(junk) + 1)]
    await raw.xgroup_create(EVENTS_KEY, "worker", id="0", mkstream=True)
    junk_ids: list[str] = []
    for event, (_, fields) in zip(events, junk, strict=False):
        await xadd_raw(raw, CODEC.encode(event))
        junk_ids.append(await xadd_raw(raw, fields))
    await xadd_raw(raw, CODEC.encode(events[-1]))
    handled: list[str] = []
    alerts: list[ErrorRaised] = []

    async def record(event: DomainEvent) -> None:
        if isinstance(event, ErrorRaised) and event.source != "test":
            alerts.append(event)
        else:
            handled.append(event.id)

    bus = make_bus()
    bus.subscribe("worker", ["*"], record)
    dead_letters = RedisDeadLetters(raw, bus.settings)

    await bus.start()
    await bus.drain(timeout_secs=10)

    assert handled == [e.id for e in events]
    letters = await dead_letters.oldest()
    assert [(x.entry_id, x.reason, dict(x.fields)) for x in letters] == [
        (entry_id, reason, fields)
        for entry_id, (reason, fields) in zip(junk_ids, junk, strict=True)
    ]
    for letter, (_, fields) in zip(letters, junk, strict=True):
        with pytest.raises(DecodeError) as codec_says:
            CODEC.decode(fields)
        assert (letter.reason, letter.detail) == (codec_says.value.reason, str(codec_says.value))
        assert letter.deliveries == 1
    assert [a.code for a in alerts] == [f"dead_letter.{reason}" for reason, _ in junk]
    assert bus.counters.dead_lettered == len(junk)
    assert (await raw.xpending(EVENTS_KEY, "worker"))["pending"] == 0


# -- trimming --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_trim_keeps_every_entry_a_lagging_group_has_not_acked_then_removes_them(
    make_bus: MakeBus, raw: Redis
) -> None:
    events = [error_event(n) for n in range(30)]
    encoded = [CODEC.encode(e) for e in events]
    clock = FixedClock(datetime.now(UTC) + timedelta(hours=1))  # retention alone would trim all
    bus = make_bus(clock)
    bus.subscribe("fast", [ErrorRaised.TYPE], recorder([]))
    await bus.start()
    await raw.xgroup_create(EVENTS_KEY, "slow", id="0")
    await bus.publish(events)
    await bus.drain(timeout_secs=10)  # "fast" has handled and acked everything

    assert await bus.trim() == {EVENTS_KEY: 0}  # "slow" has read nothing yet

    reply: Reply = await raw.xreadgroup("slow", "s1", {EVENTS_KEY: ">"}, count=20)
    [[_, read]] = reply
    await raw.xack(EVENTS_KEY, "slow", *[entry_id for entry_id, _ in read[:10]])

    assert await bus.trim() == {EVENTS_KEY: 10}

    reply = await raw.xreadgroup("slow", "s1", {EVENTS_KEY: "0"}, count=100)
    [[_, pending]] = reply
    assert [entry_id for entry_id, _ in pending] == [entry_id for entry_id, _ in read[10:]]
    assert all(fields for _, fields in pending)  # redis-py reads a trimmed entry as {}
    assert [decoded(fields) for _, fields in pending] == encoded[10:20]
    rows: Reply = await raw.xrange(EVENTS_KEY)
    assert [decoded(f) for _, f in rows] == encoded[10:]

    reply = await raw.xreadgroup("slow", "s1", {EVENTS_KEY: ">"}, count=100)
    [[_, rest]] = reply
    assert [decoded(fields) for _, fields in rest] == encoded[20:]
    await raw.xack(EVENTS_KEY, "slow", *[entry_id for entry_id, _ in pending + rest])

    assert await bus.trim() == {EVENTS_KEY: 20}
    assert await raw.xlen(EVENTS_KEY) == 0


# -- duplicates ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_entry_added_twice_in_one_batch_is_handled_once(
    make_bus: MakeBus, raw: Redis
) -> None:
    event = error_event(1)
    await raw.xgroup_create(EVENTS_KEY, "worker", id="0", mkstream=True)
    await xadd_raw(raw, CODEC.encode(event))
    await xadd_raw(raw, CODEC.encode(event))  # a retried XADD whose first attempt got through
    handled: list[str] = []
    bus = make_bus()
    bus.subscribe("worker", ["*"], recorder(handled))

    await bus.start()
    await bus.drain(timeout_secs=10)

    assert handled == [event.id]
    assert bus.counters.duplicates == 1
    assert await raw.xlen(EVENTS_KEY) == 2


@pytest.mark.asyncio
async def test_entry_added_again_after_it_was_handled_is_skipped(
    make_bus: MakeBus, raw: Redis
) -> None:
    event = error_event(1)
    handled: list[str] = []
    bus = make_bus()
    bus.subscribe("worker", ["*"], recorder(handled))
    await bus.start()
    await bus.publish([event])
    await bus.drain(timeout_secs=10)

    await xadd_raw(raw, CODEC.encode(event))
    await bus.drain(timeout_secs=10)

    assert handled == [event.id]
    assert bus.counters.duplicates == 1


@pytest.mark.asyncio
async def test_entry_added_again_is_skipped_by_a_new_consumer_of_the_group(
    make_bus: MakeBus, raw: Redis
) -> None:
    event = error_event(1)
    handled: list[str] = []
    first = make_bus(consumer="first")
    first.subscribe("worker", ["*"], recorder(handled))
    await first.start()
    await first.publish([event])
    await first.drain(timeout_secs=10)
    await first.stop()

    await xadd_raw(raw, CODEC.encode(event))
    second = make_bus(consumer="second")  # no local memory of the first: the seen set decides
    second.subscribe("worker", ["*"], recorder(handled))
    await second.start()
    await second.drain(timeout_secs=10)

    assert handled == [event.id]
    assert second.counters.duplicates == 1


# -- back-pressure ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_publish_waits_while_a_group_lags_and_drops_nothing(
    make_bus: MakeBus, raw: Redis
) -> None:
    events = [error_event(n) for n in range(40)]
    gate = asyncio.Event()
    handled: list[str] = []

    async def stuck(event: DomainEvent) -> None:
        await gate.wait()
        handled.append(event.id)

    bus = make_bus(max_lag=5)
    bus.subscribe("slow", ["*"], stuck)
    await bus.start()

    async def produce() -> None:
        for event in events:
            await bus.publish([event])
            await asyncio.sleep(0.02)  # a steady producer, slower than the bus's lag checks

    producer = asyncio.create_task(produce())
    await eventually(lambda: bus.counters.backpressure_waits > 0, "publish meets back-pressure")
    waits, published = bus.counters.backpressure_waits, bus.counters.published
    await eventually(lambda: bus.counters.backpressure_waits >= waits + 2, "publish keeps waiting")

    assert not producer.done()
    assert bus.counters.published == published < len(events)

    gate.set()
    await asyncio.wait_for(producer, timeout=10)
    await bus.drain(timeout_secs=10)

    # every event is there, plus the one warning that said producers were being held back
    assert bus.counters.published == len(events)
    assert await raw.xlen(EVENTS_KEY) == len(events) + 1
    entries: Reply = await raw.xrange(EVENTS_KEY)
    alerts = [e for e in entries if "bus.backpressure" in decoded(e[1])["data"]]
    assert len(alerts) == 1
    ids = {e.id for e in events}
    assert [h for h in handled if h in ids] == [e.id for e in events]
    assert len(handled) == len(events) + 1  # the warning reached the "*" group too


# -- bugs found while testing, now fixed ----------------------------------------------------------


@pytest.mark.asyncio
async def test_publish_of_a_batch_larger_than_max_in_flight_completes(
    make_bus: MakeBus, raw: Redis
) -> None:
    events = [error_event(n) for n in range(5)]
    bus = make_bus(max_in_flight=4)
    bus.subscribe("worker", ["*"], recorder([]))
    await bus.start()

    await asyncio.wait_for(bus.publish(events), timeout=2)

    assert await raw.xlen(EVENTS_KEY) == len(events)


@pytest.mark.asyncio
async def test_entries_over_max_deliveries_are_dead_lettered_among_other_consumers_pending(
    make_bus: MakeBus, raw: Redis
) -> None:
    events = [error_event(n) for n in range(22)]
    first, others, last = events[0], events[1:-1], events[-1]
    await raw.xgroup_create(EVENTS_KEY, "worker", id="0", mkstream=True)
    for event in events:
        await xadd_raw(raw, CODEC.encode(event))
    await raw.xreadgroup("worker", "live", {EVENTS_KEY: ">"}, count=1)
    await raw.xreadgroup("worker", "other", {EVENTS_KEY: ">"}, count=len(others))
    await raw.xreadgroup("worker", "live", {EVENTS_KEY: ">"}, count=1)
    # "live"'s handler failed on both, three times each (what the bus counts in its failures)
    pending = await raw.xpending_range(EVENTS_KEY, "worker", "-", "+", 100, consumername="live")
    ids = [text(row["message_id"]) for row in pending if not isinstance(row["message_id"], int)]
    await raw.hset(f"{PREFIX}:failures:worker", mapping=dict.fromkeys(ids, 3))
    handled: list[str] = []
    bus = make_bus(consumer="live", max_deliveries=3, claim_idle_ms=60_000)
    bus.subscribe("worker", ["*"], recorder(handled))
    dead_letters = RedisDeadLetters(raw, bus.settings)

    await bus.start()
    await eventually(
        lambda: bus.counters.dead_lettered + bus.counters.handled >= 2,
        "both entries are dealt with",
    )

    assert [(x.fields["id"], x.reason) for x in await dead_letters.oldest()] == [
        (first.id, "max_deliveries"),
        (last.id, "max_deliveries"),
    ]
    assert last.id not in handled


@pytest.mark.asyncio
async def test_entries_read_again_by_many_restarts_are_handled_not_dead_lettered(
    make_bus: MakeBus, raw: Redis
) -> None:
    """An agent killed over and over re-reads its pending entries at each start: only a
    handler's failure counts towards max_deliveries, never a death between read and ack."""
    events = [error_event(n) for n in range(5)]
    await raw.xgroup_create(EVENTS_KEY, "worker", id="0", mkstream=True)
    for event in events:
        await xadd_raw(raw, CODEC.encode(event))
    await raw.xreadgroup("worker", "fixed", {EVENTS_KEY: ">"}, count=len(events))
    for _ in range(8):  # eight starts of the same consumer, each killed before it acked
        await raw.xreadgroup("worker", "fixed", {EVENTS_KEY: "0"}, count=10)
    handled: list[str] = []
    bus = make_bus(consumer="fixed", max_deliveries=3)
    bus.subscribe("worker", ["*"], recorder(handled))

    await bus.start()
    await eventually(lambda: len(handled) == len(events), "every entry is handled")

    assert handled == [e.id for e in events]
    assert bus.counters.dead_lettered == 0


@pytest.mark.asyncio
async def test_start_returns_while_a_taken_over_entry_waits_for_the_app(
    make_bus: MakeBus, raw: Redis
) -> None:
    """A restarted agent takes over its predecessor's pending entries in the group's own task:
    a handler that waits for the app (the agent's closed gate) cannot hold up `start()`."""
    events = [error_event(n) for n in range(3)]
    await raw.xgroup_create(EVENTS_KEY, "worker", id="0", mkstream=True)
    for event in events:
        await xadd_raw(raw, CODEC.encode(event))
    await raw.xreadgroup("worker", "killed-predecessor", {EVENTS_KEY: ">"}, count=len(events))
    gate = asyncio.Event()
    handled: list[str] = []

    async def gated(event: DomainEvent) -> None:
        await gate.wait()
        handled.append(event.id)

    bus = make_bus(consumer="successor", take_over_on_start=True, claim_idle_ms=3_600_000)
    bus.subscribe("worker", ["*"], gated)

    await asyncio.wait_for(bus.start(), timeout=5)
    gate.set()
    await eventually(lambda: len(handled) == len(events), "the taken-over entries are handled")

    assert handled == [e.id for e in events]


class PausingRedis(Redis):
    """A real client that runs `pause()` once, right after its next XINFO GROUPS reply arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pause: Callable[[], Awaitable[None]] | None = None

    async def xinfo_groups(self, name: Any) -> Any:
        reply = await super().xinfo_groups(name)
        pause, self.pause = self.pause, None
        if pause is not None:
            await pause()
        return reply


def bars_event(n: int) -> BarsClosed:
    bar = Bar(
        symbol=Symbol("ACME"),
        start=OCCURRED_AT,
        open=Decimal("10.00"),
        high=Decimal("10.50"),
        low=Decimal("9.90"),
        close=Decimal("10.25"),
        volume=1000 + n,
    )
    return BarsClosed(
        id=BarsClosed.id_for(f"bus-test-{n}"),
        occurred_at=OCCURRED_AT,
        trading_day=OCCURRED_AT.date(),
        bars=(bar,),
    )


@pytest.mark.asyncio
async def test_drain_waits_for_a_follow_up_published_while_it_checks_the_groups(
    make_bus: MakeBus, raw: Redis, redis_url: str
) -> None:
    effect = error_event(1)
    reacting, go = asyncio.Event(), asyncio.Event()
    ledger: list[str] = []

    async def store(event: DomainEvent) -> None:
        await asyncio.sleep(0.2)  # a slow write: the ledger is still busy when drain returns
        ledger.append(event.id)

    async def react(event: DomainEvent) -> None:
        reacting.set()
        await go.wait()
        await bus.publish([effect])

    pausing = PausingRedis.from_url(redis_url, socket_timeout=FAST.socket_timeout_secs)
    assert isinstance(pausing, PausingRedis)
    bus = make_bus(client=pausing)
    bus.subscribe("ledger", [ErrorRaised.TYPE], store)  # drain checks it first
    bus.subscribe("reactor", [BarsClosed.TYPE], react)  # bars in, an event out: another stream
    await bus.start()
    await bus.publish([bars_event(1)])
    await eventually(reacting.is_set, "the reactor is handling the bar")

    async def reactor_acked() -> bool:
        return int((await raw.xpending(f"{PREFIX}:market", "reactor"))["pending"]) == 0

    async def reactor_finishes_between_the_checks() -> None:
        go.set()
        await eventually(reactor_acked, "the reactor published its event and acked the bar")

    pausing.pause = reactor_finishes_between_the_checks  # drain's first XINFO GROUPS: "ledger"
    await bus.drain(timeout_secs=10)

    assert ledger == [effect.id]


@pytest.mark.asyncio
async def test_own_pending_entry_deleted_under_the_consumer_is_acked_and_logged_not_dead_lettered(
    make_bus: MakeBus, raw: Redis
) -> None:
    await raw.xgroup_create(EVENTS_KEY, "worker", id="0", mkstream=True)
    deleted = await xadd_raw(raw, CODEC.encode(error_event(1)))
    await raw.xreadgroup("worker", "live", {EVENTS_KEY: ">"}, count=10)
    await raw.xdel(EVENTS_KEY, deleted)  # as a MAXLEN trim by another tool would
    bus = make_bus(consumer="live")
    bus.subscribe("worker", ["*"], recorder([]))
    dead_letters = RedisDeadLetters(raw, bus.settings)

    with capture_logs() as logs:
        await bus.start()
        await bus.drain(timeout_secs=10)

    assert [x["event"] for x in logs if x["log_level"] == "error"] == ["bus_entry_deleted"]
    assert await dead_letters.count() == 0


async def ignore_batch(batch: Sequence[DomainEvent]) -> None:
    """A batch handler that does nothing."""


def test_subscribe_refuses_a_group_that_is_already_a_batch_group(make_bus: MakeBus) -> None:
    bus = make_bus()
    bus.subscribe_batch("store", [ErrorRaised.TYPE], ignore_batch)

    with pytest.raises(ValueError, match="batch"):
        bus.subscribe("store", [ErrorRaised.TYPE], recorder([]))
