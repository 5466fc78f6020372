"""`ExchangeCalendar`: the calendar port on `exchange_calendars` (XNYS by default), offline.

The calendar is built once for explicit start and end dates (the library's default range ends
about a year ahead, after which it would silently know no holidays). A question about a day
outside those bounds is a configuration problem, and the error names the setting to widen.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xcals  # type: ignore[import-untyped]  # ships no type information

from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Session

BOUNDS_SETTINGS = "schedule.calendar_start and schedule.calendar_end"


class ExchangeCalendar:
    """Sessions, holidays and early closes of one exchange between two explicit dates."""

    def __init__(
        self,
        name: str = "XNYS",
        *,
        start: date,
        end: date,
        bounds_settings: str = BOUNDS_SETTINGS,
    ) -> None:
        if end <= start:
            raise ConfigError(
                f"the exchange calendar's end {end} is not after its start {start}: "
                f"fix {bounds_settings}"
            )
        self.name = name
        self.start = start
        self.end = end
        self._settings = bounds_settings
        try:
            # pandas warns about exchange_calendars' use of its deprecated APIs; not our concern.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                calendar = xcals.get_calendar(name, start=start.isoformat(), end=end.isoformat())
                schedule = calendar.schedule
                early = {stamp.date() for stamp in calendar.early_closes}
        except xcals.errors.InvalidCalendarName:
            raise ConfigError(
                f"{name!r} is not an exchange calendar known to exchange_calendars: "
                "use an ISO MIC such as XNYS"
            ) from None
        except ValueError as error:
            raise ConfigError(
                f"exchange calendar {name} cannot cover {start} to {end} ({error}): "
                f"fix {bounds_settings}"
            ) from None
        self.timezone = ZoneInfo(str(calendar.tz))
        self._sessions: dict[date, Session] = {}
        for label, opens, closes in zip(
            schedule.index, schedule["open"], schedule["close"], strict=True
        ):
            day: date = label.date()
            self._sessions[day] = Session(
                day=day,
                open=_utc(opens),
                close=_utc(closes),
                early_close=day in early,
            )
        self._days = sorted(self._sessions)

    def _check(self, day: date, what: str) -> None:
        if not self.start <= day <= self.end:
            raise ConfigError(
                f"{what} {day} is outside the {self.name} calendar's dates {self.start} to "
                f"{self.end}: widen {self._settings} in config.yaml"
            )

    def session(self, day: date) -> Session | None:
        """The session on `day`, or None on a weekend or holiday; ConfigError out of bounds."""
        self._check(day, "day")
        return self._sessions.get(day)

    def sessions(self, start: date, end: date) -> Sequence[Session]:
        """The sessions from `start` to `end` inclusive; ConfigError when out of bounds."""
        self._check(start, "start")
        self._check(end, "end")
        first = bisect.bisect_left(self._days, start)
        last = bisect.bisect_right(self._days, end)
        return [self._sessions[day] for day in self._days[first:last]]

    def previous_session(self, day: date) -> Session | None:
        """The last session strictly before `day`; ConfigError when that may be out of bounds."""
        if day - timedelta(days=1) > self.end:
            raise ConfigError(
                f"the session before {day} may be after the {self.name} calendar's end "
                f"{self.end}: widen {self._settings} in config.yaml"
            )
        index = bisect.bisect_left(self._days, day)
        if index == 0:
            raise ConfigError(
                f"the session before {day} is before the {self.name} calendar's start "
                f"{self.start}: widen {self._settings} in config.yaml"
            )
        return self._sessions[self._days[index - 1]]


def _utc(stamp: Any) -> datetime:
    """A pandas Timestamp (UTC) as a plain aware datetime in UTC."""
    value: datetime = stamp.to_pydatetime()
    return value.astimezone(UTC)
