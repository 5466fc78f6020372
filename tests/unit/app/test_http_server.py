"""The agent's HTTP server and read models over a simulated day stored in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fin_agent.app.bootstrap import Container, build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.server import HttpDeps, make_app, store_check
from fin_agent.app.runner import run_session
from fin_agent.app.serve import http_deps
from fin_agent.domain.events import OrderPlaced, PlanCreated, PositionClosed, ScanCompleted

REPO = Path(__file__).resolve().parents[3]


@pytest_asyncio.fixture
async def day_stored() -> AsyncIterator[Container]:
    settings = load_settings(REPO / "config.yaml", environ={})
    container = await build_simulation(settings, bus="memory", store="memory")
    session = container.calendar.session(settings.simulator.start_date)
    assert session is not None
    async with running(container):
        await run_session(container, session, Decimal(100_000))
        yield container


async def client_for(deps: HttpDeps) -> TestClient[web.Request, web.Application]:
    client = TestClient(TestServer(make_app(deps)))
    await client.start_server()
    return client


@pytest.mark.asyncio
async def test_read_models_show_the_day_candidates_plans_trades_and_pnl(
    day_stored: Container,
) -> None:
    models = ReadModels(day_stored.store)

    [day] = await models.days()
    detail = await models.day(day_stored.settings.simulator.start_date)

    assert day["day"] == "2025-03-03"
    assert day["report"]["trades"] == len(detail["trades"]) > 0
    assert len(detail["candidates"]) > 0
    assert len(detail["rejections"]) > 0
    assert {p["state"] for p in detail["plans"]} <= {"closed", "expired", "planned"} | {
        "rejected:risk:max_open_positions"
    }
    realised = sum(Decimal(t["net_pnl"]) for t in detail["trades"])
    assert Decimal(detail["pnl"]["realised"]) == realised
    assert detail["positions"] == []  # everything was flattened
    curve = detail["equity_curve"]
    assert Decimal(curve[-1]["equity"]) - Decimal(curve[0]["equity"]) == realised


@pytest.mark.asyncio
async def test_read_models_give_each_plan_order_and_trade_the_config_version_of_its_event(
    day_stored: Container,
) -> None:
    store = day_stored.store
    day = day_stored.settings.simulator.start_date
    wanted = {PlanCreated.TYPE, OrderPlaced.TYPE, PositionClosed.TYPE, ScanCompleted.TYPE}
    events = await store.events(day=day, types=wanted)
    version = {e.id: getattr(e, "config_version", None) for e in events}

    detail = await ReadModels(store).day(day)

    rows = [
        row
        for key in ("candidates", "rejections", "plans", "orders", "trades")
        for row in detail[key]
    ]
    assert all(detail[key] for key in ("plans", "orders", "trades"))
    assert all(row["config_version"] == version[row["event_id"]] for row in rows)
    assert {row["config_version"] for row in rows} == {day_stored.live.version}  # one config


@pytest.mark.asyncio
async def test_healthz_and_readyz_answer_and_name_a_failing_check(day_stored: Container) -> None:
    async def broken() -> str | None:
        return "Redis does not answer"

    models = ReadModels(day_stored.store)
    ok = await client_for(
        HttpDeps(read_models=models, checks={"store": store_check(day_stored.store)}, info={})
    )
    down = await client_for(
        HttpDeps(
            read_models=models,
            checks={"store": store_check(day_stored.store), "bus": broken},
            info={},
        )
    )
    try:
        health = await ok.get("/healthz")
        ready = await ok.get("/readyz")
        not_ready = await down.get("/readyz")

        assert (health.status, await health.json()) == (200, {"status": "alive"})
        assert ready.status == 200
        assert (await ready.json())["ready"] is True
        assert not_ready.status == 503
        body = await not_ready.json()
        assert body["checks"]["bus"] == {"ok": False, "reason": "Redis does not answer"}
        assert body["checks"]["store"] == {"ok": True}
    finally:
        await ok.close()
        await down.close()


@pytest.mark.asyncio
async def test_api_serves_status_days_and_a_day_and_refuses_a_bad_date(
    day_stored: Container,
) -> None:
    client = await client_for(
        HttpDeps(read_models=ReadModels(day_stored.store), checks={}, info={})
    )
    try:
        status = await (await client.get("/api/status")).json()
        days = await (await client.get("/api/days")).json()
        day = await client.get("/api/day/2025-03-03")
        bad = await client.get("/api/day/yesterday")

        assert status["day"] == "2025-03-03"
        assert status["trades"] > 0
        assert [d["day"] for d in days] == ["2025-03-03"]
        assert day.status == 200
        assert (await day.json())["day"] == "2025-03-03"
        assert bad.status == 400
        assert "use YYYY-MM-DD" in await bad.text()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_api_serves_a_days_candles_of_any_width_and_refuses_an_unknown_width(
    day_stored: Container,
) -> None:
    store = day_stored.store
    bars = await store.rows("bars_1m", day=day_stored.settings.simulator.start_date)
    symbol = str(bars[0]["symbol"])
    client = await client_for(HttpDeps(read_models=ReadModels(store), checks={}, info={}))
    try:
        five = await (await client.get("/api/day/2025-03-03/candles")).json()
        hourly = await (
            await client.get(
                "/api/day/2025-03-03/candles", params={"width": "1h", "symbol": symbol}
            )
        ).json()
        daily = await (await client.get("/api/day/2025-03-03/candles?width=1d")).json()
        bad = await client.get("/api/day/2025-03-03/candles?width=2m")

        assert (five["day"], five["width"], five["symbol"]) == ("2025-03-03", "5m", None)
        assert five["symbols"] == sorted({str(b["symbol"]) for b in bars})
        assert sum(c["minutes"] for c in five["candles"]) == len(bars)
        assert {c["symbol"] for c in hourly["candles"]} == {symbol}
        assert [c["start"] for c in hourly["candles"]] == sorted(
            {c["start"] for c in hourly["candles"]}
        )
        assert len(daily["candles"]) == len(five["symbols"])
        first = daily["candles"][0]
        mine = [b for b in bars if b["symbol"] == first["symbol"]]
        assert Decimal(first["open"]) == mine[0]["open"]
        assert Decimal(first["close"]) == mine[-1]["close"]
        assert first["volume"] == sum(int(str(b["volume"])) for b in mine)
        assert first["start"] == "2025-03-03T05:00:00+00:00"  # New York's midnight (EST)
        assert bad.status == 400
        assert "use one of 1m, 5m, 15m, 30m, 1h, 1d" in await bad.text()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_readyz_says_which_store_and_mode_is_in_force(day_stored: Container) -> None:
    client = await client_for(http_deps(day_stored))
    try:
        body = await (await client.get("/readyz")).json()
    finally:
        await client.close()

    assert body["store"] == day_stored.store_info.backend == "memory"
    assert body["store_detail"] == day_stored.store_info.detail == "in process"


@pytest.mark.asyncio
async def test_api_news_shows_the_simulated_days_headlines_about_its_candidates_newest_first(
    day_stored: Container,
) -> None:
    client = await client_for(
        HttpDeps(read_models=ReadModels(day_stored.store), checks={}, info={})
    )
    try:
        news = await (await client.get("/api/news/2025-03-03")).json()
        every = await (await client.get("/api/news/2025-03-03?all=1")).json()
    finally:
        await client.close()
    published = [e for e in await day_stored.store.events(day=None) if e.TYPE == "news.published"]
    assert news["news"], "the simulated day publishes headlines about its candidates"
    assert len(every["news"]) == len(published) >= len(news["news"])
    assert all(set(row["symbols"]) <= set(news["symbols"]) for row in news["news"])
    times = [row["published_at"] for row in news["news"]]
    assert times == sorted(times, reverse=True)
    assert any(row["after_scan"] for row in news["news"])  # follow-ups during the session
    assert {"title", "source", "url", "published_at"} <= set(news["news"][0])
