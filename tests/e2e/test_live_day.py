"""A whole live trading day through `run_live`, against the local Finnhub server (REST and trade
WebSocket) and a local Yahoo chart server, on a controlled clock.

The scheduler's jobs drive the day: the scan's slot opens early by its collection's planned
duration, the trade feed is pointed at the candidate, its minutes reach the trading day through
the bus, the plan job builds the plan from the opening range, a breakout enters, the connection
is cut and the feed resubscribes, the flatten job closes the position, the report job publishes
the report and the agent stops after one day. The store, /readyz and /metrics are checked, and
the API key is looked for everywhere the agent writes.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import yaml
from aiohttp import web

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.app.bootstrap import build_live
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.live.agent import LiveAgent
from fin_agent.app.live.runner import run_live
from fin_agent.domain.events import (
    ErrorRaised,
    OrderPlaced,
    PlanCreated,
    PositionClosed,
    ReportDaily,
    ScanCompleted,
)
from support import free_port

pytestmark = pytest.mark.asyncio

NY = ZoneInfo("America/New_York")
DAY = date(2026, 11, 23)  # a Monday: the scheduler's look-back holds no earlier session
KEY = "fk-LIVE-DAY-SECRET-4242"
BENCH = Path(__file__).resolve().parents[2] / "bench"


def ny(hour: int, minute: int, second: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute, second), NY)


def epoch(at: datetime) -> int:
    return int(at.timestamp())


@pytest.fixture(scope="module")
def local() -> ModuleType:
    """bench/finnhub_local.py, shared with the benchmark."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("finnhub_local")


# -- a local Yahoo chart endpoint -----------------------------------------------------------------


def daily_history(close: float, sessions: list[date], volume: int) -> list[dict[str, Any]]:
    """Flat daily bars ending at `close`: each 0.50 high to low (an ATR of 0.50)."""
    return [
        {"day": d, "o": close, "h": close + 0.25, "l": close - 0.25, "c": close, "v": volume}
        for d in sessions
    ]


