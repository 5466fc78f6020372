"""The `Calendar` port: the exchange's regular sessions, holidays and early closes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from fin_agent.domain.values import Session


class Calendar(Protocol):
    """Answers which days are sessions and when each opens and closes."""

    def session(self, day: date) -> Session | None:
        """Return the session on `day`, or None when the exchange is closed that day."""
        ...

    def sessions(self, start: date, end: date) -> Sequence[Session]:
        """Return the sessions from `start` to `end` inclusive, in order."""
        ...

    def previous_session(self, day: date) -> Session | None:
        """Return the last session strictly before `day`, or None when unknown."""
        ...
