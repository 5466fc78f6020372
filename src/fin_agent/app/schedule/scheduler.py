"""The scheduler: runs each due slot of the schedule exactly once, across restarts and instances.

A slot is claimed through the `Slots` port before its job runs (a lease with a fencing token,
renewed while the job runs) and its result is recorded under that token, so a finished slot never
runs again and two instances never run one slot together. A slot missed while the agent was down
runs late within its grace; beyond that it is skipped and an `error.raised` says which job, which
slot and how late. Each tick refreshes a heartbeat that readiness checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta

import structlog

from fin_agent.app.schedule.jobs import Job, Lead, Ready
from fin_agent.app.schedule.outcomes import SlotOutcome, SlotStatus, skipped_detail, slot_record
from fin_agent.app.schedule.runs import Schedule, ScheduledRun
from fin_agent.domain.errors import ConfigError, TransientError
from fin_agent.domain.events import ErrorRaised, Severity
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.slots import Slots

log = structlog.get_logger(__name__)

Waiter = Callable[[asyncio.Event, float], Awaitable[None]]
"""Waits up to the given seconds or until the event is set (tests pass one that moves a clock)."""

FRESH_BEATS = 3  # a heartbeat older than this many heartbeat_secs is stale
MAX_LEAD = timedelta(hours=2)  # no slot opens earlier than this before its time
CALENDAR_WARNING = timedelta(days=30)
_EPSILON = timedelta(microseconds=1)


async def wait_or_stop(stop: asyncio.Event, secs: float) -> None:
    """Wait `secs` seconds, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=secs)


