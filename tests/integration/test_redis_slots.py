"""RedisSlots on a real redis-server: leases with fencing tokens, results, and schedulers racing.

The slot contract runs against both `InMemorySlots` and `RedisSlots`; the scheduler tests use
Redis only. Lease expiry is real (Redis's PX): every wait for it is a bounded poll, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.memory import FixedClock, InMemoryEventBus
from fin_agent.adapters.redis.slots import InMemorySlots, RedisSlots
from fin_agent.app.config.schedule import JobSchedule, JobsSettings, ScheduleSettings
from fin_agent.app.schedule.jobs import Job
from fin_agent.app.schedule.outcomes import SlotStatus
from fin_agent.app.schedule.runs import Schedule, ScheduledRun
from fin_agent.app.schedule.scheduler import Scheduler
from fin_agent.domain.errors import AdapterError
from fin_agent.ports.slots import Slots

if TYPE_CHECKING:
    from support import RedisServerFactory

pytestmark = pytest.mark.asyncio

NEW_YORK = ZoneInfo("America/New_York")
SLOT = "scan:2026-11-27T09:00-05:00"
JOBS = ("scan", "plan", "flatten", "report", "housekeeping")


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


async def eventually(
    condition: Callable[[], Awaitable[bool]], what: str, timeout_secs: float = 10.0
) -> None:
    """Poll `condition` every 10 ms until true; fail after `timeout_secs`."""
    deadline = time.monotonic() + timeout_secs
    while not await condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"not true after {timeout_secs} s: {what}")
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


@dataclass
class Backend:
    """A slots implementation, and how to make one of its leases lapse."""

    slots: Slots
    expire: Callable[[str], Awaitable[None]]


@pytest_asyncio.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FixedClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))

        async def advance(_slot: str) -> None:
            clock.advance(timedelta(seconds=61))

        yield Backend(InMemorySlots(clock), advance)
        return
    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    slots = RedisSlots(redis, prefix="t")

    async def lapse(slot: str) -> None:  # the lease's real PX expiry, shortened
        await redis.pexpire(slots.lock_key(slot), 1)
        await eventually(lambda: _gone(redis, slots.lock_key(slot)), "the lease expired")

    yield Backend(slots, lapse)
    await redis.aclose()


async def _gone(redis: Redis, key: str) -> bool:
    return not await redis.exists(key)


# -- the slot contract, on both implementations --------------------------------------------------


async def test_a_slot_is_leased_to_one_claimant_at_a_time(backend: Backend) -> None:
    first = await backend.slots.claim(SLOT, 60)
    second = await backend.slots.claim(SLOT, 60)

    assert first is not None
    assert second is None
    assert await backend.slots.result(SLOT) is None


async def test_a_finished_slot_is_never_claimed_again(backend: Backend) -> None:
    token = await backend.slots.claim(SLOT, 60)
    assert token is not None

    assert await backend.slots.finish(SLOT, token, '{"status": "ran"}')
    assert await backend.slots.result(SLOT) == '{"status": "ran"}'
    await backend.expire(SLOT)
    assert await backend.slots.claim(SLOT, 60) is None
    assert not await backend.slots.finish(SLOT, token, "twice")


async def test_an_expired_lease_goes_to_the_next_claimant_with_a_larger_token(
    backend: Backend,
) -> None:
    stale = await backend.slots.claim(SLOT, 60)
    await backend.expire(SLOT)
    fresh = await backend.slots.claim(SLOT, 60)

    assert stale is not None
    assert fresh is not None
    assert fresh > stale
    assert not await backend.slots.extend(SLOT, stale, 60)
    assert not await backend.slots.finish(SLOT, stale, "from the dead")
    assert await backend.slots.extend(SLOT, fresh, 60)
    assert await backend.slots.finish(SLOT, fresh, "ok")
    assert await backend.slots.result(SLOT) == "ok"


async def test_an_unfinished_lease_with_no_renewal_lapses(backend: Backend) -> None:
    token = await backend.slots.claim(SLOT, 60)
    assert token is not None

    await backend.expire(SLOT)

    assert not await backend.slots.finish(SLOT, token, "too late")
    assert await backend.slots.result(SLOT) is None


async def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(
    backend: Backend,
) -> None:
    token = await backend.slots.claim(SLOT, 60)
    assert token is not None

    assert not await backend.slots.release(SLOT, token + 1)
    assert await backend.slots.claim(SLOT, 60) is None
    assert await backend.slots.release(SLOT, token)
    again = await backend.slots.claim(SLOT, 60)

    assert again is not None
    assert again > token
    assert not await backend.slots.extend(SLOT, token, 60)
    assert await backend.slots.result(SLOT) is None


# -- Redis specifics -----------------------------------------------------------------------------


async def test_lease_and_result_carry_their_ttls_in_redis(client: Redis) -> None:
    slots = RedisSlots(client, prefix="t", result_ttl_secs=3600)

    token = await slots.claim(SLOT, 30)
    lease_ms = await client.pttl(slots.lock_key(SLOT))
    assert token is not None
    assert await client.get(slots.lock_key(SLOT)) == str(token).encode()
    assert 0 < lease_ms <= 30_000

    assert await slots.extend(SLOT, token, 90)
    assert 30_000 < await client.pttl(slots.lock_key(SLOT)) <= 90_000
    assert await slots.finish(SLOT, token, "ok")
    assert not await client.exists(slots.lock_key(SLOT))
    assert 0 < await client.pttl(slots.result_key(SLOT)) <= 3_600_000
    assert int(await client.get(slots.token_key) or 0) == token


async def test_redis_down_is_an_adapter_error(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory()
    redis = Redis.from_url(server.url, socket_connect_timeout=1.0)
    slots = RedisSlots(redis, prefix="t")
    server.kill()
    try:
        with pytest.raises(AdapterError, match=f"could not claim slot {SLOT} in Redis"):
            await slots.claim(SLOT, 60)
    finally:
        await redis.aclose()


# -- schedulers sharing Redis --------------------------------------------------------------------


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS", start=date(2026, 1, 1), end=date(2026, 12, 31))


class Runs:
    """Jobs that count their runs per slot, yielding to the loop so instances interleave."""

    def __init__(self) -> None:
        self.per_slot: Counter[str] = Counter()
        self.by_instance: Counter[str] = Counter()

    def jobs(self, instance: str) -> dict[str, Job]:
        async def job(run: ScheduledRun) -> None:
            await asyncio.sleep(0)
            self.per_slot[run.slot_id] += 1
            self.by_instance[instance] += 1

        return dict.fromkeys(JOBS, job)


def scheduler(
    schedule: Schedule,
    slots: Slots,
    clock: FixedClock,
    instance: str,
    jobs: dict[str, Job],
    bus: InMemoryEventBus | None = None,
) -> Scheduler:
    return Scheduler(
        schedule,
        slots=slots,
        bus=bus or InMemoryEventBus(),
        clock=clock,
        jobs=jobs,
        instance=instance,
    )


async def test_two_instances_racing_for_every_slot_run_each_once(
    client: Redis, redis_url: str, xnys: ExchangeCalendar
) -> None:
    # Every minute of a session is a slot; two schedulers share one RedisSlots, a third has
    # its own connection; all tick at once, minute after minute.
    settings = ScheduleSettings(jobs=JobsSettings(scan=JobSchedule(cron="* 9-15 * * 1-5")))
    schedule = Schedule(settings, xnys)
    clock = FixedClock(ny(2026, 11, 27, 9, 0))
    shared = RedisSlots(client, prefix="t")
    other_client = Redis.from_url(redis_url)
    runs = Runs()
    instances = [
        scheduler(schedule, shared, clock, "a", runs.jobs("a")),
        scheduler(schedule, shared, clock, "b", runs.jobs("b")),
        scheduler(schedule, RedisSlots(other_client, prefix="t"), clock, "c", runs.jobs("c")),
    ]
    try:
        for minute in range(120):
            clock.set(ny(2026, 11, 27, 9, 0) + timedelta(minutes=minute))
            turn = minute % len(instances)  # each instance gets to start the race first
            await asyncio.gather(*(s.tick() for s in instances[turn:] + instances[:turn]))
    finally:
        await other_client.aclose()

    scans = [slot for slot in runs.per_slot if slot.startswith("scan:")]
    assert len(scans) == 120
    assert set(runs.per_slot.values()) == {1}
    assert runs.per_slot["plan:2026-11-27T09:35-05:00"] == 1
    assert sum(runs.by_instance.values()) == 121
    assert set(runs.by_instance) == {"a", "b", "c"}


async def test_a_crash_mid_job_runs_the_slot_again_once_after_the_lease_lapses(
    client: Redis, xnys: ExchangeCalendar
) -> None:
    settings = ScheduleSettings(lock_ttl_secs=1)
    schedule = Schedule(settings, xnys)
    clock = FixedClock(ny(2026, 11, 27, 9, 0, 5))
    slots = RedisSlots(client, prefix="t")
    bus = InMemoryEventBus()
    started, never = asyncio.Event(), asyncio.Event()
    runs = Runs()

    async def hangs(run: ScheduledRun) -> None:
        started.set()
        await never.wait()

    crashed = scheduler(schedule, slots, clock, "crashed", {**runs.jobs("x"), "scan": hangs}, bus)
    ticking = asyncio.create_task(crashed.tick())
    await started.wait()
    ticking.cancel()  # killed mid-job: the lease stays until its PX runs out
    with pytest.raises(asyncio.CancelledError):
        await ticking
    restarted = scheduler(schedule, slots, clock, "restarted", runs.jobs("restarted"), bus)

    clock.set(ny(2026, 11, 27, 9, 0, 20))
    while_leased = await restarted.tick()
    await eventually(lambda: _gone(client, slots.lock_key(SLOT)), "the 1 s lease expired")
    clock.set(ny(2026, 11, 27, 9, 1, 0))
    after_lapse = await restarted.tick()
    again = await restarted.tick()
    fresh_start = await scheduler(schedule, slots, clock, "third", runs.jobs("third"), bus).tick()

    assert while_leased == []
    assert [(o.run.slot_id, o.status) for o in after_lapse] == [(SLOT, SlotStatus.RAN)]
    assert again == []
    assert fresh_start == []
    assert runs.per_slot == Counter({SLOT: 1})
    recorded = json.loads(await slots.result(SLOT) or "{}")
    assert recorded["instance"] == "restarted"
    assert recorded["late_secs"] == 60.0
    assert bus.published == []
