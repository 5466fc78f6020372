"""Domain events: deterministic ids, frozen values, aware UTC times only."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fin_agent.domain.errors import DataError
from fin_agent.domain.events import (
    EVENT_NAMESPACE,
    EVENT_TYPES,
    DayStarted,
    ErrorRaised,
    PlanExpired,
    Severity,
    event_id,
)
from fin_agent.domain.values import symbol

DAY = date(2024, 1, 2)
AT = datetime(2024, 1, 2, 14, 0, tzinfo=UTC)


def day_started(occurred_at: datetime = AT) -> DayStarted:
    return DayStarted(
        id=DayStarted.id_for(DAY.isoformat()),
        occurred_at=occurred_at,
        trading_day=DAY,
        start_equity=Decimal(100_000),
        strategy="gap_and_go",
        session_open=datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
        session_close=datetime(2024, 1, 2, 21, 0, tzinfo=UTC),
    )


def test_event_id_is_deterministic_per_type_and_key() -> None:
    assert event_id("plan.created", "gap_and_go-2024-01-02-AAA") == event_id(
        "plan.created", "gap_and_go-2024-01-02-AAA"
    )


def test_event_id_differs_for_another_key() -> None:
    assert event_id("plan.created", "k1") != event_id("plan.created", "k2")


def test_event_ids_are_distinct_across_types_for_the_same_key() -> None:
    ids = {cls.id_for("gap_and_go-2024-01-02-AAA") for cls in EVENT_TYPES}

    assert len(ids) == len(EVENT_TYPES)


def test_event_id_for_matches_the_type_and_is_a_uuid5() -> None:
    key = "2024-01-02"

    assert DayStarted.id_for(key) == event_id("day.started", key)
    assert uuid.UUID(DayStarted.id_for(key)).version == 5


@given(event_type=st.text(), key=st.text())
def test_event_id_is_the_uuid5_of_type_and_key(event_type: str, key: str) -> None:
    assert event_id(event_type, key) == str(uuid.uuid5(EVENT_NAMESPACE, f"{event_type}|{key}"))


def test_event_types_are_unique_dotted_and_versioned() -> None:
    types = [cls.TYPE for cls in EVENT_TYPES]

    assert len(set(types)) == len(types)
    assert all("." in t for t in types)
    assert all(cls.VERSION >= 1 for cls in EVENT_TYPES)


def test_events_are_frozen() -> None:
    event = day_started()

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.start_equity = Decimal(1)  # type: ignore[misc]  # frozen: what is tested
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.id = "other"  # type: ignore[misc]  # frozen: what is tested


def test_events_with_nested_values_are_frozen() -> None:
    event = PlanExpired(
        id=PlanExpired.id_for("p"),
        occurred_at=AT,
        trading_day=DAY,
        plan_id="p",
        symbol=symbol("AAA"),
    )

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.plan_id = "q"  # type: ignore[misc]  # frozen: what is tested


def test_event_refuses_a_naive_occurred_at() -> None:
    naive = datetime(2024, 1, 2, 14, 0)  # noqa: DTZ001 - the point of the test

    with pytest.raises(
        DataError, match=r"^day\.started occurred_at must be a timezone-aware UTC datetime"
    ):
        day_started(occurred_at=naive)


def test_event_refuses_an_aware_non_utc_occurred_at() -> None:
    new_york = datetime(2024, 1, 2, 9, 0, tzinfo=ZoneInfo("America/New_York"))

    with pytest.raises(DataError, match=r"^error\.raised occurred_at must be a timezone-aware UTC"):
        ErrorRaised(
            id=ErrorRaised.id_for("x"),
            occurred_at=new_york,
            trading_day=DAY,
            source="feed",
            code="feed_down",
            message="reconnecting",
        )


def test_event_defaults_and_fields_survive_construction() -> None:
    event = ErrorRaised(
        id=ErrorRaised.id_for("x"),
        occurred_at=AT,
        trading_day=DAY,
        source="feed",
        code="feed_down",
        message="reconnecting",
    )

    assert event.severity is Severity.ERROR
    assert event.TYPE == "error.raised"
    assert event.occurred_at == AT
