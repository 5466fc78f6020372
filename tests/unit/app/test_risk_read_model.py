"""The status API's risk figures: the trading state's reason and the VaR of book and strategy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.codec.registry import default_registry
from fin_agent.adapters.memory import InMemoryStore
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.risk_view import trading_risk, value_at_risk
from fin_agent.app.runner import run_session
from fin_agent.domain.events import ReportDaily, SnapshotTaken
from fin_agent.domain.gap_scanner import SymbolSnapshot, UniverseSnapshot
from fin_agent.domain.values import DailyBar, symbol

REPO = Path(__file__).resolve().parents[3]


def test_trading_risk_is_active_without_a_state_change_and_else_the_latest() -> None:
    assert trading_risk([])["state"] == "active"
    rows = [
        {"current": "reducing", "reason": "daily_loss_limit", "detail": "a", "occurred_at": 1},
        {"current": "halted", "reason": "error_breaker", "detail": "b", "occurred_at": 2},
    ]
    assert trading_risk(rows) == {
        "state": "halted", "reason": "error_breaker", "detail": "b", "at": 2
    }  # fmt: skip


@pytest.mark.asyncio
async def test_status_shows_the_strategy_var_from_the_stored_reports() -> None:
    settings = load_settings(REPO / "config.yaml", environ={})
    container = await build_simulation(settings, bus="memory", store="memory")
    sessions = container.calendar.sessions(
        settings.simulator.start_date, settings.simulator.start_date.replace(day=7)
    )
    async with running(container):
        equity = Decimal(100_000)
        for session in sessions:
            equity = (await run_session(container, session, equity)).performance.end_equity
        status = await ReadModels(container.store).status()

    reports = await container.store.events(types=[ReportDaily.TYPE])
    pnls = sorted(e.report.performance.net_pnl for e in reports if isinstance(e, ReportDaily))
    strategy = status["var"]["strategy"]
    assert strategy["days"] == len(pnls) == len(sessions)
    assert Decimal(strategy["var99"]) == max(-pnls[0], Decimal(0))  # the worst day, to the cent
    assert status["var"]["book"] == {"var95": "0.00", "var99": "0.00", "days": 0}  # all flat
    assert status["risk"]["state"] == status["trading_state"]


@pytest.mark.asyncio
async def test_book_var_marks_the_open_position_against_its_snapshot_returns() -> None:
    # Closes 100, 90, 99: returns -10 % and +10 %; 100 shares long marked at 50 = 5,000 held,
    # whose worst day loses 500.00.
    day = date(2025, 3, 4)
    bars = tuple(
        DailyBar(
            symbol=symbol("AAA"), session=day - timedelta(days=3 - i), open=c, high=c, low=c,
            close=c, volume=1000,
        )
        for i, c in enumerate((Decimal(100), Decimal(90), Decimal(99)))
    )  # fmt: skip
    at = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)
    snapshot = UniverseSnapshot(
        day=day,
        taken_at=at,
        symbols=(SymbolSnapshot(symbol=symbol("AAA"), daily_bars=bars, premarket=None),),
    )
    store = InMemoryStore(EventCodec(default_registry()))
    await store.scan_records().put("gap:2025-03-04", snapshot)
    event = SnapshotTaken.of("gap:2025-03-04", at=at, day=day, snapshot=snapshot).on_bus()
    await store.write([event])
    position = {"symbol": "AAA", "side": "long", "qty": 100, "price": "48", "mark": "50"}

    var = await value_at_risk(store, day, [position])

    assert var["book"] == {"var95": Decimal("500.00"), "var99": Decimal("500.00"), "days": 2}
    assert var["strategy"]["days"] == 0