def default_instance() -> str:
    """This process's name in slot results and logs: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler:
    """Runs the jobs registered by name at the runs of a `Schedule`, once per slot."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        slots: Slots,
        bus: EventBus,
        clock: Clock,
        jobs: Mapping[str, Job] | None = None,
        instance: str | None = None,
        waiter: Waiter = wait_or_stop,
    ) -> None:
        self.schedule = schedule
        self._slots = slots
        self._bus = bus
        self._clock = clock
        self._wait = waiter
        self.instance = instance or default_instance()
        settings = schedule.settings
        self._ttl_secs = settings.lock_ttl_secs
        self._lookback = timedelta(hours=settings.lookback_hours)
        self._beat_secs = settings.heartbeat_secs
        self._jobs: dict[str, Job] = {}
        self._leads: dict[str, Lead] = {}
        self._ready: dict[str, Ready] = {}
        self.counts: dict[tuple[str, str], int] = {}  # (job, status) -> slots, for metrics
        self._settled: dict[str, datetime] = {}  # slot id -> its instant, while in the look-back
        self._heartbeat: datetime | None = None
        self._ticking = asyncio.Lock()
        for name, job in (jobs or {}).items():
            self.register(name, job)

    # -- jobs -----------------------------------------------------------------------------------

    def register(
        self, name: str, job: Job, *, lead: Lead | None = None, ready: Ready | None = None
    ) -> None:
        """Run `job` at every run of the job called `name` in `schedule.jobs`; with `lead`, that
        long before each run (at most `MAX_LEAD`), so the job can be done by the run's time;
        with `ready`, only when it says this instance can (see `Ready`)."""
        if name not in self.schedule.jobs:
            raise ConfigError(
                f"there is no job {name!r} in schedule.jobs of config.yaml (it has "
                f"{', '.join(self.schedule.jobs)}): schedule it there or register one of those"
            )
        self._jobs[name] = job
        self._leads.pop(name, None)
        self._ready.pop(name, None)
        if lead is not None:
            self._leads[name] = lead
        if ready is not None:
            self._ready[name] = ready

    def opens_at(self, run: ScheduledRun) -> datetime:
        """When the slot of `run` opens: its time less the job's lead (UTC)."""
        lead = self._leads.get(run.job)
        if lead is None:
            return run.at_utc
        return run.at_utc - min(max(lead(run), timedelta(0)), MAX_LEAD)

    def check(self) -> None:
        """Raise `ConfigError` unless every job in `schedule.jobs` has been registered."""
        missing = [name for name in self.schedule.jobs if name not in self._jobs]
        if missing:
            raise ConfigError(
                f"schedule.jobs has {', '.join(missing)} but the agent has no job of that name "
                f"(it has {', '.join(self._jobs) or 'none'}): remove it from schedule.jobs "
                "in config.yaml"
            )

    # -- readiness ------------------------------------------------------------------------------

    @property
    def heartbeat(self) -> datetime | None:
        """When the scheduler last showed it was alive (UTC), None before its first tick."""
        return self._heartbeat

    @property
    def busy(self) -> bool:
        """Whether a tick (and the jobs it runs) is in progress."""
        return self._ticking.locked()

    def is_fresh(self, now: datetime) -> bool:
        """Whether the heartbeat is at most three `schedule.heartbeat_secs` old at `now`."""
        if self._heartbeat is None:
            return False
        return now - self._heartbeat <= timedelta(seconds=FRESH_BEATS * self._beat_secs)

    def _beat(self, now: datetime | None = None) -> None:
        self._heartbeat = (now or self._clock.now()).astimezone(UTC)

    # -- one tick -------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> list[SlotOutcome]:
        """Run every due slot of the look-back window that no one has finished, in time order.

        Returns what this instance did with the slots it claimed; slots finished before, or
        leased to another instance, are left alone.
        """
        now = (now or self._clock.now()).astimezone(UTC)
        self.check()
        async with self._ticking:
            start = now - self._lookback
            horizon = now + (MAX_LEAD if self._leads else timedelta(0)) + _EPSILON
            outcomes: list[SlotOutcome] = []
            for run in self.schedule.runs(start, horizon):
                if run.slot_id not in self._settled and self.opens_at(run) <= now:
                    outcome = await self._attempt(run, now)
                    if outcome is not None:
                        outcomes.append(outcome)
            self._settled = {slot: at for slot, at in self._settled.items() if at >= start}
            self._beat(now)
            for outcome in outcomes:
                key = (outcome.run.job, outcome.status.value)
                self.counts[key] = self.counts.get(key, 0) + 1
            return outcomes

    async def _attempt(self, run: ScheduledRun, now: datetime) -> SlotOutcome | None:
        slot = run.slot_id
        late = max(now - run.at_utc, timedelta(0))
        grace = self.schedule.grace(run.job)
        check = self._ready.get(run.job)
        why_not = check(run) if check is not None else None
        if why_not is not None and late <= grace:
            return None  # left to the instance that can run it, until its grace has passed
        token = await self._slots.claim(slot, self._ttl_secs)
        if token is None:
            if await self._slots.result(slot) is not None:
                self._settled[slot] = run.at_utc
            return None  # finished, or another instance holds it right now
        if late > grace or why_not is not None:
            return await self._skip(run, token, now, late, grace, why_not)
        return await self._execute(run, token, now, late)

    async def _skip(
        self,
        run: ScheduledRun,
        token: int,
        now: datetime,
        late: timedelta,
        grace: timedelta,
        why_not: str | None = None,
    ) -> SlotOutcome:
        rule = self.schedule.settings.jobs.get(run.job)
        own_grace = rule is not None and rule.grace_minutes is not None
        setting = (
            f"schedule.jobs.{run.job}.grace_minutes" if own_grace else "schedule.grace_minutes"
        )
        message = skipped_detail(run, late=late, grace=grace, setting=setting, why_not=why_not)
        log.error("slot_skipped", job=run.job, slot=run.slot_id, late_secs=late.total_seconds())
        # Published before the slot is finished: a crash in between repeats the same event id.
        await self._alert(run, now, "schedule.slot_missed", message)
        await self._slots.finish(run.slot_id, token, self._record(run, "skipped", token, late, now))
        self._settled[run.slot_id] = run.at_utc
        return SlotOutcome(
            run=run, status=SlotStatus.SKIPPED, late=late, token=token, detail=message
        )

    async def _execute(
        self, run: ScheduledRun, token: int, now: datetime, late: timedelta
    ) -> SlotOutcome:
        job = self._jobs[run.job]
        log.info("job_started", job=run.job, slot=run.slot_id, late_secs=late.total_seconds())
        keeper = asyncio.create_task(self._keep_lease(run.slot_id, token))
        try:
            summary = await job(run)
            status, detail = SlotStatus.RAN, summary or ""
        except Exception as error:  # a job's failure is recorded and reported, never retried
            status, detail = SlotStatus.FAILED, f"{type(error).__name__}: {error}"
            log.exception("job_failed", job=run.job, slot=run.slot_id)
            failed = f"job {run.job} failed in slot {run.slot_id}: {detail}"
            await self._alert(run, now, "schedule.job_failed", failed)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if not await self._finish(run, token, status, late, now, detail):
            status = SlotStatus.LOST
            log.error("slot_lease_lost", job=run.job, slot=run.slot_id, token=token)
            lost = (
                f"job {run.job} ran in slot {run.slot_id} but lost its lease before it "
                "finished: another instance may have run it too; raise schedule.lock_ttl_secs "
                "if the lease expired while the job ran"
            )
            await self._alert(run, now, "schedule.slot_lease_lost", lost)
        else:
            log.info("job_finished", job=run.job, slot=run.slot_id, status=status.value)
        self._settled[run.slot_id] = run.at_utc
        return SlotOutcome(run=run, status=status, late=late, token=token, detail=detail)

    async def _finish(
        self,
        run: ScheduledRun,
        token: int,
        status: SlotStatus,
        late: timedelta,
        now: datetime,
        detail: str,
    ) -> bool:
        """Record the result under `token`; if its lease lapsed and no one took the slot since,
        claim it again and record under the new token (so no one runs it a second time)."""
        record = self._record(run, status.value, token, late, now, detail)
        if await self._slots.finish(run.slot_id, token, record):
            return True
        again = await self._slots.claim(run.slot_id, self._ttl_secs)
        if again is None:
            return False
        log.warning("slot_lease_reclaimed", job=run.job, slot=run.slot_id, token=again)
        record = self._record(run, status.value, again, late, now, detail)
        return await self._slots.finish(run.slot_id, again, record)

    async def _keep_lease(self, slot: str, token: int) -> None:
        """Renew the lease every third of its ttl while the job runs (real time, as Redis's)."""
        while True:
            await asyncio.sleep(self._ttl_secs / 3)
            try:
                if not await self._slots.extend(slot, token, self._ttl_secs):
                    log.warning("slot_lease_not_renewed", slot=slot, token=token)
                    return
            except TransientError as error:
                log.warning("slot_lease_renewal_failed", slot=slot, error=str(error))

    def _record(
        self,
        run: ScheduledRun,
        status: str,
        token: int,
        late: timedelta,
        now: datetime,
        detail: str = "",
    ) -> str:
        return slot_record(
            run,
            status=status,
            instance=self.instance,
            token=token,
            started_at=now,
            late=late,
            finished_at=self._clock.now(),
            detail=detail,
        )

    async def _alert(
        self,
        run: ScheduledRun,
        now: datetime,
        code: str,
        message: str,
        severity: Severity = Severity.ERROR,
    ) -> None:
        await self._publish(run.session, now, code, message, severity, key=run.slot_id)

    async def _publish(
        self, day: date, now: datetime, code: str, message: str, severity: Severity, *, key: str
    ) -> None:
        await self._bus.publish(
            [
                ErrorRaised(
                    id=ErrorRaised.id_for(f"{code}:{key}"),
                    occurred_at=now.astimezone(UTC),
                    trading_day=day,
                    source="scheduler",
                    code=code,
                    message=message,
                    severity=severity,
                )
            ]
        )

    # -- the loop -------------------------------------------------------------------------------

    def next_wake(self, now: datetime) -> datetime:
        """When the loop wakes next: the next run, or one heartbeat from `now` if sooner."""
        beat = now + timedelta(seconds=self._beat_secs)
        try:
            if self._leads:  # a slot with a lead opens before its run's time
                later = self.schedule.runs(now, now + MAX_LEAD + timedelta(seconds=1))
                opening = [at for run in later if (at := self.opens_at(run)) > now]
                if opening:
                    return min(min(opening), beat)
            upcoming = self.schedule.next_run(now)
        except ConfigError:  # the calendar ends within a week: wake by heartbeat until it does
            return beat
        return beat if upcoming is None else min(self.opens_at(upcoming), beat)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick at every due run until `stop` is set; waits in between (at most a heartbeat).

        A transient failure (Redis or the bus down) is logged and retried at the next wake; a
        configuration error (the calendar's end reached, a job missing) stops the loop.
        """
        self.check()
        await self._warn_if_calendar_ends(self._clock.now())
        while not stop.is_set():
            try:
                await self._tick_beating(self._clock.now())
            except TransientError as error:
                log.warning("scheduler_tick_failed", error=str(error))
            except ConfigError as error:
                log.error("scheduler_stopped", error=str(error))
                now = self._clock.now()
                await self._publish(
                    now.astimezone(UTC).date(),
                    now,
                    "schedule.stopped",
                    f"the scheduler stopped: {error}",
                    Severity.CRITICAL,
                    key=str(error),
                )
                raise
            now = self._clock.now()
            delay = (self.next_wake(now) - now).total_seconds()
            await self._wait(stop, max(delay, 0.0))

    async def _tick_beating(self, now: datetime) -> None:
        """Tick, beating the heartbeat meanwhile: a long job does not make the loop look dead."""
        task = asyncio.create_task(self.tick(now))
        try:
            while True:
                done, _pending = await asyncio.wait({task}, timeout=self._beat_secs)
                if done:
                    task.result()
                    return
                self._beat()
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _warn_if_calendar_ends(self, now: datetime) -> None:
        end = self.schedule.settings.calendar_end
        today = now.astimezone(UTC).date()
        if end - today <= CALENDAR_WARNING:
            message = (
                f"the exchange calendar ends on {end}: jobs stop after it; widen "
                "schedule.calendar_end in config.yaml"
            )
            log.warning("calendar_ends_soon", calendar_end=str(end))
            await self._publish(
                today, now, "schedule.calendar_ends", message, Severity.WARNING, key=str(end)
            )
