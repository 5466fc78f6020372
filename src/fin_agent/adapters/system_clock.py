"""`SystemClock`: the real time, for the running agent (tests and simulations use `FixedClock`)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Reads the wall clock, in UTC."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        return datetime.now(UTC)
