"""Validated scalar types of the settings: time zones, clock times, paths, cron and session times.

Each validator raises `SettingsValueError` with what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from pydantic import AfterValidator, BeforeValidator

from fin_agent.app.config.problems import SettingsValueError, show

SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
MAX_AT_OFFSET = timedelta(hours=6)
_AT_RE = re.compile(r"^(open|close)\s*([+-])\s*(\d+)([mh])$")
_CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_CRON_FIX = "write five fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5'"


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise SettingsValueError.single(
            f"{name!r} is not a known time zone", f"{hint}use an IANA name such as America/New_York"
        ) from None
    return name


def _parse_clock(value: object) -> object:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 10:30 as the base-60 integer 630.
        hours, minutes = divmod(value, 60)
        raise SettingsValueError.single(
            f"got {value}, which is how YAML reads an unquoted {hours}:{minutes:02d}",
            f'quote it: "{hours}:{minutes:02d}"',
        )
    if isinstance(value, str) and (match := re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())):
        hours, minutes = int(match[1]), int(match[2])
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise SettingsValueError.single(
        f"expected a time of day as HH:MM, got {show(value)}", 'write it in quotes, e.g. "10:30"'
    )


def _absolute(path: Path) -> Path:
    return path.expanduser().absolute()


def _check_cron(expr: str) -> str:
    fields = expr.split()
    if len(fields) != len(_CRON_FIELDS):
        raise SettingsValueError.single(
            f"{expr!r} has {len(fields)} fields instead of 5", _CRON_FIX
        )
    if not croniter.is_valid(expr):
        bad = [
            f"{name} field {part!r}"
            for index, (name, part) in enumerate(zip(_CRON_FIELDS, fields, strict=True))
            if not croniter.is_valid(" ".join(part if i == index else "*" for i in range(5)))
        ]
        detail = f": the {' and the '.join(bad)} is invalid" if bad else ""
        raise SettingsValueError.single(
            f"{expr!r} is not a valid cron expression{detail}", _CRON_FIX
        )
    return expr


def parse_at(expr: str) -> tuple[Literal["open", "close"], timedelta] | None:
    """`'close - 5m'` as `("close", -5 minutes)`; None when `expr` is not a session time."""
    match = _AT_RE.match(expr)
    if match is None:
        return None
    anchor: Literal["open", "close"] = "open" if match[1] == "open" else "close"
    unit = timedelta(minutes=1) if match[4] == "m" else timedelta(hours=1)
    sign = 1 if match[2] == "+" else -1
    return anchor, sign * int(match[3]) * unit


def _check_at(expr: str) -> str:
    parsed = parse_at(expr)
    if parsed is None:
        raise SettingsValueError.single(
            f"{expr!r} is not a session time",
            "write open or close, + or -, and a number of minutes (m) or hours (h), "
            "e.g. 'open + 5m' or 'close - 5m'",
        )
    if abs(parsed[1]) > MAX_AT_OFFSET:
        raise SettingsValueError.single(
            f"{expr!r} is more than 6h away from the {parsed[0]}",
            "keep the offset within 6h so the job stays on its trading day",
        )
    return expr


# Field types: each validates (and explains) its value wherever it appears in the settings.
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
ClockTime = Annotated[time, BeforeValidator(_parse_clock)]
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]
CronExpression = Annotated[str, AfterValidator(_check_cron)]
SessionTime = Annotated[str, AfterValidator(_check_at)]
