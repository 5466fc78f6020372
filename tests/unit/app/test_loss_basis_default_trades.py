"""The default `risk.loss_limit_basis: marked` keeps the default strategy's trades: over seeded
simulated days the marked and the realised loss limit make exactly the same orders and trades
(the recorded days of ../shared/data are checked the same way in tests/e2e)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from fin_agent.domain.events import DomainEvent, OrderPlaced, PlanRejected, PositionClosed
from fin_agent.domain.rules import LossBasis, RiskLimits, Strategy
from fin_agent.domain.values import Session
from unit.app.test_day_resume import CALENDAR, straight

pytestmark = pytest.mark.asyncio
SESSIONS = list(CALENDAR.sessions(date(2025, 3, 3), date(2025, 4, 30)))[:12]


def with_basis(basis: LossBasis) -> Strategy:
    return replace(Strategy(), risk=replace(RiskLimits(), loss_limit_basis=basis))


async def test_default_loss_basis_is_marked() -> None:
    assert RiskLimits().loss_limit_basis is LossBasis.MARKED


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: str(s.day))
async def test_marked_and_realised_loss_limits_make_the_same_default_trades(
    session: Session,
) -> None:
    marked, _ = await straight(session, with_basis(LossBasis.MARKED))
    realised, _ = await straight(session, with_basis(LossBasis.REALISED))

    def decisions(events: list[DomainEvent]) -> list[tuple[str, str]]:
        return [
            (type(e).__name__, e.id)
            for e in events
            if isinstance(e, OrderPlaced | PositionClosed | PlanRejected)
        ]

    assert decisions(marked) == decisions(realised)
    assert [e.trade for e in marked if isinstance(e, PositionClosed)] == [
        e.trade for e in realised if isinstance(e, PositionClosed)
    ]
