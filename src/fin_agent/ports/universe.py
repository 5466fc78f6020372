"""The `UniverseSource` port: the symbols a day's scan looks at, when no list is written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from fin_agent.domain.values import Symbol


class UniverseSource(Protocol):
    """Where a whole-market universe comes from (Alpaca's assets, pre-filtered)."""

    async def symbols(self, day: date) -> Sequence[Symbol]:
        """The symbols worth scanning on `day`, sorted."""
        ...
