"""The schedule: cron in exchange time (checked against croniter), session-relative jobs, the NYSE
calendar's holidays and early closes, DST, and the `fin-agent schedule` command."""

from __future__ import annotations

import argparse
import io
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from pydantic import ValidationError

from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.app.cli.schedule import schedule_command
from fin_agent.app.config.schedule import JobSchedule, JobsSettings, ScheduleSettings
from fin_agent.app.config.settings import Settings
from fin_agent.app.schedule.runs import Cron, CronSyntaxError, Schedule, ScheduledRun

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS", start=date(2025, 1, 1), end=date(2027, 12, 31))


@pytest.fixture
def schedule(xnys: ExchangeCalendar) -> Schedule:
    return Schedule(ScheduleSettings(), xnys, exchange_timezone="America/New_York")


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def of(runs: list[ScheduledRun], job: str) -> list[datetime]:
    return [run.at_utc for run in runs if run.job == job]


# -- cron, cross-checked against croniter --------------------------------------------------------

CROSS_CHECKED = [
    "0 9 * * 1-5",
    "*/15 9-16 * * 1-5",
    "30 17 * * *",
    "0 12 1,15 * fri",  # day-of-month OR day-of-week, as POSIX cron
    "5 4 */2 jan-mar,dec mon-fri",
    "*/20 2 * * *",  # meets the spring-forward gap: once, at its end
    "59 23 31 * *",
]


def croniter_fires(expr: str, start: datetime, end: datetime) -> Iterator[datetime]:
    it = croniter(expr, start - timedelta(seconds=1))
    while (fire := it.get_next(datetime)) < end:
        yield fire.astimezone(UTC)


@pytest.mark.parametrize("expr", CROSS_CHECKED)
def test_cron_matches_croniter_at_every_minute_of_a_year(expr: str) -> None:
    cron = Cron.parse(expr, "America/New_York")
    start, end = ny(2026, 1, 1), ny(2027, 1, 1)

    ours = list(cron.fire_times(start, end))
    theirs = list(croniter_fires(expr, start, end))

    # Equal fire lists over the year mean equal next fires from every minute of it; the next
    # fire is also asked for on both sides of every fire, and from random minutes against a
    # fresh croniter, to check `next_after` itself.
    assert ours == theirs
    assert ours, "the expression fires in 2026"
    following = [*ours[1:], cron.next_after(ours[-1])]
    for fire, after in zip(ours, following, strict=True):
        assert cron.next_after(fire - timedelta(minutes=1)) == fire
        assert cron.next_after(fire - timedelta(seconds=1)) == fire
        assert cron.next_after(fire) == after
    rng = random.Random(expr)
    for _ in range(300):
        minute = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
        expected = croniter(expr, minute).get_next(datetime).astimezone(UTC)
        assert cron.next_after(minute) == expected, minute


def test_cron_fires_once_in_a_dst_gap_and_once_in_an_overlap() -> None:
    gap = Cron.parse("30 2 * * *", "America/New_York")
    overlap = Cron.parse("30 1 * * *", "America/New_York")

    assert list(gap.fire_times(ny(2026, 3, 8), ny(2026, 3, 9))) == [utc(2026, 3, 8, 7, 0)]
    # 01:30 happens twice on 2026-11-01: EDT (05:30 UTC) then EST (06:30 UTC); it fires once.
    assert list(overlap.fire_times(ny(2026, 11, 1), ny(2026, 11, 2))) == [utc(2026, 11, 1, 5, 30)]


def test_cron_in_another_time_zone() -> None:
    cron = Cron.parse("0 15 * * 1-5", "Europe/Berlin")

    assert cron.next_after(utc(2026, 3, 27, 0, 0)) == utc(2026, 3, 27, 14, 0)  # CET
    assert cron.next_after(utc(2026, 3, 28, 0, 0)) == utc(2026, 3, 30, 13, 0)  # CEST


@pytest.mark.parametrize(
    ("expr", "detail"),
    [
        ("0 9 * * 5#3", "the day-of-week field has '5#3', which is not a number or a name"),
        ("0 9 L * *", "the day-of-month field has 'L', which is not a number or a name"),
        ("0 9 * * 1-5 2026", "it has 6 fields instead of 5"),
        ("0 17-9 * * *", "the hour field's range '17-9' runs backwards"),
        ("*/0 9 * * *", "the minute field has step '0'"),
        ("0 24 * * *", "the hour field has 24, outside 0-23"),
    ],
)
def test_cron_the_scheduler_cannot_evaluate_is_explained(expr: str, detail: str) -> None:
    with pytest.raises(CronSyntaxError, match=re.escape(f"{expr!r} cannot be scheduled: {detail}")):
        Cron.parse(expr)


