"""The `Orders` port: where bracket orders go and fills come back from (paper or real broker)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from fin_agent.domain.orders import BracketOrder, Fill, FillKind, OrderRejection
from fin_agent.domain.values import Bar


class Orders(Protocol):
    """A broker. Every call is idempotent on the client order id (the plan id)."""

    async def submit(self, order: BracketOrder) -> None:
        """Place a bracket order; a second submit of the same client order id does nothing."""
        ...

    async def cancel(self, client_order_id: str) -> None:
        """Cancel an entry that has not filled; no effect once it has."""
        ...

    async def close(self, client_order_id: str, kind: FillKind, at: datetime) -> None:
        """Close the position of an order at market (flatten, or a halt), cancelling its bracket."""
        ...

    async def on_market(self, bars: Sequence[Bar]) -> None:
        """The market printed these bars: a simulated broker fills on them, a real one ignores."""
        ...

    async def end_of_session(self, at: datetime) -> None:
        """The session closed: a simulated broker fills closes still pending at the last price."""
        ...

    async def restore(
        self,
        working: Sequence[BracketOrder],
        held: Sequence[tuple[BracketOrder, datetime]],
        last_bars: Sequence[Bar],
    ) -> None:
        """A restarted agent's day, rebuilt from its events, hands back what the broker held:
        entry orders still working, positions (each with the start of the bar its entry filled
        in), and each symbol's last bar. A simulated broker takes them as they are; a real one
        reconciles them with the account."""
        ...

    async def take_fills(self) -> Sequence[Fill]:
        """Return the fills since the last call, in the order they happened."""
        ...

    async def take_rejections(self) -> Sequence[OrderRejection]:
        """Return the orders the broker refused since the last call (at submit, or later)."""
        ...

    async def account_equity(self) -> Decimal | None:
        """The account's equity as the broker keeps it (the truth a day is sized from), or None
        for a simulated broker, whose equity is the project's own records."""
        ...
