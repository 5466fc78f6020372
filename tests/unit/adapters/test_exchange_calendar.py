"""ExchangeCalendar: NYSE sessions, holidays and early closes from exchange_calendars, offline."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.domain.errors import ConfigError


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS", start=date(2025, 1, 1), end=date(2027, 12, 31))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_regular_session_opens_and_closes_in_utc(xnys: ExchangeCalendar) -> None:
    session = xnys.session(date(2026, 11, 25))

    assert session is not None
    assert session.open == utc(2026, 11, 25, 14, 30)
    assert session.close == utc(2026, 11, 25, 21, 0)
    assert session.open.utcoffset() is not None
    assert not session.early_close


def test_thanksgiving_is_closed_and_the_day_after_closes_at_13(xnys: ExchangeCalendar) -> None:
    friday = xnys.session(date(2026, 11, 27))

    assert xnys.session(date(2026, 11, 26)) is None
    assert friday is not None
    assert friday.early_close
    assert friday.open == utc(2026, 11, 27, 14, 30)
    assert friday.close == utc(2026, 11, 27, 18, 0)  # 13:00 New York time


def test_christmas_eve_closes_early_and_christmas_is_closed(xnys: ExchangeCalendar) -> None:
    eve = xnys.session(date(2026, 12, 24))

    assert eve is not None
    assert eve.early_close
    assert eve.close == utc(2026, 12, 24, 18, 0)
    assert xnys.session(date(2026, 12, 25)) is None


def test_good_friday_is_closed(xnys: ExchangeCalendar) -> None:
    assert xnys.session(date(2026, 4, 3)) is None
    assert xnys.previous_session(date(2026, 4, 6)) == xnys.session(date(2026, 4, 2))


def test_session_times_follow_dst_in_utc(xnys: ExchangeCalendar) -> None:
    before_spring, after_spring = xnys.session(date(2026, 3, 6)), xnys.session(date(2026, 3, 9))
    before_fall, after_fall = xnys.session(date(2026, 10, 30)), xnys.session(date(2026, 11, 2))

    assert before_spring is not None
    assert after_spring is not None
    assert before_fall is not None
    assert after_fall is not None
    assert before_spring.open == utc(2026, 3, 6, 14, 30)
    assert after_spring.open == utc(2026, 3, 9, 13, 30)
    assert before_fall.open == utc(2026, 10, 30, 13, 30)
    assert after_fall.open == utc(2026, 11, 2, 14, 30)


def test_sessions_of_thanksgiving_week(xnys: ExchangeCalendar) -> None:
    days = [s.day for s in xnys.sessions(date(2026, 11, 23), date(2026, 11, 29))]

    assert days == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]


def test_previous_session_skips_the_holiday(xnys: ExchangeCalendar) -> None:
    previous = xnys.previous_session(date(2026, 11, 27))

    assert previous is not None
    assert previous.day == date(2026, 11, 25)


def test_a_day_after_the_bounds_names_the_settings_to_widen(xnys: ExchangeCalendar) -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "day 2028-01-03 is outside the XNYS calendar's dates 2025-01-01 to 2027-12-31: "
            "widen schedule.calendar_start and schedule.calendar_end in config.yaml"
        ),
    ):
        xnys.session(date(2028, 1, 3))


def test_a_range_reaching_past_the_bounds_is_refused(xnys: ExchangeCalendar) -> None:
    with pytest.raises(ConfigError, match=re.escape("end 2028-01-05 is outside")):
        xnys.sessions(date(2027, 12, 20), date(2028, 1, 5))
    with pytest.raises(ConfigError, match=re.escape("start 2024-12-30 is outside")):
        xnys.sessions(date(2024, 12, 30), date(2025, 1, 5))


def test_previous_session_before_the_start_or_past_the_end_is_refused(
    xnys: ExchangeCalendar,
) -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "the session before 2025-01-02 is before the XNYS calendar's start 2025-01-01"
        ),
    ):
        xnys.previous_session(date(2025, 1, 2))
    with pytest.raises(ConfigError, match=re.escape("may be after the XNYS calendar's end")):
        xnys.previous_session(date(2028, 1, 2))
    last = xnys.previous_session(date(2028, 1, 1))
    assert last is not None
    assert last.day == date(2027, 12, 31)


def test_bounds_out_of_order_and_unknown_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=re.escape("end 2026-01-01 is not after its start")):
        ExchangeCalendar(start=date(2026, 1, 1), end=date(2026, 1, 1))
    with pytest.raises(ConfigError, match=re.escape("'XNOPE' is not an exchange calendar")):
        ExchangeCalendar("XNOPE", start=date(2026, 1, 1), end=date(2026, 12, 31))
