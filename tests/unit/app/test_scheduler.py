"""The scheduler with a fixed clock and in-memory slots: once per slot, late within grace, skipped
beyond it with an error.raised, a restart in the middle of a job, and the run loop (no sleeping)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.memory import FixedClock, InMemoryEventBus
from fin_agent.adapters.redis.slots import InMemorySlots
from fin_agent.app.config.schedule import JobSchedule, JobsSettings, ScheduleSettings
from fin_agent.app.schedule.jobs import Job
from fin_agent.app.schedule.outcomes import SlotStatus
from fin_agent.app.schedule.runs import Schedule, ScheduledRun
from fin_agent.app.schedule.scheduler import Scheduler
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import ErrorRaised, Severity

NEW_YORK = ZoneInfo("America/New_York")
pytestmark = pytest.mark.asyncio

JOBS = ("scan", "plan", "flatten", "report", "housekeeping")


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS", start=date(2025, 1, 1), end=date(2027, 12, 31))


class Recorder:
    """Jobs that record each run they are given, with the clock's time when they ran."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime, datetime]] = []

    def job(self, name: str) -> Job:
        async def run(scheduled: ScheduledRun) -> str:
            self.calls.append((name, scheduled.at, self.clock.now()))
            return f"{name} done"

        return run

    def all(self) -> dict[str, Job]:
        return {name: self.job(name) for name in JOBS}

    def names(self) -> list[str]:
        return [name for name, _at, _now in self.calls]


class World:
    """One shared slot store and bus, and as many scheduler instances as a test wants."""

    def __init__(self, calendar: ExchangeCalendar, start: datetime, **settings: object) -> None:
        self.clock = FixedClock(start)
        self.slots = InMemorySlots(self.clock)
        self.bus = InMemoryEventBus()
        self.settings = ScheduleSettings.model_validate(settings)
        self.calendar = calendar
        self.recorder = Recorder(self.clock)

    def scheduler(
        self, instance: str = "a", jobs: dict[str, Job] | None = None, **options: Any
    ) -> Scheduler:
        schedule = Schedule(self.settings, self.calendar, exchange_timezone="America/New_York")
        return Scheduler(
            schedule,
            slots=self.slots,
            bus=self.bus,
            clock=self.clock,
            jobs=self.recorder.all() if jobs is None else jobs,
            instance=instance,
            **options,
        )

    def errors(self) -> list[ErrorRaised]:
        return [e for e in self.bus.published if isinstance(e, ErrorRaised)]


@pytest.fixture
def world(xnys: ExchangeCalendar) -> World:
    return World(xnys, ny(2026, 11, 27, 8, 0))


async def test_a_due_slot_runs_once_and_its_result_is_recorded(world: World) -> None:
    scheduler = world.scheduler()

    before = await scheduler.tick(ny(2026, 11, 27, 8, 59, 59))
    due = await scheduler.tick(ny(2026, 11, 27, 9, 0))
    again = await scheduler.tick(ny(2026, 11, 27, 9, 1))

    assert before == []
    assert [(o.run.job, o.status, o.late) for o in due] == [("scan", SlotStatus.RAN, timedelta(0))]
    assert again == []
    assert world.recorder.names() == ["scan"]
    result = json.loads(await world.slots.result("scan:2026-11-27T09:00-05:00") or "{}")
    assert result["status"] == "ran"
    assert result["instance"] == "a"
    assert result["detail"] == "scan done"


async def test_a_slot_missed_within_grace_runs_late(world: World) -> None:
    scheduler = world.scheduler()

    outcomes = await scheduler.tick(ny(2026, 11, 27, 9, 8))

    assert [(o.run.job, o.status, o.late) for o in outcomes] == [
        ("scan", SlotStatus.RAN, timedelta(minutes=8))
    ]
    assert world.errors() == []


async def test_a_slot_missed_beyond_grace_is_skipped_with_an_error(world: World) -> None:
    scheduler = world.scheduler()

    outcomes = await scheduler.tick(ny(2026, 11, 27, 9, 20, 30))
    await world.scheduler("b").tick(ny(2026, 11, 27, 9, 21))  # a restart: said once, not twice
    await scheduler.tick(ny(2026, 11, 27, 9, 22))

    assert [(o.run.job, o.status) for o in outcomes] == [("scan", SlotStatus.SKIPPED)]
    assert world.recorder.calls == []
    [error] = world.errors()
    assert error.code == "schedule.slot_missed"
    assert error.source == "scheduler"
    assert error.severity is Severity.ERROR
    assert error.trading_day == date(2026, 11, 27)
    assert error.message == (
        "job scan did not run: slot scan:2026-11-27T09:00-05:00 was missed by 20m 30s, "
        "beyond its 10m grace (schedule.grace_minutes), so it was skipped"
    )
    result = json.loads(await world.slots.result("scan:2026-11-27T09:00-05:00") or "{}")
    assert result["status"] == "skipped"


