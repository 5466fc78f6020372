"""One active instance: a second stands by, takes over when the first stops or dies, and an
instance that loses its lease is told to stop."""

from __future__ import annotations

import asyncio

import pytest

from fin_agent.adapters.redis.slots import InMemorySlots
from fin_agent.adapters.system_clock import SystemClock
from fin_agent.app.instance import SLOT, ActiveInstance

TAKEOVER_SECS = 0.3
pytestmark = pytest.mark.asyncio


async def test_a_second_instance_stands_by_and_takes_over_when_the_first_releases() -> None:
    slots = InMemorySlots(SystemClock())
    stop = asyncio.Event()
    first = ActiveInstance(slots, takeover_secs=TAKEOVER_SECS, name="first")
    second = ActiveInstance(slots, takeover_secs=TAKEOVER_SECS, name="second")
    assert await first.acquire(stop)

    waiting = asyncio.create_task(second.acquire(stop))
    await asyncio.sleep(TAKEOVER_SECS)
    assert not waiting.done()
    assert second.standing_by

    await first.release()
    assert await asyncio.wait_for(waiting, TAKEOVER_SECS * 2)
    assert second.token is not None
    assert first.token is None


async def test_a_standby_takes_over_within_takeover_secs_of_the_active_one_dying() -> None:
    slots = InMemorySlots(SystemClock())
    stop = asyncio.Event()
    dead = ActiveInstance(slots, takeover_secs=TAKEOVER_SECS, name="dead")
    assert await dead.acquire(stop)  # and never renews: killed
    heir = ActiveInstance(slots, takeover_secs=TAKEOVER_SECS, name="heir")

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(heir.acquire(stop), TAKEOVER_SECS * 3)

    assert loop.time() - started <= TAKEOVER_SECS * 1.5


async def test_an_instance_whose_lease_was_taken_is_told_to_stop() -> None:
    slots = InMemorySlots(SystemClock())
    stop = asyncio.Event()
    active = ActiveInstance(slots, takeover_secs=TAKEOVER_SECS, name="active")
    assert await active.acquire(stop)
    assert active.token is not None
    assert await slots.release(SLOT, active.token)  # as if it lapsed while paused...
    assert await slots.claim(SLOT, TAKEOVER_SECS) is not None  # ...and another took it
    told: list[str] = []

    await asyncio.wait_for(active.keep(stop, told.append), TAKEOVER_SECS * 2)

    assert len(told) == 1
    assert "lost its lease" in told[0]


async def test_a_standby_gives_up_waiting_when_stopped() -> None:
    slots = InMemorySlots(SystemClock())
    stop = asyncio.Event()
    assert await ActiveInstance(slots, takeover_secs=60, name="a").acquire(stop)
    standby = asyncio.create_task(ActiveInstance(slots, takeover_secs=60, name="b").acquire(stop))
    await asyncio.sleep(0.05)

    stop.set()

    assert await asyncio.wait_for(standby, 1.0) is False


async def test_a_restart_takes_over_from_its_killed_predecessor_not_from_a_live_twin() -> None:
    slots = InMemorySlots(SystemClock())
    stop = asyncio.Event()
    running = {100}
    killed = ActiveInstance(
        slots, takeover_secs=60, name="agent", host="h", pid=100, alive=running.__contains__
    )
    assert await killed.acquire(stop)
    twin = ActiveInstance(
        slots, takeover_secs=60, name="agent", host="h", pid=200, alive=running.__contains__
    )
    waiting = asyncio.create_task(twin.acquire(stop))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # pid 100 still runs: a second agent, not a restart
    stop.set()
    await waiting

    running.clear()  # kill -9 of pid 100
    restarted = ActiveInstance(
        slots, takeover_secs=60, name="agent", host="h", pid=300, alive=running.__contains__
    )
    assert await asyncio.wait_for(restarted.acquire(asyncio.Event()), 1.0)
    other_host = ActiveInstance(slots, takeover_secs=60, name="agent", host="elsewhere", pid=100)
    assert await slots.holder(SLOT) == (restarted.token, "agent@h:300")
    assert other_host.holder == "agent@elsewhere:100"


async def test_an_instance_whose_lease_vanished_takes_it_again_and_keeps_going() -> None:
    """Redis restarted empty: the lease is gone but nobody took it, so the active one goes on
    (stopping would lose what it still has to publish again)."""
    slots = InMemorySlots(SystemClock())
    stop = asyncio.Event()
    active = ActiveInstance(slots, takeover_secs=TAKEOVER_SECS, name="active")
    assert await active.acquire(stop)
    first = active.token
    assert first is not None
    assert await slots.release(SLOT, first)  # the lease vanished with Redis's data
    told: list[str] = []

    keeping = asyncio.create_task(active.keep(stop, told.append))
    await asyncio.sleep(TAKEOVER_SECS)
    stop.set()
    await asyncio.wait_for(keeping, TAKEOVER_SECS * 2)

    assert told == []
    assert active.token is not None
    assert active.token != first
    held = await slots.holder(SLOT)
    assert held is not None
    assert held[0] == active.token
