"""The plan of scheduled runs: every job's runs, on exchange sessions only, each with its reason.

Cron expressions are evaluated with pendulum in `schedule.timezone`; session-relative times
(`open + 5m`, `close - 5m`) come from the calendar, so close-relative jobs follow early closes.
A run's slot id (job, session day and local time) is the same wherever and whenever it is
computed: the scheduler claims slots by it, so a run happens at most once.

Cron semantics are those of POSIX cron (and croniter): the day-of-month and day-of-week fields
match either one when both are restricted, 0 and 7 are Sunday, names like `mon` and `jan` work.
Around DST changes a wall time that does not exist (spring forward) fires at the end of the gap,
once, and a wall time that occurs twice (fall back) fires once, at its first occurrence. (US DST
changes fall on Sundays, so no NYSE session ever meets either.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import pendulum
from pendulum.tz.exceptions import AmbiguousTime, NonExistingTime

from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Session
from fin_agent.ports.calendar import Calendar

if TYPE_CHECKING:
    from fin_agent.app.config.schedule import ScheduleSettings

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {name: number for number, name in enumerate(_MONTHS, start=1)},
    {name: number for number, name in enumerate(_WEEKDAYS)},
)
_CRON_HORIZON_DAYS = 8 * 366  # "0 9 29 2 1" may wait years; an impossible date waits forever
_UPCOMING_HORIZON = timedelta(days=5 * 366)
_CACHED_DAYS = 400


class CronSyntaxError(ConfigError):
    """A cron expression the scheduler cannot evaluate; `what` is wrong, `fix` says what to do."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(f"{what}; {fix}")
        self.what = what
        self.fix = fix


def _bad(expr: str, detail: str) -> CronSyntaxError:
    return CronSyntaxError(
        f"{expr!r} cannot be scheduled: {detail}",
        "write five fields of numbers, names (mon, jan), ranges, lists and steps, "
        "e.g. '0 9 * * 1-5' or '*/15 9-16 * * mon-fri'",
    )


def _value(expr: str, name: str, text: str, index: int) -> int:
    low, high = _FIELDS[index][1:]
    number = _NAMES[index].get(text.lower())
    if number is None:
        if not text.isdigit():
            raise _bad(expr, f"the {name} field has {text!r}, which is not a number or a name")
        number = int(text)
    if not low <= number <= high:
        raise _bad(expr, f"the {name} field has {number}, outside {low}-{high}")
    return number