async def test_a_job_grace_of_its_own_is_named_when_it_is_exceeded(xnys: ExchangeCalendar) -> None:
    world = World(
        xnys,
        ny(2026, 11, 27, 12, 0),
        jobs=JobsSettings(flatten=JobSchedule(at="close - 5m", grace_minutes=2)),
    )

    await world.scheduler().tick(ny(2026, 11, 27, 12, 58))

    [scan, plan, flatten] = world.errors()
    assert "(schedule.grace_minutes)" in scan.message
    assert "(schedule.grace_minutes)" in plan.message
    assert flatten.message == (
        "job flatten did not run: slot flatten:2026-11-27T12:55-05:00 was missed by 3m, "
        "beyond its 2m grace (schedule.jobs.flatten.grace_minutes), so it was skipped"
    )


async def test_a_restarted_scheduler_runs_due_slots_in_order_and_skips_old_ones(
    world: World,
) -> None:
    await world.scheduler("before").tick(ny(2026, 11, 27, 9, 0))

    outcomes = await world.scheduler("after").tick(ny(2026, 11, 27, 12, 58))

    assert [(o.run.job, o.status) for o in outcomes] == [
        ("plan", SlotStatus.SKIPPED),
        ("flatten", SlotStatus.RAN),
    ]
    assert world.recorder.names() == ["scan", "flatten"]


async def test_the_lookback_bounds_what_a_restart_reports(world: World) -> None:
    outcomes = await world.scheduler().tick(ny(2026, 11, 30, 8, 0))

    assert outcomes == []  # Friday's slots are more than lookback_hours (24) ago
    assert world.errors() == []


async def test_restart_in_the_middle_of_a_job_runs_it_again_once_within_grace(
    world: World,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow_scan(run: ScheduledRun) -> None:
        started.set()
        await release.wait()
        finished.append("crashed instance")

    async def scan(run: ScheduledRun) -> None:
        finished.append("restarted instance")

    crashed = world.scheduler("crashed", jobs={**world.recorder.all(), "scan": slow_scan})
    world.clock.set(ny(2026, 11, 27, 9, 0, 5))
    ticking = asyncio.create_task(crashed.tick())
    await started.wait()
    ticking.cancel()  # the process dies mid-job: the slot is leased, never finished
    with pytest.raises(asyncio.CancelledError):
        await ticking

    restarted = world.scheduler("restarted", jobs={**world.recorder.all(), "scan": scan})
    world.clock.set(ny(2026, 11, 27, 9, 0, 30))
    while_leased = await restarted.tick()
    world.clock.set(ny(2026, 11, 27, 9, 1, 6))  # the 60 s lease has expired
    after_expiry = await restarted.tick()
    world.clock.set(ny(2026, 11, 27, 9, 2))
    later = await restarted.tick()
    other = await world.scheduler("third", jobs={**world.recorder.all(), "scan": scan}).tick()

    assert while_leased == []
    assert [(o.run.job, o.status) for o in after_expiry] == [("scan", SlotStatus.RAN)]
    assert later == []
    assert other == []
    assert finished == ["restarted instance"]
    assert world.errors() == []


async def test_a_stale_token_cannot_record_a_result(world: World) -> None:
    slot = "scan:2026-11-27T09:00-05:00"
    stale = await world.slots.claim(slot, 60)
    world.clock.advance(timedelta(seconds=61))
    fresh = await world.slots.claim(slot, 60)

    assert stale is not None
    assert fresh is not None
    assert fresh > stale
    assert not await world.slots.extend(slot, stale, 60)
    assert not await world.slots.finish(slot, stale, "late")
    assert await world.slots.finish(slot, fresh, "ok")
    assert await world.slots.result(slot) == "ok"
    assert await world.slots.claim(slot, 60) is None


async def test_a_job_that_outlives_its_lease_is_reported_lost(world: World) -> None:
    async def scan(run: ScheduledRun) -> None:
        world.clock.advance(timedelta(minutes=2))  # the lease lapses while the job runs...
        assert await world.slots.claim(run.slot_id, 60) is not None  # ...and someone takes it

    outcomes = await world.scheduler(jobs={**world.recorder.all(), "scan": scan}).tick(
        ny(2026, 11, 27, 9, 0)
    )

    assert [o.status for o in outcomes] == [SlotStatus.LOST]
    [error] = world.errors()
    assert error.code == "schedule.slot_lease_lost"
    assert error.message.startswith(
        "job scan ran in slot scan:2026-11-27T09:00-05:00 but lost its lease before it finished"
    )


async def test_two_instances_ticking_together_run_a_slot_once(world: World) -> None:
    first, second = world.scheduler("a"), world.scheduler("b")

    outcomes = await asyncio.gather(
        first.tick(ny(2026, 11, 27, 9, 0)), second.tick(ny(2026, 11, 27, 9, 0))
    )

    assert sorted(len(o) for o in outcomes) == [0, 1]
    assert world.recorder.names() == ["scan"]


async def test_a_failing_job_is_recorded_reported_and_not_retried(world: World) -> None:
    attempts: list[int] = []

    async def scan(run: ScheduledRun) -> None:
        attempts.append(1)
        raise RuntimeError("market data unavailable")

    scheduler = world.scheduler(jobs={**world.recorder.all(), "scan": scan})

    outcomes = await scheduler.tick(ny(2026, 11, 27, 9, 0))
    await scheduler.tick(ny(2026, 11, 27, 9, 1))

    assert [(o.status, o.detail) for o in outcomes] == [
        (SlotStatus.FAILED, "RuntimeError: market data unavailable")
    ]
    assert attempts == [1]
    [error] = world.errors()
    assert error.code == "schedule.job_failed"
    assert error.message == (
        "job scan failed in slot scan:2026-11-27T09:00-05:00: RuntimeError: market data unavailable"
    )


async def test_jobs_must_match_the_configured_names(world: World) -> None:
    scheduler = world.scheduler(jobs={})

    with pytest.raises(ConfigError, match=re.escape("there is no job 'scna' in schedule.jobs")):
        scheduler.register("scna", world.recorder.job("scna"))
    scheduler.register("scan", world.recorder.job("scan"))
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "schedule.jobs has plan, flatten, report, housekeeping but the agent has no job of "
            "that name (it has scan): remove it from schedule.jobs in config.yaml"
        ),
    ):
        await scheduler.tick(ny(2026, 11, 27, 9, 0))


