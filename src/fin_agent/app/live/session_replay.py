"""A recorded session through the live wiring: `fin-agent run --session-replay DAY`.

The live agent (`run_live`: scheduler, Finnhub feed and REST, Yahoo daily bars, bus, store, HTTP)
runs on a settable clock against local servers that hold the day (`app/bootstrap/session_replay`).
`SessionDriver` moves the clock through the day's instants: 30 s after each scheduled job and
30 s into each minute, when it sends that minute's trades over the local trade WebSocket; the
feed turns them into minutes on the bus as it does live. Between instants it waits the simulated
time divided by `speed` (0: not at all), so a whole day can be watched on the dashboard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TextIO

import structlog

from fin_agent.app.live.agent import LiveAgent
from fin_agent.app.live.runner import run_live
from fin_agent.domain.errors import ConfigError
from fin_agent.ports.clock import SettableClock

log = structlog.get_logger(__name__)

STEP = timedelta(seconds=30)
IDLE_WITHIN_SECS = 120.0


class SessionTape(Protocol):
    """The day's trades, sent over the local trade WebSocket a minute at a time."""

    @property
    def minutes(self) -> Sequence[datetime]:
        """The starts of the minutes with trades, in order."""
        ...

    async def send(self, minute: datetime) -> int:
        """Send the trades of the minute starting at `minute` to the watching connections; how
        many went out (none when nothing watches their symbols)."""
        ...


class SessionDriver:
    """Moves the clock through the day and lets the agent catch up at each instant."""

    def __init__(self, clock: SettableClock, *, speed: float) -> None:
        if speed < 0:
            raise ConfigError(f"--speed must be 0 (as fast as possible) or more, got {speed}")
        self.clock = clock
        self.speed = speed
        self.agent: LiveAgent | None = None
        self._moved = asyncio.Event()

    async def waiter(self, stop: asyncio.Event, secs: float) -> None:
        """The scheduler's wait: until the clock moves (or a stop), whatever `secs` says."""
        moving = asyncio.ensure_future(self._moved.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({moving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (moving, stopping):
            task.cancel()
        self._moved.clear()

    async def to(self, at: datetime) -> None:
        """Set the clock to `at`, close the minutes that ended, and wait for the scheduler's tick
        there to finish."""
        agent = self._agent()
        self.clock.set(at)
        agent.feed.flush()
        await agent.feed.wait_published()
        self._moved.set()
        scheduler = agent.scheduler
        await _until(lambda: scheduler.heartbeat == at and not scheduler.busy)

    async def day(self, tape: SessionTape, start: datetime, end: datetime) -> None:
        """Drive the clock from `start` to `end` through the jobs' and the minutes' instants."""
        agent = self._agent()
        runs = agent.scheduler.schedule.runs(start, end)
        minutes = set(tape.minutes)
        moments = sorted(
            {start}
            | {run.at - STEP for run in runs}  # the scan's slot opens early: it can finish by 09:00
            | {run.at + STEP for run in runs}
            | {m + STEP for m in minutes}
            | {m + 3 * STEP for m in minutes}  # the next minute's instant closes it
        )
        previous = start
        sent = agent.trades.stats.trades
        for at in moments:
            if at > end:
                break
            if self.speed > 0:
                await asyncio.sleep((at - previous).total_seconds() / self.speed)
            previous = at
            await self.to(at)
            minute = at - STEP
            if minute in minutes:
                sent += await tape.send(minute)

                def received(total: int = sent) -> bool:
                    return agent.trades.stats.trades >= total

                await _until(received)

    def _agent(self) -> LiveAgent:
        if self.agent is None:
            raise RuntimeError("SessionDriver.agent is not set: give it the live agent first")
        return self.agent


async def replay_session(
    agent: LiveAgent,
    driver: SessionDriver,
    tape: SessionTape,
    *,
    start: datetime,
    end: datetime,
    out: TextIO,
    keep_serving: bool = False,
) -> int:
    """Run the live agent for one day while `driver` moves its clock from `start` to `end`."""
    driver.agent = agent
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_live(agent, days=1, out=out, stop=stop, keep_serving=keep_serving)
    )
    try:
        await _until(lambda: agent.scheduler.heartbeat is not None or running.done())
        if not running.done():
            log.info("session_replay_started", start=start.isoformat(), speed=driver.speed)
            await driver.day(tape, start, end)
        if keep_serving:  # the dashboard stays up until SIGINT/SIGTERM
            return await running
        return await asyncio.wait_for(running, IDLE_WITHIN_SECS)
    finally:
        stop.set()
        await asyncio.gather(running, return_exceptions=True)


async def _until(predicate: Callable[[], bool], within_secs: float = IDLE_WITHIN_SECS) -> None:
    """Wait until `predicate()` holds, checking every 5 ms; a hung agent is an error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_secs
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"the live agent did not catch up within {within_secs:g}s")
        await asyncio.sleep(0.005)