def chart(symbol: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A chart answer in Yahoo's shape, each session stamped at its 09:30 open."""
    return {
        "chart": {
            "result": [
                {
                    "meta": {"symbol": symbol, "exchangeTimezoneName": "America/New_York"},
                    "timestamp": [epoch(ny(9, 30, day=r["day"])) for r in rows],
                    "indicators": {
                        "quote": [
                            {
                                "open": [r["o"] for r in rows],
                                "high": [r["h"] for r in rows],
                                "low": [r["l"] for r in rows],
                                "close": [r["c"] for r in rows],
                                "volume": [r["v"] for r in rows],
                            }
                        ]
                    },
                }
            ],
            "error": None,
        }
    }


@asynccontextmanager
async def yahoo_server(history: dict[str, list[dict[str, Any]]]) -> AsyncIterator[str]:
    """Serve `/v8/finance/chart/{symbol}` with the rows between period1 and period2."""

    async def answer(request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        first = datetime.fromtimestamp(int(request.query["period1"]), NY).date()
        last = datetime.fromtimestamp(int(request.query["period2"]), NY).date()
        rows = [r for r in history.get(symbol, []) if first <= r["day"] <= last]
        return web.json_response(chart(symbol, rows))

    app = web.Application()
    app.router.add_get("/v8/finance/chart/{symbol}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# -- the day's settings and tape ------------------------------------------------------------------


def write_settings(tmp: Path, finnhub: Any, yahoo_url: str, http_port: int) -> Settings:
    (tmp / "secrets").mkdir()
    (tmp / "secrets" / "finnhub_api_key").write_text(KEY + "\n")
    config = {
        "data_dir": str(tmp / "var"),
        "secrets_dir": str(tmp / "secrets"),
        "market": {"source": "finnhub"},
        "scan": {"universe": ["GAPX", "FLAT"], "adv_min": 100000},
        "finnhub": {"rest_base_url": finnhub.rest_url},
        "feed": {
            "url": finnhub.ws_url,
            "flush_every_secs": 0.02,
            "flush_grace_secs": 0,
            "lateness_secs": 0,
            "backoff_initial_secs": 0.01,
            "backoff_max_secs": 0.05,
            "stale_after_secs": None,
            "down_alert_secs": 1,
        },
        "yahoo": {"base_url": yahoo_url},
        "store": {"kind": "duckdb"},
        "http": {"port": http_port},
        "dashboard": {"port": free_port()},
        "logging": {"format": "json"},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_settings(path, environ={})


def trade(local: ModuleType, at: datetime, price: float, size: int = 500) -> Any:
    return local.TapeTrade("GAPX", int(at.timestamp() * 1000), price, size)


def tape(local: ModuleType) -> dict[datetime, list[Any]]:
    """GAPX's session: a range of 10.90-11.20, a breakout at 09:40, quiet hours, a last print."""
    minutes: dict[datetime, list[Any]] = {}
    opening = [(11.00, 11.10, 10.95), (11.10, 11.20, 11.05), (11.05, 11.15, 10.90)]
    opening += [(11.00, 11.10, 11.00), (11.10, 11.15, 11.05)]
    for i, (first, high, low) in enumerate(opening):
        start = ny(9, 30 + i)
        minutes[start] = [
            trade(local, start + timedelta(seconds=5), first),
            trade(local, start + timedelta(seconds=20), high),
            trade(local, start + timedelta(seconds=40), low),
            trade(local, start + timedelta(seconds=55), (high + low) / 2),
        ]
    for i in range(5):
        start = ny(9, 35 + i)
        minutes[start] = [trade(local, start + timedelta(seconds=10), 11.12)]
    minutes[ny(9, 40)] = [
        trade(local, ny(9, 40, 5), 11.30),
        trade(local, ny(9, 40, 30), 11.36),
        trade(local, ny(9, 40, 50), 11.33),
    ]
    for hour in range(10, 16):
        minutes[ny(hour, 0)] = [trade(local, ny(hour, 0, 15), 11.35)]
    minutes[ny(15, 56)] = [trade(local, ny(15, 56, 1), 11.40), trade(local, ny(15, 56, 9), 11.42)]
    return minutes


class Driver:
    """Moves the clock and lets the scheduler catch up before going on (no sleeping for it)."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.moved = asyncio.Event()
        self.agent: LiveAgent | None = None

    async def waiter(self, stop: asyncio.Event, secs: float) -> None:
        """The scheduler's wait: until the clock moves (or a stop)."""
        moving = asyncio.ensure_future(self.moved.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({moving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (moving, stopping):
            task.cancel()
        self.moved.clear()

    async def to(self, at: datetime) -> None:
        """Set the clock to `at`, then wait until the scheduler has ticked there and is idle."""
        assert self.agent is not None
        self.clock.set(at)
        self.agent.feed.flush()  # as its timer would: the minutes ended by now close
        await self.agent.feed.wait_published()
        self.moved.set()
        scheduler = self.agent.scheduler
        await until(lambda: scheduler.heartbeat == at and not scheduler.busy, within_secs=30)


async def until(predicate: Callable[[], bool], within_secs: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_secs
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the live agent")
        await asyncio.sleep(0.005)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


# -- the day --------------------------------------------------------------------------------------


async def test_a_live_day_runs_from_the_scan_to_the_report_on_the_schedule(
    tmp_path: Path, local: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    calendar = ExchangeCalendar("XNYS", start=date(2026, 1, 1), end=date(2027, 12, 31))
    history = [s.day for s in calendar.sessions(DAY - timedelta(days=60), DAY - timedelta(days=1))]
    port = free_port()
    async with (
        local.LocalFinnhub(token=KEY) as finnhub,
        yahoo_server(
            {
                "GAPX": daily_history(10.0, history, 1_000_000),
                "FLAT": daily_history(20.0, history, 2_000_000),
            }
        ) as yahoo_url,
    ):
        premarket = epoch(ny(8, 45))
        finnhub.rest.set("/quote", {"c": 11.0, "pc": 10.0, "t": premarket}, "GAPX")
        finnhub.rest.set("/quote", {"c": 20.1, "pc": 20.0, "t": premarket}, "FLAT")
        news = {
            "category": "company",
            "datetime": epoch(ny(7, 30)),
            "headline": "GAPX wins a contract",
            "id": 1,
            "source": "wire",
            "summary": "",
            "url": "https://example.com/gapx",
            "related": "GAPX",
            "image": "",
        }
        finnhub.rest.set("/company-news", [news], "GAPX")
        settings = write_settings(tmp_path, finnhub, yahoo_url, port)
        clock = FixedClock(ny(8, 40))
        driver = Driver(clock)
        out = io.StringIO()
        agent = await build_live(settings, clock=clock, calendar=calendar, waiter=driver.waiter)
        driver.agent = agent
        stop = asyncio.Event()
        running = asyncio.create_task(run_live(agent, days=1, out=out, stop=stop))
        try:
            await until(lambda: agent.scheduler.heartbeat is not None, within_secs=15)
            assert finnhub.connections == {}  # nothing to watch before the scan: no connection
            await day(local, finnhub, agent, driver, port)
            await asyncio.wait_for(running, 30)
            assert finnhub.open_connections == []  # the day is done: the key's connection is free
        finally:
            stop.set()
            await asyncio.gather(running, return_exceptions=True)

    assert out.getvalue().startswith(f"{DAY} trades 1 net P&L ")
    events = await stored_events(settings)
    scans = [e for e in events if isinstance(e, ScanCompleted)]
    assert [c.symbol for c in scans[0].result.candidates] == ["GAPX"]
    assert scans[0].result.candidates[0].top_headline == "GAPX wins a contract"
    plan = next(e for e in events if isinstance(e, PlanCreated)).plan
    assert plan.entry == Decimal("11.21")  # the range's high + the 0.01 offset
    assert [e.order.symbol for e in events if isinstance(e, OrderPlaced)] == ["GAPX"]
    closed = [e for e in events if isinstance(e, PositionClosed)]
    assert [(c.trade.symbol, str(c.trade.exit_reason)) for c in closed] == [("GAPX", "flatten")]
    assert closed[0].fill.price == Decimal("11.40")  # the first print after the flatten job
    reports = [e for e in events if isinstance(e, ReportDaily)]
    assert [r.report.day for r in reports] == [DAY]
    assert reports[0].report.performance.trades[0].net_pnl > 0
    assert not [e for e in events if isinstance(e, ErrorRaised) and e.code.startswith("schedule")]

    written = capfd.readouterr()
    assert KEY not in written.out + written.err
    for path in (tmp_path / "var").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


async def day(
    local: ModuleType,
    finnhub: Any,
    agent: LiveAgent,
    driver: Driver,
    port: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Drive the clock through the day's instants in [start, end] (default: all of them)."""
    minutes = tape(local)
    schedule = agent.scheduler.schedule.runs(ny(0, 0), ny(23, 59))
    moments = sorted(
        {ny(8, 59, 30)}
        | {run.at + timedelta(seconds=30) for run in schedule}
        | {start + timedelta(seconds=30) for start in minutes}
        | {start + timedelta(seconds=90) for start in minutes}  # the next minute closes it
    )
    sent = agent.trades.stats.trades
    for at in moments:
        if at > (end or ny(16, 30)):
            break
        if start is not None and at < start:
            continue
        await driver.to(at)
        if at == ny(9, 0, 30):  # the scan has run: the candidate is being watched
            await finnhub.wait_for(lambda: any("GAPX" in s for s in finnhub.subscription_sets()))
        start = at - timedelta(seconds=30)
        if start in minutes:
            sent += await finnhub.send_trades(minutes[start])

            def caught_up(total: int = sent) -> bool:
                return agent.trades.stats.trades >= total

            await until(caught_up)
        if at == ny(10, 0, 30) and start is None:
            await cut_the_connection(finnhub, agent)
            status, body = await get(f"http://127.0.0.1:{port}/readyz")
            assert status == 200, body
            status, text = await get(f"http://127.0.0.1:{port}/metrics")
            assert "feed_reconnects_total 1.0" in text
            assert 'scheduler_runs_total{job="scan",outcome="ran"} 1.0' in text
            assert "data_budget_used_ratio" in text
            assert KEY not in text


async def cut_the_connection(finnhub: Any, agent: LiveAgent) -> None:
    """Drop the socket: the feed reconnects and subscribes the candidate again."""
    before = agent.trades.stats.reconnects
    await finnhub.drop_all()
    await until(lambda: agent.trades.stats.reconnects > before and agent.trades.stats.connected)
    await finnhub.wait_for(
        lambda: finnhub.latest is not None and "GAPX" in finnhub.latest.subscriptions
    )


async def stored_events(settings: Settings) -> list[Any]:
    store = DuckDBStore(
        settings.data_path(settings.store.duckdb_file), EventCodec(default_registry())
    )
    try:
        return list(await store.events())
    finally:
        await store.close()


async def test_fin_agent_run_serves_the_live_market_and_stops_on_sigterm(
    tmp_path: Path, local: ModuleType
) -> None:
    """The console script with market.source finnhub: the scheduler beats, the idle feed holds no
    connection, /readyz says all is well, /metrics has the feed and the budgets, SIGTERM ends it
    with exit 0."""
    port = free_port()
    async with (
        local.LocalFinnhub(token=KEY) as finnhub,
        yahoo_server({}) as yahoo_url,
    ):
        settings = write_settings(tmp_path, finnhub, yahoo_url, port)
        script = Path(sys.executable).with_name("fin-agent")
        agent = await asyncio.create_subprocess_exec(
            str(script), "--config", str(tmp_path / "config.yaml"), "run",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            ready = await poll_ready(port)
            assert ready == 200
            _, body = await get(f"http://127.0.0.1:{port}/readyz")
            assert '"scheduler"' in body, body
            assert '"feed"' in body, body
            assert finnhub.connections == {}  # no candidates, so no connection held
            _, text = await get(f"http://127.0.0.1:{port}/metrics")
            assert "feed_reconnects_total 0.0" in text
            assert 'data_budget_used_ratio{budget="finnhub"}' in text
            assert 'data_budget_used_ratio{budget="yahoo"}' in text
            agent.terminate()
            out, err = await asyncio.wait_for(agent.communicate(), 30)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    assert agent.returncode == 0, err.decode()[-2000:]
    assert KEY not in out.decode() + err.decode()
    assert settings.market.source == "finnhub"


async def poll_ready(port: int, within_secs: float = 60.0) -> int:
    """/readyz's status once it answers 200 (or the last status when the time is up)."""
    deadline = asyncio.get_running_loop().time() + within_secs
    status = 0
    while asyncio.get_running_loop().time() < deadline:
        try:
            status, _ = await get(f"http://127.0.0.1:{port}/readyz")
        except aiohttp.ClientError:
            status = 0
        if status == 200:
            return status
        await asyncio.sleep(0.2)
    return status


@pytest.mark.parametrize("bus", ["redis", "memory"])
async def test_a_restart_in_the_middle_of_the_day_resumes_it_from_the_store(
    tmp_path: Path, local: ModuleType, redis_url: str, bus: str
) -> None:
    """The agent stops with a position open; restarted 20 minutes later (DuckDB store; slots in
    the bus's Redis, or with a memory bus in the agent's own redis-server) it rebuilds the day
    from the stored events, watches the symbol again, and flattens and reports it on the
    schedule, with no slot run twice or reported missed."""
    calendar = ExchangeCalendar("XNYS", start=date(2026, 1, 1), end=date(2027, 12, 31))
    history = [s.day for s in calendar.sessions(DAY - timedelta(days=60), DAY - timedelta(days=1))]
    port = free_port()
    async with (
        local.LocalFinnhub(token=KEY) as finnhub,
        yahoo_server({"GAPX": daily_history(10.0, history, 1_000_000)}) as yahoo_url,
    ):
        premarket = epoch(ny(8, 45))
        finnhub.rest.set("/quote", {"c": 11.0, "pc": 10.0, "t": premarket}, "GAPX")
        settings = write_settings(tmp_path, finnhub, yahoo_url, port)
        redis_bus = {"kind": "redis", "redis_url": redis_url, "block_ms": 50}
        settings = settings.model_copy(
            update={
                "bus": settings.bus.model_copy(update=redis_bus if bus == "redis" else {}),
                "scan": settings.scan.model_copy(update={"universe": ["GAPX"]}),
            }
        )
        out = io.StringIO()

        async def session(start: datetime, end: datetime) -> LiveAgent:
            clock = FixedClock(start)
            driver = Driver(clock)
            agent = await build_live(settings, clock=clock, calendar=calendar, waiter=driver.waiter)
            driver.agent = agent
            stop = asyncio.Event()
            running = asyncio.create_task(run_live(agent, days=1, out=out, stop=stop))
            try:
                await until(lambda: agent.scheduler.heartbeat is not None, within_secs=15)
                await day(local, finnhub, agent, driver, port, start=start, end=end)
                await agent.container.bus.drain()
            finally:
                stop.set()
                await asyncio.wait_for(running, 30)
            return agent

        first = await session(ny(8, 40), ny(10, 1, 30))
        held = first.container.agent.day
        assert held is not None
        assert [p.symbol for p in held.ledger.open_positions] == ["GAPX"]

        second = await session(ny(10, 20), ny(16, 30))
        resumed = second.container.agent.day
        assert resumed is not None
        assert resumed.ledger.open_positions == ()

    assert out.getvalue().startswith(f"{DAY} trades 1 net P&L ")
    events = await stored_events(settings)
    closed = [e for e in events if isinstance(e, PositionClosed)]
    assert [(c.trade.symbol, str(c.trade.exit_reason)) for c in closed] == [("GAPX", "flatten")]
    assert closed[0].fill.price == Decimal("11.40")
    errors = [e for e in events if isinstance(e, ErrorRaised)]
    assert [e.code for e in errors] == ["day.resumed"]
    assert "1 open positions" in errors[0].message
    assert len([e for e in events if isinstance(e, ScanCompleted)]) == 1
    assert len([e for e in events if isinstance(e, ReportDaily)]) == 1