def _field(expr: str, text: str, index: int) -> tuple[frozenset[int], bool]:
    """The values of one field, and whether it was a bare `*` (unrestricted)."""
    name, low, high = _FIELDS[index]
    values: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _bad(
                    expr, f"the {name} field has step {step_text!r}; use a whole number >= 1"
                )
            step = int(step_text)
        if body == "*":
            first, last = low, high if index != 4 else 6
        elif "-" in body:
            start_text, _dash, end_text = body.partition("-")
            first = _value(expr, name, start_text, index)
            last = _value(expr, name, end_text, index)
            if first > last:
                raise _bad(expr, f"the {name} field's range {body!r} runs backwards")
        else:
            first = _value(expr, name, body, index)
            last = (high if index != 4 else 6) if slash else first
        values.update(range(first, last + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values), text == "*"


class Cron:
    """A five-field cron expression evaluated with pendulum in one time zone."""

    __slots__ = (
        "_any_day",
        "_any_weekday",
        "_days",
        "_fires",
        "_hours",
        "_minutes",
        "_months",
        "_tz",
        "_weekdays",
        "expr",
        "timezone",
    )

    def __init__(self, expr: str, timezone: str = "UTC") -> None:
        fields = expr.split()
        if len(fields) != len(_FIELDS):
            raise _bad(expr, f"it has {len(fields)} fields instead of 5")
        parsed = [_field(expr, text, index) for index, text in enumerate(fields)]
        self.expr = expr
        self.timezone = timezone
        self._minutes = tuple(sorted(parsed[0][0]))
        self._hours = tuple(sorted(parsed[1][0]))
        self._days, self._any_day = parsed[2]
        self._months = parsed[3][0]
        self._weekdays, self._any_weekday = parsed[4]
        self._tz = pendulum.timezone(timezone)
        self._fires: dict[date, tuple[datetime, ...]] = {}

    @classmethod
    def parse(cls, expr: str, timezone: str = "UTC") -> Cron:
        """Parse `expr`; raise `CronSyntaxError` saying what is wrong and how to write it."""
        return cls(expr, timezone)

    def __repr__(self) -> str:
        return f"Cron({self.expr!r}, {self.timezone!r})"

    def on(self, day: date) -> bool:
        """Whether the expression fires on local date `day` (at some hour and minute)."""
        if day.month not in self._months:
            return False
        by_day = day.day in self._days
        by_weekday = day.isoweekday() % 7 in self._weekdays
        if self._any_day or self._any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday

    def _instant(self, day: date, hour: int, minute: int) -> datetime:
        try:
            wall = (day.year, day.month, day.day, hour, minute)
            moment = pendulum.datetime(*wall, tz=self._tz, raise_on_unknown_times=True)
        except NonExistingTime:
            moment = self._end_of_gap(*wall)
        except AmbiguousTime:  # the first of the two
            moment = pendulum.datetime(*wall, tz=self._tz, fold=0)
        return datetime.fromtimestamp(moment.int_timestamp, tz=UTC)

    def _end_of_gap(
        self, year: int, month: int, day: int, hour: int, minute: int
    ) -> pendulum.DateTime:
        """The first existing wall minute after one that a DST change skipped."""
        wall = pendulum.naive(year, month, day, hour, minute)
        for _minute in range(2 * 24 * 60):
            wall = wall.add(minutes=1)
            try:
                return pendulum.datetime(
                    wall.year, wall.month, wall.day, wall.hour, wall.minute,
                    tz=self._tz, raise_on_unknown_times=True,
                )  # fmt: skip
            except NonExistingTime:
                continue
            except AmbiguousTime:
                return pendulum.datetime(
                    wall.year, wall.month, wall.day, wall.hour, wall.minute, tz=self._tz, fold=0
                )
        raise ConfigError(f"{self.timezone} skips more than two days after {wall}")

    def _local_date(self, instant: datetime) -> date:
        local: date = pendulum.instance(instant).in_timezone(self._tz).date()
        return local

    def fires_on(self, day: date) -> tuple[datetime, ...]:
        """The instants (UTC) it fires on local date `day`, in order, without repeats."""
        cached = self._fires.get(day)
        if cached is not None:
            return cached
        fires: list[datetime] = []
        if self.on(day):
            for hour in self._hours:
                for minute in self._minutes:
                    instant = self._instant(day, hour, minute)
                    if not fires or instant > fires[-1]:
                        fires.append(instant)
        if len(self._fires) >= _CACHED_DAYS:
            self._fires.clear()
        self._fires[day] = found = tuple(fires)
        return found

    def fire_times(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The instants (UTC) it fires from `start` inclusive to `end` exclusive, in order."""
        day, last = self._local_date(start), self._local_date(end)
        while day <= last:
            for instant in self.fires_on(day):
                if start <= instant < end:
                    yield instant
            day += timedelta(days=1)

    def next_after(self, instant: datetime) -> datetime | None:
        """The first instant (UTC) it fires strictly after `instant`; None if not for 8 years."""
        day = self._local_date(instant)
        for _day in range(_CRON_HORIZON_DAYS):
            for fire in self.fires_on(day):
                if fire > instant:
                    return fire
            day += timedelta(days=1)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledRun:
    """One run of one job: when (exchange time), its slot id, and why it is there."""

    job: str
    at: datetime
    slot_id: str
    rule: str
    session: date
    session_open: datetime
    session_close: datetime
    early_close: bool
    reason: str

    @property
    def at_utc(self) -> datetime:
        """The run's instant in UTC."""
        return self.at.astimezone(UTC)

    def as_dict(self) -> dict[str, object]:
        """The run as JSON-ready values (times in ISO 8601 with their UTC offset)."""
        return {
            "job": self.job,
            "at": self.at.isoformat(),
            "at_utc": self.at_utc.isoformat(),
            "slot": self.slot_id,
            "session": self.session.isoformat(),
            "rule": self.rule,
            "early_close": self.early_close,
            "session_open": self.session_open.isoformat(),
            "session_close": self.session_close.isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class _Rule:
    job: str
    order: int
    written: str
    cron: Cron | None
    anchor: Literal["open", "close"] = "open"
    offset: timedelta = timedelta(0)


def slot_id(job: str, at: datetime) -> str:
    """The slot of `job` at `at` (exchange time): job, session day, time and UTC offset."""
    return f"{job}:{at.isoformat(timespec='minutes')}"


class Schedule:
    """Every configured job's runs, on the calendar's sessions, in the exchange's time zone."""

    def __init__(
        self,
        settings: ScheduleSettings,
        calendar: Calendar,
        *,
        exchange_timezone: str = "America/New_York",
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.exchange_timezone = exchange_timezone
        self._tz = pendulum.timezone(exchange_timezone)
        self._zone = ZoneInfo(exchange_timezone)
        self._rules: list[_Rule] = []
        for order, (name, job) in enumerate(settings.jobs.items()):
            offset = job.session_offset()
            if offset is not None:
                self._rules.append(_Rule(name, order, f"at: {job.at}", None, offset[0], offset[1]))
            else:
                cron = Cron.parse(job.cron or "", settings.timezone)
                self._rules.append(_Rule(name, order, f"cron: {job.cron}", cron))
        self._days: dict[date, tuple[ScheduledRun, ...]] = {}

    @property
    def jobs(self) -> tuple[str, ...]:
        """The names of the configured jobs, in config order."""
        return tuple(rule.job for rule in self._rules)

    def grace(self, job: str) -> timedelta:
        """How late a run of `job` may still start."""
        return self.settings.grace(job)

    def runs_on(self, session: Session) -> tuple[ScheduledRun, ...]:
        """The runs of every job on `session`, in time order (ties in config order)."""
        cached = self._days.get(session.day)
        if cached is not None:
            return cached
        runs: list[tuple[datetime, int, ScheduledRun]] = []
        day = session.day
        midnight = pendulum.datetime(day.year, day.month, day.day, tz=self._tz)
        window = (midnight, midnight.add(days=1))
        for rule in self._rules:
            if rule.cron is not None:
                for fire in rule.cron.fire_times(*window):
                    runs.append((fire, rule.order, self._run(rule, session, fire)))
            else:
                base = session.open if rule.anchor == "open" else session.close
                instant = base + rule.offset
                runs.append((instant, rule.order, self._run(rule, session, instant)))
        runs.sort(key=lambda item: (item[0], item[1]))
        found = tuple(run for _at, _order, run in runs)
        if len(self._days) >= _CACHED_DAYS:
            self._days.clear()
        self._days[day] = found
        return found

    def _local(self, instant: datetime) -> datetime:
        return instant.astimezone(self._zone)

    def _run(self, rule: _Rule, session: Session, instant: datetime) -> ScheduledRun:
        at = self._local(instant)
        opens, closes = self._local(session.open), self._local(session.close)
        note = f"session {session.day}"
        if session.early_close:
            note += f", early close at {closes:%H:%M}"
        if rule.cron is not None:
            reason = f"cron '{rule.cron.expr}' in {rule.cron.timezone}; {note}"
        else:
            anchor = opens if rule.anchor == "open" else closes
            minutes = int(rule.offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            reason = f"{rule.anchor} {anchor:%H:%M} {sign} {abs(minutes)}m = {at:%H:%M}; {note}"
        return ScheduledRun(
            job=rule.job,
            at=at,
            slot_id=slot_id(rule.job, at),
            rule=rule.written,
            session=session.day,
            session_open=opens,
            session_close=closes,
            early_close=session.early_close,
            reason=reason,
        )

    def runs(self, start: datetime, end: datetime) -> list[ScheduledRun]:
        """The runs from `start` inclusive to `end` exclusive, in time order."""
        _aware(start, "start")
        _aware(end, "end")
        if end <= start:
            return []
        first, last = self._local(start).date(), self._local(end).date()
        found: list[ScheduledRun] = []
        for session in self.calendar.sessions(first, last):
            found.extend(run for run in self.runs_on(session) if start <= run.at < end)
        return found

    def upcoming(self, start: datetime, count: int) -> list[ScheduledRun]:
        """The first `count` runs at or after `start` (fewer if none come for five years)."""
        _aware(start, "start")
        found: list[ScheduledRun] = []
        chunk = start
        while len(found) < count and self._rules and chunk < start + _UPCOMING_HORIZON:
            found.extend(self.runs(chunk, chunk + timedelta(days=7)))
            chunk += timedelta(days=7)
        return found[:count]

    def next_run(self, after: datetime) -> ScheduledRun | None:
        """The first run strictly after `after`, or None when none comes for five years."""
        later = self.upcoming(after + timedelta(microseconds=1), 1)
        return later[0] if later else None


def _aware(value: datetime, what: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
