"""`fin-agent schedule [--from DATE] [--count N] [--json]`: the next runs of every job, and why.

Each run shows the rule that put it there, its session and any early close; days the exchange is
closed are listed too, so a holiday's missing jobs are visibly intended.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, time, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from fin_agent.app.bootstrap import exchange_calendar, wall_clock
from fin_agent.app.config.settings import Settings
from fin_agent.app.schedule.runs import Schedule, ScheduledRun
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.clock import Clock

DEFAULT_COUNT = 10


def schedule_command(
    args: argparse.Namespace,
    settings: Settings,
    out: TextIO,
    *,
    clock: Clock | None = None,
    calendar: Calendar | None = None,
) -> int:
    """Print the next `args.count` runs from `args.start` (a date; default now), as text or JSON.

    Reads `args.start` (`--from`, a `date` or None), `args.count` (`--count`, default 10) and
    `args.json` (`--json`).
    """
    zone = ZoneInfo(settings.timezone)
    calendar = calendar or exchange_calendar(settings)
    schedule = Schedule(settings.schedule, calendar, exchange_timezone=settings.timezone)
    first_day: date | None = getattr(args, "start", None)
    count: int = getattr(args, "count", None) or DEFAULT_COUNT
    if first_day is not None:
        start = datetime.combine(first_day, time(0, 0), zone)
    else:
        start = (clock or wall_clock()).now().astimezone(zone)
    runs = schedule.upcoming(start, count)
    if getattr(args, "json", False):
        out.write(json.dumps([run.as_dict() for run in runs], indent=2) + "\n")
        return 0
    out.write(
        f"next {len(runs)} runs from {start:%Y-%m-%d %H:%M %Z} ({settings.timezone}, "
        f"{settings.schedule.calendar} calendar):\n"
    )
    out.writelines(line + "\n" for line in _lines(runs, calendar, start.date()))
    return 0


def _lines(runs: list[ScheduledRun], calendar: Calendar, first: date) -> list[str]:
    """One line per run, and one per weekday without a session among them."""
    lines: list[str] = []
    day = first
    for run in runs:
        while day < run.session:
            if day.weekday() < 5 and calendar.session(day) is None:
                lines.append(
                    f"{day:%Y-%m-%d %a}{'':12}  {'-':<12}  no session: the exchange is closed"
                )
            day += timedelta(days=1)
        day = run.session
        lines.append(f"{run.at:%Y-%m-%d %a %H:%M %z}  {run.job:<12}  {run.reason}")
    return lines
