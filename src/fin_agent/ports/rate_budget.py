"""What the app reads of a vendor's rate budget: how much of each window is used (metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class WindowUse(Protocol):
    """One window of a budget right now."""

    @property
    def ratio(self) -> float:
        """The share of the window's calls used, 0 to 1."""
        ...


class BudgetStats(Protocol):
    """A budget's figures right now."""

    @property
    def name(self) -> str:
        """The budget's name (`finnhub`, `yahoo`)."""
        ...

    @property
    def windows(self) -> Sequence[WindowUse]:
        """Each of its windows."""
        ...


class RateBudgetStats(Protocol):
    """A vendor's shared rate budget, as metrics see it."""

    @property
    def stats(self) -> BudgetStats:
        """Its figures right now."""
        ...
