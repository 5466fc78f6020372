"""The `Clock` port: the only way the app learns the time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the current instant as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware UTC."""
        ...
