"""The `schedule` section of the settings: the trading calendar and each job's cron and grace.

Every model forbids unknown keys, bounds every number and describes every field; the cross-field
checks name the keys involved.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from fin_agent.app.config.fields import (
    CronExpression,
    SessionTime,
    TimeZoneName,
    parse_at,
)
from fin_agent.app.config.problems import SettingsValueError, problem, raise_if
from fin_agent.app.config.sections import SettingsSection
from fin_agent.app.schedule.runs import Cron, CronSyntaxError


class JobSchedule(SettingsSection):
    """When a job runs: a cron expression, or a time relative to the session's open or close."""

    cron: CronExpression | None = Field(
        default=None,
        description="Five-field cron expression in schedule.timezone, e.g. '0 9 * * 1-5'; runs "
        "on sessions only.",
    )
    at: SessionTime | None = Field(
        default=None,
        description="Time relative to the session, e.g. 'open + 5m' or 'close - 5m' (follows "
        "early closes); runs on sessions only.",
    )
    grace_minutes: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description="This job's own grace for late runs, minutes (null: schedule.grace_minutes).",
    )

    @field_validator("cron")
    @classmethod
    def _supported_cron(cls, expr: str | None) -> str | None:
        if expr is not None:
            try:
                Cron.parse(expr)
            except CronSyntaxError as error:
                raise SettingsValueError.single(error.what, error.fix) from None
        return expr

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.cron is None) == (self.at is None):
            what = "sets both cron and at" if self.cron else "sets neither cron nor at"
            raise SettingsValueError.single(
                what, "give exactly one of them, e.g. `at: open + 5m` or `cron: '0 9 * * 1-5'`"
            )
        return self

    def session_offset(self) -> tuple[Literal["open", "close"], timedelta] | None:
        """For an `at` job, its anchor and signed offset (`close - 5m` is close, -5 min)."""
        return parse_at(self.at) if self.at is not None else None

    def describe_mapping(self) -> dict[str, str | int]:
        """The schedule as written, e.g. `{"at": "close - 5m"}` (with its grace when it has one)."""
        rule: dict[str, str | int] = (
            {"at": self.at} if self.at is not None else {"cron": self.cron or ""}
        )
        if self.grace_minutes is not None:
            rule["grace_minutes"] = self.grace_minutes
        return rule

    def describe(self) -> str:
        """The schedule as written, e.g. `at: close - 5m`."""
        return f"at: {self.at}" if self.at is not None else f"cron: {self.cron}"


class JobsSettings(SettingsSection):
    """The agent's scheduled jobs."""

    scan: JobSchedule = Field(
        default=JobSchedule(cron="0 9 * * 1-5"), description="Pre-market gap scan (sessions only)."
    )
    plan: JobSchedule = Field(
        default=JobSchedule(at="open + 5m"),
        description="Plans built when the opening range closes.",
    )
    flatten: JobSchedule = Field(
        default=JobSchedule(at="close - 5m"), description="Every open position flattened."
    )
    report: JobSchedule = Field(
        default=JobSchedule(at="close + 15m"), description="Daily report after the close."
    )
    housekeeping: JobSchedule = Field(
        default=JobSchedule(cron="30 17 * * 1-5"),
        description="Stream trimming and store maintenance.",
    )

    def get(self, name: str) -> JobSchedule | None:
        """The job called `name`, or None when there is no such job."""
        value = getattr(self, name, None) if name in type(self).model_fields else None
        return value if isinstance(value, JobSchedule) else None

    def items(self) -> list[tuple[str, JobSchedule]]:
        """Every job as `(name, schedule)`, in declaration order."""
        return [(name, job) for name in type(self).model_fields if (job := self.get(name))]


class ScheduleSettings(SettingsSection):
    """When jobs run: the exchange calendar they follow, their rules, and how late they may run."""

    timezone: TimeZoneName = Field(
        default="America/New_York", description="Time zone of the cron expressions (IANA name)."
    )
    calendar: Literal["XNYS"] = Field(
        default="XNYS",
        description="Exchange calendar (exchange_calendars name) of the sessions, holidays and "
        "early closes the jobs follow.",
    )
    calendar_start: date = Field(
        default=date(2000, 1, 1),
        ge=date(1990, 1, 1),
        le=date(2100, 1, 1),
        description="First day the exchange calendar covers (YYYY-MM-DD); earlier days are "
        "refused.",
    )
    calendar_end: date = Field(
        default=date(2030, 12, 31),
        ge=date(1990, 1, 1),
        le=date(2100, 1, 1),
        description="Last day the exchange calendar covers (YYYY-MM-DD); the scheduler stops "
        "with an error naming this key when it gets there.",
    )
    grace_minutes: int = Field(
        default=10,
        ge=1,
        le=1440,
        description="A slot missed by at most this long still runs, late; a later one is "
        "skipped with an error.raised.",
    )
    lock_ttl_secs: float = Field(
        default=60,
        ge=1,
        le=3600,
        description="Lease on a running slot, renewed while the job runs; after a crash another "
        "instance may take the slot once the lease expires.",
    )
    lookback_hours: float = Field(
        default=24,
        ge=1,
        le=168,
        description="How far back a (re)started scheduler looks for missed slots to run or report.",
    )
    heartbeat_secs: float = Field(
        default=10,
        ge=0.1,
        le=300,
        description="Longest the scheduler sleeps between wakes; each wake refreshes its "
        "heartbeat (readiness).",
    )
    jobs: JobsSettings = Field(default_factory=JobsSettings, description="The scheduled jobs.")

    def grace(self, job: str) -> timedelta:
        """How late `job` may still run: its own grace_minutes, else schedule.grace_minutes."""
        rule = self.jobs.get(job)
        minutes = rule.grace_minutes if rule and rule.grace_minutes else self.grace_minutes
        return timedelta(minutes=minutes)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.calendar_end <= self.calendar_start:
            problems.append(
                problem(
                    ("calendar_end",),
                    f"schedule.calendar_end ({self.calendar_end}) must be after "
                    f"schedule.calendar_start ({self.calendar_start})",
                    "move schedule.calendar_end later or schedule.calendar_start earlier",
                )
            )
        shortest = min(self.grace(name) for name, _job in self.jobs.items())
        if timedelta(seconds=self.lock_ttl_secs) >= shortest:
            problems.append(
                problem(
                    ("lock_ttl_secs",),
                    f"schedule.lock_ttl_secs ({self.lock_ttl_secs:g}) must be shorter than the "
                    f"shortest grace ({shortest.total_seconds() / 60:g} minutes, "
                    "schedule.grace_minutes or a job's grace_minutes), or a job cut short by a "
                    "crash could never run again in time",
                    "lower schedule.lock_ttl_secs or raise schedule.grace_minutes",
                )
            )
        longest = max(self.grace(name) for name, _job in self.jobs.items())
        if timedelta(hours=self.lookback_hours) < longest:
            problems.append(
                problem(
                    ("lookback_hours",),
                    f"schedule.lookback_hours ({self.lookback_hours:g}) must cover the longest "
                    f"grace ({longest.total_seconds() / 60:g} minutes)",
                    "raise schedule.lookback_hours or lower the grace_minutes",
                )
            )
        raise_if(problems)
        return self
