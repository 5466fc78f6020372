"""A simulated day through `AlpacaBroker` on the local server makes the paper broker's trades.

The same seeded session runs twice: with `broker.kind: paper`, then with `broker.kind: alpaca`
against a local Alpaca server that the agent hands its bars (`local_relay`). The reports'
closed trades must be identical.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from fin_agent.adapters.broker.alpaca_local.book import LocalBook
from fin_agent.adapters.broker.alpaca_local.server import LocalAlpacaServer
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.broker import AlpacaSettings, BrokerKind, BrokerSettings
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.runner import run_session
from fin_agent.domain.report import DailyReport

REPO = Path(__file__).resolve().parents[2]
DAY = date(2025, 3, 12)


async def _report(settings: Settings) -> DailyReport:
    container = await build_simulation(settings, bus="memory", store="memory")
    async with running(container):
        session = container.calendar.session(DAY)
        assert session is not None
        return await run_session(container, session, Decimal(100_000))


def _on_alpaca(settings: Settings, server: LocalAlpacaServer) -> Settings:
    return settings.model_copy(
        update={
            "broker": BrokerSettings(
                kind=BrokerKind.ALPACA,
                alpaca=AlpacaSettings(
                    base_url=server.base_url, stream_url=server.stream_url, local_relay=True
                ),
            ),
            "alpaca_key_id": SecretStr("local-key"),
            "alpaca_secret_key": SecretStr("local-secret"),
        }
    )


@pytest.mark.asyncio
async def test_a_simulated_day_through_alpaca_makes_the_paper_brokers_trades() -> None:
    paper_settings = load_settings(REPO / "config.yaml")
    paper = await _report(paper_settings)
    server = LocalAlpacaServer(LocalBook(cash=Decimal(100_000)))
    await server.start()
    try:
        alpaca = await _report(_on_alpaca(paper_settings, server))
    finally:
        await server.stop()
    assert paper.performance.trades, "the seeded day trades"
    assert alpaca.performance.trades == paper.performance.trades
    entries = [
        o for o in server.book.orders.values() if o.order_class == "bracket" and not o.parent_id
    ]
    assert len(entries) == len(paper.performance.trades), "every trade went through the server"
    assert server.book.positions == {}, "flattened at the close"


@pytest.mark.asyncio
async def test_with_alpaca_the_day_is_sized_from_the_accounts_equity() -> None:
    settings = load_settings(REPO / "config.yaml")
    server = LocalAlpacaServer(LocalBook(cash=Decimal(50_000)))
    await server.start()
    try:
        report = await _report(_on_alpaca(settings, server))
    finally:
        await server.stop()
    # the records say 100,000 (run_session's argument); the account holds 50,000
    assert report.performance.start_equity == Decimal(50_000)