def test_config_refuses_a_cron_croniter_accepts_but_the_scheduler_cannot_run() -> None:
    with pytest.raises(ValidationError, match=re.escape("'0 9 L * *' cannot be scheduled")):
        JobSchedule(cron="0 9 L * *")


# -- the plan on NYSE sessions -------------------------------------------------------------------


def test_spring_dst_week_moves_the_9am_scan_from_14_to_13_utc(schedule: Schedule) -> None:
    runs = schedule.runs(ny(2026, 3, 2), ny(2026, 3, 14))

    assert of(runs, "scan") == [
        *(utc(2026, 3, day, 14, 0) for day in range(2, 7)),
        *(utc(2026, 3, day, 13, 0) for day in range(9, 14)),
    ]
    assert of(runs, "flatten")[4:6] == [utc(2026, 3, 6, 20, 55), utc(2026, 3, 9, 19, 55)]
    assert {run.at.hour for run in runs if run.job == "scan"} == {9}
    assert not [run for run in runs if run.session in (date(2026, 3, 7), date(2026, 3, 8))]


def test_autumn_dst_week_moves_the_9am_scan_from_13_to_14_utc(schedule: Schedule) -> None:
    runs = schedule.runs(ny(2026, 10, 26), ny(2026, 11, 7))

    assert of(runs, "scan") == [
        *(utc(2026, 10, day, 13, 0) for day in range(26, 31)),
        *(utc(2026, 11, day, 14, 0) for day in range(2, 7)),
    ]
    assert of(runs, "housekeeping")[4:6] == [utc(2026, 10, 30, 21, 30), utc(2026, 11, 2, 22, 30)]


def test_thanksgiving_has_no_jobs_and_the_next_day_flattens_at_1255(schedule: Schedule) -> None:
    thanksgiving = schedule.runs(ny(2026, 11, 26), ny(2026, 11, 27))
    friday = schedule.runs(ny(2026, 11, 27), ny(2026, 11, 28))

    assert thanksgiving == []
    assert [(run.job, f"{run.at:%H:%M}") for run in friday] == [
        ("scan", "09:00"),
        ("plan", "09:35"),
        ("flatten", "12:55"),
        ("report", "13:15"),
        ("housekeeping", "17:30"),
    ]
    flatten = friday[2]
    assert flatten.at == ny(2026, 11, 27, 12, 55)
    assert flatten.early_close
    assert flatten.rule == "at: close - 5m"
    assert flatten.reason == "close 13:00 - 5m = 12:55; session 2026-11-27, early close at 13:00"
    assert friday[0].reason == (
        "cron '0 9 * * 1-5' in America/New_York; session 2026-11-27, early close at 13:00"
    )


def test_christmas_eve_closes_early_and_christmas_has_no_jobs(schedule: Schedule) -> None:
    runs = schedule.runs(ny(2026, 12, 24), ny(2026, 12, 26))

    assert {run.session for run in runs} == {date(2026, 12, 24)}
    assert of(runs, "flatten") == [ny(2026, 12, 24, 12, 55)]
    assert of(runs, "report") == [ny(2026, 12, 24, 13, 15)]


def test_good_friday_has_no_jobs(schedule: Schedule) -> None:
    runs = schedule.runs(ny(2026, 4, 2), ny(2026, 4, 7))

    assert sorted({run.session for run in runs}) == [date(2026, 4, 2), date(2026, 4, 6)]
    assert of(runs, "flatten") == [ny(2026, 4, 2, 15, 55), ny(2026, 4, 6, 15, 55)]


def test_slot_ids_are_stable_and_name_job_day_and_time(xnys: ExchangeCalendar) -> None:
    first = Schedule(ScheduleSettings(), xnys).runs(ny(2026, 11, 27), ny(2026, 11, 28))
    second = Schedule(ScheduleSettings(), xnys).runs(ny(2026, 11, 27), ny(2026, 11, 28))

    assert [run.slot_id for run in first] == [run.slot_id for run in second]
    assert first[2].slot_id == "flatten:2026-11-27T12:55-05:00"
    assert len({run.slot_id for run in first}) == len(first)