async def test_heartbeat_is_fresh_after_a_tick(world: World) -> None:
    scheduler = world.scheduler()
    assert scheduler.heartbeat is None
    assert not scheduler.is_fresh(ny(2026, 11, 27, 8, 0))

    await scheduler.tick(ny(2026, 11, 27, 8, 0))

    assert scheduler.heartbeat == ny(2026, 11, 27, 8, 0)
    assert scheduler.is_fresh(ny(2026, 11, 27, 8, 0, 30))
    assert not scheduler.is_fresh(ny(2026, 11, 27, 8, 0, 31))


async def test_run_loop_wakes_at_each_run_on_a_fixed_clock(world: World) -> None:
    stop = asyncio.Event()
    waits: list[float] = []
    world.clock.set(ny(2026, 11, 27, 8, 59, 45))

    async def waiter(event: asyncio.Event, secs: float) -> None:
        waits.append(secs)
        world.clock.advance(timedelta(seconds=secs))
        if world.clock.now() >= ny(2026, 11, 27, 13, 20):
            event.set()

    scheduler = world.scheduler(waiter=waiter)

    await scheduler.run(stop)

    assert [(name, at, now) for name, at, now in world.recorder.calls] == [
        ("scan", ny(2026, 11, 27, 9, 0), ny(2026, 11, 27, 9, 0)),
        ("plan", ny(2026, 11, 27, 9, 35), ny(2026, 11, 27, 9, 35)),
        ("flatten", ny(2026, 11, 27, 12, 55), ny(2026, 11, 27, 12, 55)),
        ("report", ny(2026, 11, 27, 13, 15), ny(2026, 11, 27, 13, 15)),
    ]
    assert max(waits) <= world.settings.heartbeat_secs
    assert waits[:2] == [10.0, 5.0]  # a heartbeat, then exactly up to 09:00
    assert scheduler.is_fresh(world.clock.now())
    assert world.errors() == []


