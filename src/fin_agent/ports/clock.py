"""The `Clock` port: the only way the app learns the time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the current instant as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware UTC."""
        ...


class SettableClock(Clock, Protocol):
    """A clock its owner moves (a simulated or replayed day's), never the wall clock."""

    def set(self, instant: datetime) -> None:
        """Make `instant` (aware UTC) the current instant."""
        ...