def test_upcoming_and_next_run(schedule: Schedule) -> None:
    upcoming = schedule.upcoming(ny(2026, 11, 25, 16, 15), 3)

    assert [(run.job, run.at) for run in upcoming] == [
        ("report", ny(2026, 11, 25, 16, 15)),
        ("housekeeping", ny(2026, 11, 25, 17, 30)),
        ("scan", ny(2026, 11, 27, 9, 0)),
    ]
    following = schedule.next_run(ny(2026, 11, 25, 16, 15))
    assert following is not None
    assert following.job == "housekeeping"


def test_a_job_with_its_own_cron_in_another_zone(xnys: ExchangeCalendar) -> None:
    settings = ScheduleSettings(
        timezone="Europe/London",
        jobs=JobsSettings(scan=JobSchedule(cron="0 14 * * 1-5")),
    )
    runs = Schedule(settings, xnys).runs(ny(2026, 3, 9), ny(2026, 3, 10))

    assert of(runs, "scan") == [utc(2026, 3, 9, 14, 0)]  # London is still on GMT
    assert [run.at for run in runs if run.job == "scan"] == [ny(2026, 3, 9, 10, 0)]


def test_a_query_past_the_calendar_end_names_the_setting(schedule: Schedule) -> None:
    with pytest.raises(Exception, match=re.escape("widen schedule.calendar_start and")):
        schedule.upcoming(ny(2027, 12, 20), 100)


# -- the schedule settings ---------------------------------------------------------------------


def test_lock_ttl_must_be_shorter_than_the_grace() -> None:
    with pytest.raises(
        ValidationError,
        match=re.escape("schedule.lock_ttl_secs (600) must be shorter than the shortest grace"),
    ):
        ScheduleSettings(lock_ttl_secs=600, grace_minutes=10)


def test_calendar_bounds_must_be_in_order() -> None:
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "schedule.calendar_end (2026-01-01) must be after schedule.calendar_start (2026-06-01)"
        ),
    ):
        ScheduleSettings(calendar_start=date(2026, 6, 1), calendar_end=date(2026, 1, 1))


def test_a_job_grace_overrides_the_default() -> None:
    settings = ScheduleSettings(
        jobs=JobsSettings(flatten=JobSchedule(at="close - 5m", grace_minutes=3))
    )

    assert settings.grace("flatten") == timedelta(minutes=3)
    assert settings.grace("scan") == timedelta(minutes=10)


# -- fin-agent schedule --------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secrets_dir=tmp_path / "no-secrets")


def test_schedule_command_json_skips_thanksgiving_and_flattens_early(settings: Settings) -> None:
    out = io.StringIO()
    args = argparse.Namespace(start=date(2026, 11, 25), count=12, json=True)

    code = schedule_command(args, settings, out)

    runs = json.loads(out.getvalue())
    assert code == 0
    assert len(runs) == 12
    assert not [run for run in runs if run["at"].startswith("2026-11-26")]
    assert {"job": "flatten", "at": "2026-11-27T12:55:00-05:00"}.items() <= runs[7].items()
    assert [run["job"] for run in runs[:5]] == ["scan", "plan", "flatten", "report", "housekeeping"]
    assert runs[0]["at"] == "2026-11-25T09:00:00-05:00"
    assert runs[-1] == {
        "job": "plan",
        "at": "2026-11-30T09:35:00-05:00",
        "at_utc": "2026-11-30T14:35:00+00:00",
        "slot": "plan:2026-11-30T09:35-05:00",
        "session": "2026-11-30",
        "rule": "at: open + 5m",
        "early_close": False,
        "session_open": "2026-11-30T09:30:00-05:00",
        "session_close": "2026-11-30T16:00:00-05:00",
        "reason": "open 09:30 + 5m = 09:35; session 2026-11-30",
    }


def test_schedule_command_text_shows_reasons_and_closed_days(settings: Settings) -> None:
    out = io.StringIO()
    args = argparse.Namespace(start=date(2026, 11, 26), count=3, json=False)

    schedule_command(args, settings, out)

    assert out.getvalue().splitlines() == [
        "next 3 runs from 2026-11-26 00:00 EST (America/New_York, XNYS calendar):",
        "2026-11-26 Thu              -             no session: the exchange is closed",
        "2026-11-27 Fri 09:00 -0500  scan          cron '0 9 * * 1-5' in America/New_York; "
        "session 2026-11-27, early close at 13:00",
        "2026-11-27 Fri 09:35 -0500  plan          open 09:30 + 5m = 09:35; session 2026-11-27, "
        "early close at 13:00",
        "2026-11-27 Fri 12:55 -0500  flatten       close 13:00 - 5m = 12:55; session 2026-11-27, "
        "early close at 13:00",
    ]