async def test_a_lapsed_lease_no_one_took_is_claimed_again_to_record_the_result(
    world: World,
) -> None:
    async def scan(run: ScheduledRun) -> None:
        world.clock.advance(timedelta(minutes=2))  # the lease lapses, but no one takes the slot

    scheduler = world.scheduler(jobs={**world.recorder.all(), "scan": scan})

    outcomes = await scheduler.tick(ny(2026, 11, 27, 9, 0))

    assert [o.status for o in outcomes] == [SlotStatus.RAN]
    result = json.loads(await world.slots.result("scan:2026-11-27T09:00-05:00") or "{}")
    assert result["status"] == "ran"
    assert result["token"] == outcomes[0].token + 1
    assert world.errors() == []


async def test_run_loop_stops_with_an_error_when_the_calendar_ends() -> None:
    calendar = ExchangeCalendar("XNYS", start=date(2026, 1, 1), end=date(2026, 12, 31))
    world = World(
        calendar,
        ny(2026, 12, 31, 23, 0),
        calendar_start=date(2026, 1, 1),
        calendar_end=date(2026, 12, 31),
    )

    async def waiter(event: asyncio.Event, secs: float) -> None:
        world.clock.advance(timedelta(seconds=secs))

    with pytest.raises(ConfigError, match=re.escape("end 2027-01-01 is outside the XNYS")):
        await world.scheduler(waiter=waiter).run(asyncio.Event())

    ending = [e for e in world.errors() if e.code.startswith("schedule.calendar")]
    stopped = [e for e in world.errors() if e.code == "schedule.stopped"]
    assert [(e.severity, e.message) for e in ending] == [
        (
            Severity.WARNING,
            "the exchange calendar ends on 2026-12-31: jobs stop after it; widen "
            "schedule.calendar_end in config.yaml",
        )
    ]
    assert [e.severity for e in stopped] == [Severity.CRITICAL]
    assert stopped[0].message.startswith("the scheduler stopped: end 2027-01-01 is outside")
    assert world.clock.now() >= ny(2027, 1, 1)


async def test_a_slot_with_a_lead_opens_that_long_before_its_run_and_runs_once(
    world: World,
) -> None:
    scheduler = world.scheduler()
    scheduler.register("scan", world.recorder.job("scan"), lead=lambda run: timedelta(minutes=6))

    before = await scheduler.tick(ny(2026, 11, 27, 8, 53, 59))
    opened = await scheduler.tick(ny(2026, 11, 27, 8, 54))
    at_its_time = await scheduler.tick(ny(2026, 11, 27, 9, 0))

    assert before == []
    assert [(o.run.job, o.run.at, o.late) for o in opened] == [
        ("scan", ny(2026, 11, 27, 9, 0), timedelta(0))
    ]
    assert at_its_time == []
    assert [(name, at) for name, at, _now in world.recorder.calls] == [
        ("scan", ny(2026, 11, 27, 9, 0))
    ]
    assert scheduler.next_wake(ny(2026, 11, 27, 8, 53, 55)) == ny(2026, 11, 27, 8, 54)


async def test_a_lead_is_capped_and_a_late_start_still_counts_from_the_run(world: World) -> None:
    scheduler = world.scheduler()
    scheduler.register("scan", world.recorder.job("scan"), lead=lambda run: timedelta(days=1))

    assert await scheduler.tick(ny(2026, 11, 27, 6, 59)) == []
    late = await scheduler.tick(ny(2026, 11, 27, 9, 8))

    assert [(o.run.job, o.late) for o in late] == [("scan", timedelta(minutes=8))]


async def test_a_job_not_ready_here_is_left_to_another_instance_then_reported_missed(
    world: World,
) -> None:
    holder = world.scheduler("a")
    standby = world.scheduler("b")
    standby.register("plan", world.recorder.job("plan"), ready=lambda run: "no trading day here")

    await holder.tick(ny(2026, 11, 27, 9, 0))  # the scan
    assert await standby.tick(ny(2026, 11, 27, 9, 35)) == []  # left to "a"
    taken = await holder.tick(ny(2026, 11, 27, 9, 35))
    assert [(o.run.job, o.status) for o in taken] == [("plan", SlotStatus.RAN)]

    lonely = world.scheduler("c")
    lonely.register("flatten", world.recorder.job("flatten"), ready=lambda run: "no day here")
    assert [o.run.job for o in await lonely.tick(ny(2026, 11, 27, 12, 56))] == []
    skipped = await lonely.tick(ny(2026, 11, 27, 13, 6))
    assert [(o.run.job, o.status) for o in skipped] == [("flatten", SlotStatus.SKIPPED)]
    assert "no day here" in world.errors()[-1].message
    assert lonely.counts[("flatten", "skipped")] == 1
    assert world.recorder.names() == ["scan", "plan"]
