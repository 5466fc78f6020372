"""`SystemClock`: the real time, for the running agent (tests and simulations use `FixedClock`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    """Reads the wall clock, in UTC."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        return datetime.now(UTC)


class ShiftedClock:
    """The wall clock moved to start at a given instant, then running at wall speed: a live
    agent tried at another time of day (a pre-market scan now, against local servers)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock needs an aware datetime")
        self._offset: timedelta = start - datetime.now(UTC)

    def now(self) -> datetime:
        """The shifted instant, timezone-aware UTC."""
        return datetime.now(UTC) + self._offset
