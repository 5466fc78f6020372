"""A scheduled job and the hooks it is registered with: how early its slot opens (`Lead`) and
whether this instance can run it now (`Ready`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from fin_agent.app.schedule.runs import ScheduledRun

Job = Callable[[ScheduledRun], Awaitable[str | None]]
"""A scheduled job: gets its run (job, slot, session, reason), may return a one-line summary."""

Ready = Callable[[ScheduledRun], str | None]
"""None when this instance can run the run now, else why not (it holds no state of that day):
the slot is left to another instance, and reported missed once its grace has passed."""

Lead = Callable[[ScheduledRun], timedelta]
"""How long before its time a run's slot opens: a job that must be finished by then (the scan's
data collection) starts that early. The slot, its exactness and its grace stay the run's own."""
