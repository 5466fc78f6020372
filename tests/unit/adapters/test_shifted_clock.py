"""`ShiftedClock` (`fin-agent run --start-at`): starts at the instant given, runs at wall speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.system_clock import ShiftedClock


def test_shifted_clock_starts_at_the_instant_and_moves_on() -> None:
    start = datetime(2026, 12, 4, 8, 59, 20, tzinfo=ZoneInfo("America/New_York"))
    clock = ShiftedClock(start)
    first = clock.now()
    second = clock.now()
    assert first.tzinfo is UTC
    assert start <= first < start + timedelta(seconds=30)  # only the time to construct it
    assert second >= first


def test_shifted_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        ShiftedClock(datetime(2026, 12, 4, 9, 0))  # noqa: DTZ001 - the case under test
