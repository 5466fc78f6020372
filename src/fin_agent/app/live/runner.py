"""Runs the live agent: the market feed, the scheduler and the feed's watchdog, side by side,
inside the agent's process (bus, HTTP probes, config watcher) until a signal or `days` reports.

Readiness adds two checks: the scheduler's heartbeat is fresh, and the feed is connected
whenever it has symbols to watch (within `feed.down_alert_secs` of a drop). A feed down that
long during a session raises an `error.raised` (the dashboard's banner); its return says so too.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import structlog

from fin_agent.app.http.server import Check
from fin_agent.app.live.agent import LiveAgent, in_session
from fin_agent.app.observability.metrics import LiveValues, Sample
from fin_agent.app.schedule.scheduler import wait_or_stop
from fin_agent.app.serve import http_deps, serve
from fin_agent.domain.events import ErrorRaised, Severity

log = structlog.get_logger(__name__)

WATCH_EVERY_SECS = 1.0


async def run_live(
    agent: LiveAgent,
    *,
    days: int | None,
    out: TextIO,
    keep_serving: bool = False,
    config_path: Path | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the live agent until SIGINT/SIGTERM (or `stop`), or until `days` reports are out."""
    container = agent.container
    agent.days.out = out  # each daily report's line
    watchdog = FeedWatchdog(agent)
    register_live_metrics(agent)

    async def body(stop: asyncio.Event) -> None:
        log.info("agent_started", market="finnhub", bus=type(container.bus).__name__)
        await agent.days.resume()
        container.agent.open_gate()  # the day is back (or there is none): bars flow again
        tasks = [
            asyncio.create_task(agent.feed.run(stop), name="market-feed"),
            asyncio.create_task(agent.scheduler.run(stop), name="scheduler"),
            asyncio.create_task(watchdog.run(stop), name="feed-watchdog"),
            asyncio.create_task(_count_days(agent, days, stop), name="day-count"),
        ]
        if agent.news is not None:
            tasks.append(asyncio.create_task(agent.news.run(stop), name="news"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    stop.set()
                    task.result()  # the scheduler stopped on a config error: say it and exit
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    container.agent.close_gate()  # bars waiting on the bus wait until the day is resumed
    checks: dict[str, Check] = {
        "scheduler": scheduler_check(agent),
        "feed": watchdog.check,
    }
    await serve(
        container,
        body,
        deps=http_deps(container, checks=checks, schedule=agent.scheduler.schedule),
        keep_serving=keep_serving,
        config_path=config_path,
        stop=stop,
    )
    log.info("agent_stopped", reports=agent.days.reports)
    return 0


async def _count_days(agent: LiveAgent, days: int | None, stop: asyncio.Event) -> None:
    """Set `stop` once `days` daily reports are out (None: never)."""
    while days is not None and not stop.is_set():
        if agent.days.reports >= days:
            stop.set()
            return
        await wait_or_stop(stop, WATCH_EVERY_SECS)


def scheduler_check(agent: LiveAgent) -> Check:
    """Ready while the scheduler's heartbeat is fresh (its loop is alive)."""

    async def check() -> str | None:
        scheduler = agent.scheduler
        now = agent.container.clock.now()
        if scheduler.is_fresh(now):
            return None
        beat = scheduler.heartbeat
        if beat is None:
            return "the scheduler has not ticked yet"
        return f"the scheduler's last heartbeat was {(now - beat).total_seconds():.0f}s ago"

    return check


class FeedWatchdog:
    """Watches the trade feed: raises `feed.down` when it is down too long during a session."""

    def __init__(self, agent: LiveAgent) -> None:
        self._agent = agent
        self._down_secs = agent.container.settings.feed.down_alert_secs
        self._down_since: datetime | None = None
        self._alerted = False

    def down_for(self, now: datetime) -> timedelta | None:
        """How long the feed has been down while it had symbols to watch, None when it is up."""
        return None if self._down_since is None else now - self._down_since

    async def check(self) -> str | None:
        """Readiness: not ready while the feed has been down longer than `down_alert_secs`."""
        down = self.down_for(self._agent.container.clock.now())
        if down is None or down.total_seconds() <= self._down_secs:
            return None
        return (
            f"the market feed has been disconnected for {down.total_seconds():.0f}s "
            "(it keeps reconnecting); check the network and the Finnhub status"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Look at the feed every second until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(Exception):  # never let the watchdog end the agent
                await self.look(self._agent.container.clock.now())
            await wait_or_stop(stop, WATCH_EVERY_SECS)

    async def look(self, now: datetime) -> None:
        """One look: track the outage; alert once when it outlasts `down_alert_secs` during a
        session, and say when it is over."""
        stats = self._agent.trades.stats
        if stats.connected or stats.watchlist == 0:
            if self._alerted and self._down_since is not None:
                await self._publish(now, "feed.recovered", self._recovered(now), Severity.WARNING)
            self._down_since, self._alerted = None, False
            return
        if self._down_since is None:
            self._down_since = now
            return
        down = (now - self._down_since).total_seconds()
        container = self._agent.container
        if (
            not self._alerted
            and down > self._down_secs
            and in_session(container.calendar, now, container.timezone)
        ):
            self._alerted = True
            message = (
                f"the market feed has been down for {down:.0f}s during the session "
                f"({stats.watchlist} symbols unwatched; reconnects so far: {stats.reconnects}); "
                "no bars reach the open plans until it is back: check the network and Finnhub"
            )
            log.error("feed_down", secs=round(down), watchlist=stats.watchlist)
            await self._publish(now, "feed.down", message, Severity.ERROR)

    def _recovered(self, now: datetime) -> str:
        since = self._down_since or now
        return f"the market feed is back after {(now - since).total_seconds():.0f}s down"

    async def _publish(self, now: datetime, code: str, message: str, severity: Severity) -> None:
        since = self._down_since or now
        container = self._agent.container
        await container.bus.publish(
            [
                ErrorRaised(
                    id=ErrorRaised.id_for(f"{code}:{since.isoformat()}"),
                    occurred_at=now.astimezone(UTC),
                    trading_day=now.astimezone(container.timezone).date(),
                    source="feed",
                    code=code,
                    message=message,
                    severity=severity,
                )
            ]
        )


def register_live_metrics(agent: LiveAgent) -> None:
    """Feed, data budget and scheduler figures into /metrics, read at each scrape."""

    async def refresh(values: LiveValues) -> None:
        feed = agent.trades.stats
        scheduler = agent.scheduler
        samples: dict[str, list[Sample]] = {
            "feed_reconnects_total": [({}, float(feed.reconnects))],
            "feed_downtime_seconds_total": [({}, feed.downtime_secs)],
            "data_budget_used_ratio": [
                ({"budget": stats.name}, max((w.ratio for w in stats.windows), default=0.0))
                for stats in (budget.stats for budget in agent.budgets)
            ],
            "scheduler_runs_total": [
                ({"job": job, "outcome": outcome}, float(n))
                for (job, outcome), n in sorted(scheduler.counts.items())
            ],
        }
        beat = scheduler.heartbeat
        if beat is not None:
            age = (agent.container.clock.now() - beat).total_seconds()
            samples["scheduler_heartbeat_age_seconds"] = [({}, max(age, 0.0))]
        values.samples.update(samples)

    agent.container.metrics.add_refresher(refresh)
