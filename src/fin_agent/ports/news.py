"""The `News` port: company headlines, the catalyst behind a gap."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from fin_agent.domain.values import Headline, Symbol


class News(Protocol):
    """A source of company headlines."""

    async def headlines(
        self, symbol: Symbol, since: datetime, until: datetime
    ) -> Sequence[Headline]:
        """Return the headlines about `symbol` published in [since, until), oldest first."""
        ...
