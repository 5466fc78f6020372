"""What the bus acknowledges, on a real redis-server: never what did not commit.

- a handler's publishes travel with its entry's acknowledgement: a failing handler sends nothing;
- a batch handler that raises leaves its whole batch pending, and it is delivered again;
- a batch handler's `RejectedEvents` dead-letters just those, the rest is acknowledged;
- the one active instance takes over every pending entry of its groups at start, at once;
- `drain` waits for the groups named, as long as it takes, and a missing group is behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis

from fin_agent.adapters.redis.streams import text
from fin_agent.domain.errors import DeadlineError
from fin_agent.domain.events import DomainEvent, ErrorRaised
from fin_agent.ports.event_bus import RejectedEvents
from integration.test_redis_bus import (
    EVENTS_KEY,
    PREFIX,
    MakeBus,
    Reply,
    error_event,
    eventually,
)

pytestmark = pytest.mark.asyncio


async def test_a_failing_handler_sends_none_of_what_it_published(
    make_bus: MakeBus, raw: Redis
) -> None:
    bus = make_bus()
    attempts: list[str] = []
    followed: list[str] = []

    async def decide(event: DomainEvent) -> None:
        if event.id != error_event(0).id:
            return
        attempts.append(event.id)
        await bus.publish([error_event(100 + len(attempts), source="decision")])
        if len(attempts) == 1:
            raise RuntimeError("the handler died after publishing")

    async def follow(event: DomainEvent) -> None:
        followed.append(event.id)

    bus.subscribe("decider", ["error.raised"], decide)
    bus.subscribe("follower", ["error.raised"], follow)
    await bus.start()

    await bus.publish([error_event(0)])
    await eventually(lambda: len(attempts) == 2, "the failed entry is delivered again")
    await bus.drain(timeout_secs=10)

    assert error_event(101).id not in followed  # published by the failed attempt: never sent
    assert error_event(102).id in followed  # published by the attempt that succeeded
    entries: Reply = await raw.xrange(EVENTS_KEY)
    sources = [text(f[b"id"]) for _, f in entries]
    assert sources.count(error_event(102).id) == 1
    assert error_event(101).id not in sources


async def test_a_batch_whose_handler_raises_stays_pending_and_comes_again(
    make_bus: MakeBus, raw: Redis
) -> None:
    bus = make_bus(claim_idle_ms=100)
    written: list[str] = []
    failures = 0

    async def store(events: Sequence[DomainEvent]) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise PermissionError("INSERT privilege revoked")
        written.extend(e.id for e in events)

    bus.subscribe_batch("coordinator", ["*"], store)
    await bus.start()
    events = [error_event(n) for n in range(20)]
    await bus.publish(events)

    await eventually(lambda: failures == 2, "the handler failed twice")
    groups: Reply = await raw.xinfo_groups(EVENTS_KEY)
    assert int(groups[0]["pending"]) > 0  # nothing of a failed batch was acknowledged
    await bus.drain(timeout_secs=10)

    assert sorted(written) == sorted(e.id for e in events)
    assert await raw.xlen(f"{PREFIX}:dlq") == 0


async def test_rejected_events_of_a_batch_are_dead_lettered_and_the_rest_acknowledged(
    make_bus: MakeBus, raw: Redis
) -> None:
    bus = make_bus()
    written: list[str] = []
    bad = error_event(3)

    async def store(events: Sequence[DomainEvent]) -> None:
        ours = [e for e in events if isinstance(e, ErrorRaised) and e.source == "test"]
        written.extend(e.id for e in ours if e.id != bad.id)
        if any(e.id == bad.id for e in events):
            raise RejectedEvents([bad], "PostgreSQL refused a value: numeric field overflow")

    bus.subscribe_batch("coordinator", ["*"], store)
    await bus.start()
    await bus.publish([error_event(n) for n in range(6)])
    await bus.drain(timeout_secs=10)

    assert sorted(written) == sorted(error_event(n).id for n in range(6) if n != 3)
    letters: Reply = await raw.xrange(f"{PREFIX}:dlq")
    assert [text(f[b"reason"]) for _, f in letters] == ["store_refused"]
    assert "numeric field overflow" in text(letters[0][1][b"detail"])


async def test_the_active_instance_takes_over_a_killed_consumers_pending_at_start(
    make_bus: MakeBus, raw: Redis
) -> None:
    dead = make_bus(consumer="killed", claim_idle_ms=3_600_000)
    never: list[str] = []

    async def hang(event: DomainEvent) -> None:
        never.append(event.id)
        await asyncio.Event().wait()  # killed mid-handling: the entry stays pending

    dead.subscribe("agent", ["error.raised"], hang)
    await dead.start()
    await dead.publish([error_event(1)])
    await eventually(lambda: bool(never), "the doomed consumer read the entry")
    await dead.stop()

    handled: list[str] = []

    async def handle(event: DomainEvent) -> None:
        handled.append(event.id)

    # an hour before XAUTOCLAIM would take it: the new instance takes it over at start instead
    heir = make_bus(consumer="heir", claim_idle_ms=3_600_000, take_over_on_start=True)
    heir.subscribe("agent", ["error.raised"], handle)
    await heir.start()

    await eventually(lambda: handled == [error_event(1).id], "the heir handles it", 5.0)


async def test_drain_waits_only_for_the_groups_named_and_without_a_deadline_by_default(
    make_bus: MakeBus, raw: Redis
) -> None:
    bus = make_bus()
    gate = asyncio.Event()
    fast: list[str] = []

    async def slow(events: Sequence[DomainEvent]) -> None:
        await gate.wait()

    async def quick(event: DomainEvent) -> None:
        fast.append(event.id)

    bus.subscribe_batch("slow", ["*"], slow)
    bus.subscribe("quick", ["error.raised"], quick)
    await bus.start()
    await bus.publish([error_event(n) for n in range(5)])

    await bus.drain(groups=["quick"])  # returns although "slow" is stuck
    assert len(fast) == 5
    with pytest.raises(DeadlineError, match="slow@t:events"):
        await bus.drain(timeout_secs=0.3)
    waiting = asyncio.create_task(bus.drain())  # no deadline: waits as long as it takes
    await asyncio.sleep(0.5)
    assert not waiting.done()
    gate.set()
    await asyncio.wait_for(waiting, 10)


async def test_drain_counts_a_group_redis_lost_as_behind_not_caught_up(
    make_bus: MakeBus, raw: Redis
) -> None:
    bus = make_bus()
    bus.subscribe("agent", ["error.raised"], lambda e: asyncio.sleep(0))
    await bus.start()
    await bus.stop()  # nobody consumes: the group can be destroyed under the bus
    await raw.xadd(EVENTS_KEY, {"type": "x"})
    await raw.xgroup_destroy(EVENTS_KEY, "agent")

    with pytest.raises(DeadlineError, match="group missing"):
        await bus.drain(timeout_secs=0.3)
