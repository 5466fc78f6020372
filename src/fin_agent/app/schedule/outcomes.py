"""What the scheduler did with a slot: its status, the outcome a tick returns, the JSON record
stored as the slot's result under its fencing token, and why a skipped slot was skipped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fin_agent.app.schedule.runs import ScheduledRun


class SlotStatus(StrEnum):
    """What a tick did with a due slot."""

    RAN = "ran"
    FAILED = "failed"
    SKIPPED = "skipped"
    LOST = "lost"  # the job ran but its lease expired first: its result was not recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotOutcome:
    """One slot this instance claimed in a tick, and what came of it."""

    run: ScheduledRun
    status: SlotStatus
    late: timedelta
    token: int
    detail: str = ""


def slot_record(
    run: ScheduledRun,
    *,
    status: str,
    instance: str,
    token: int,
    started_at: datetime,
    late: timedelta,
    finished_at: datetime,
    detail: str = "",
) -> str:
    """The result stored for a finished slot: who ran it, under which token, when and how."""
    return json.dumps(
        {
            "status": status,
            "job": run.job,
            "at": run.at.isoformat(),
            "instance": instance,
            "token": token,
            "started_at": started_at.isoformat(),
            "late_secs": late.total_seconds(),
            "finished_at": finished_at.isoformat(),
            "detail": detail,
        }
    )


def skipped_detail(
    run: ScheduledRun, *, late: timedelta, grace: timedelta, setting: str, why_not: str | None
) -> str:
    """Why a slot was skipped, for its `error.raised`: missed beyond its grace (`setting`), or no
    instance could run it (`why_not`) within it."""
    if why_not is not None:
        return (
            f"job {run.job} did not run in slot {run.slot_id}: {why_not}; no instance "
            f"could run it within its {span(grace)} grace ({setting}), so it was skipped"
        )
    return (
        f"job {run.job} did not run: slot {run.slot_id} was missed by {span(late)}, "
        f"beyond its {span(grace)} grace ({setting}), so it was skipped"
    )


def span(delta: timedelta) -> str:
    """A duration for people: `1h 5m`, `12m 30s`, `45s`."""
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)
