"""The dashboard under Streamlit's AppTest, against a fake agent serving the real HTTP API.

The fake agent is the agent's own aiohttp application (`make_app`) over an in-memory store that
holds a simulated day cut at 10:30 ET, so positions are still open and every page has something
to show; readiness checks, dead letters, the config and the schedule are canned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from streamlit.testing.v1 import AppTest

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import FixedClock, InMemoryEventBus, InMemoryStore
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.effective import render_effective
from fin_agent.app.config.settings import load_settings
from fin_agent.app.coordinator import Coordinator
from fin_agent.app.day.agent import Agent
from fin_agent.app.day.commands import OperatorDesk
from fin_agent.app.day.scan_record import with_records
from fin_agent.app.http.read_models import ReadModels
from fin_agent.app.http.server import Check, HttpDeps, make_app
from fin_agent.app.runner import run_session
from fin_agent.domain.events import (
    DomainEvent,
    ErrorRaised,
    OrderPlaced,
    PlanCreated,
    PositionClosed,
    RiskStateChanged,
    Severity,
)
from fin_agent.domain.risk_engine import RiskReason, TradingState

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "dashboard" / "app.py"
DAY = "2025-03-03"
MID_DAY = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)  # 10:30 ET: three positions open
TIMEOUT_SECS = 60


@pytest.fixture(scope="module")
def simulated_day() -> list[DomainEvent]:
    """Every event of the simulated 2025-03-03, run once for the module; the scan's inputs ride
    on its `scan.snapshot_taken` (the fake agent's store holds events only, not scan records)."""

    async def run() -> list[DomainEvent]:
        settings = load_settings(REPO / "config.yaml", environ={})
        container = await build_simulation(settings, bus="memory", store="memory")
        session = container.calendar.session(settings.simulator.start_date)
        assert session is not None
        async with running(container):
            await run_session(container, session, Decimal(100_000))
            return await with_records(
                container.store.scan_records(), await container.store.events()
            )

    return asyncio.run(run())


@dataclass
class FakeAgent:
    """The agent's HTTP API in a thread of its own, over the events given."""

    events: Sequence[DomainEvent]
    checks: Mapping[str, Check] = field(default_factory=dict)
    dead_letters: Callable[[int], Any] | None = None
    schedule: Callable[[], Any] | None = None
    commands: bool = False  # operator commands, refused: no day runs in a fake agent
    url: str = ""
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def start(self) -> FakeAgent:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fake agent did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._cleanup())
        self._loop.close()

    async def _start(self) -> None:
        store = InMemoryStore(EventCodec(default_registry()))
        await store.write(list(self.events))
        settings = load_settings(
            REPO / "config.yaml", environ={"FIN_AGENT_DASHBOARD_PASSWORD": "hunter2-secret"}
        )
        deps = HttpDeps(
            read_models=ReadModels(store),
            checks=self.checks,
            info={"version": "9.9.9", "store": "memory"},
            effective_config=lambda: render_effective(settings),
            dead_letters=self.dead_letters,
            schedule=self.schedule,
            config_version=lambda: "90d5fcd64eea",
            commands=self._desk(store) if self.commands else None,
        )
        self._runner = web.AppRunner(make_app(deps), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    @staticmethod
    def _desk(store: InMemoryStore) -> OperatorDesk:
        bus = InMemoryEventBus()
        Coordinator(store).attach(bus)
        desk = OperatorDesk(
            agent=Agent(),
            bus=bus,
            store=store,
            clock=FixedClock(datetime(2025, 3, 3, 15, 0, tzinfo=UTC)),
            timezone=ZoneInfo("America/New_York"),
        )
        desk.attach(bus)
        return desk

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def feed_down_error() -> ErrorRaised:
    at = datetime(2025, 3, 3, 15, 12, 5, tzinfo=UTC)
    return ErrorRaised(
        id=ErrorRaised.id_for("feed-down-test"),
        occurred_at=at,
        trading_day=at.date(),
        source="feed",
        code="feed_disconnected",
        message="Finnhub socket closed: reconnecting with backoff",
        severity=Severity.ERROR,
    )


async def bus_down() -> str | None:
    return "Redis does not answer: connection refused"


async def ok() -> str | None:
    return None


async def some_dead_letters(limit: int) -> Mapping[str, object]:
    letter = {
        "id": "1741012345678-0",
        "event_type": "plan.created",
        "reason": "unknown_version",
        "detail": "plan.created v9 has no upcaster",
        "stream": "fin:events",
        "entry_id": "1741012340000-0",
        "group": "agent",
        "deliveries": 5,
        "fields": {"type": "plan.created", "v": "9"},
    }
    return {"count": 1, "letters": [letter][:limit]}


def next_runs() -> list[dict[str, object]]:
    return [
        {
            "job": "scan",
            "at": "2025-03-04T09:00:00-05:00",
            "rule": "cron: 0 9 * * 1-5",
            "reason": "cron '0 9 * * 1-5' in America/New_York; session 2025-03-04",
        },
        {
            "job": "plan",
            "at": "2025-03-04T09:35:00-05:00",
            "rule": "at: open + 5m",
            "reason": "open 09:30 + 5m = 09:35; session 2025-03-04",
        },
    ]


@pytest.fixture
def mid_day(simulated_day: list[DomainEvent]) -> list[DomainEvent]:
    return [e for e in simulated_day if e.occurred_at <= MID_DAY]


@pytest.fixture
def agent(mid_day: list[DomainEvent]) -> Iterator[FakeAgent]:
    fake = FakeAgent(
        events=[*mid_day, feed_down_error()],
        checks={"bus": ok, "store": ok},
        dead_letters=some_dead_letters,
        schedule=next_runs,
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("FIN_AGENT_CONFIG", str(REPO / "config.yaml"))
    monkeypatch.delenv("FIN_AGENT_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("FIN_AGENT_PROFILE", raising=False)
    return monkeypatch


def open_app(url: str, env: pytest.MonkeyPatch) -> AppTest:
    env.setenv("FIN_AGENT_DASHBOARD_AGENT_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_SECS)
    return at.run()


def texts(at: AppTest) -> str:
    """Everything written on the page, as one string."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "subheader"):
        parts.extend(str(getattr(e, "value", "")) for e in at.get(kind))
    parts.extend(f"{m.label}: {m.value} {m.delta or ''}" for m in at.metric)
    return "\n".join(parts)


def frames(at: AppTest) -> list[Any]:
    """The data of every table on the page."""
    return [d.value for d in at.dataframe]


def column(at: AppTest, label: str) -> list[Any]:
    """The values of every table column named `label`, in table order."""
    return [v for df in frames(at) if label in df.columns for v in df[label].tolist()]


def charts(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


def test_overview_shows_equity_pnl_positions_candidates_plans_and_charts(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    assert not at.exception, at.exception
    page = texts(at)
    assert "Overview" in page
    assert "Realised P&L" in page
    assert "Unrealised P&L" in page
    assert "3 open" in page
    assert set(column(at, "Symbol")) >= {"XJEF", "JIGI", "DEZ", "TITR"}
    assert len(charts(at)) == 2  # equity curve, P&L by trade (the open positions)
    assert "No closed trade yet." in page  # the closed-trades table


def test_banner_shows_readiness_trading_state_and_the_injected_error(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    page = texts(at)
    assert "Agent ready" in page
    assert "Trading ACTIVE" in page
    assert "Day 2025-03-03" in page
    assert "config 90d5fcd64eea" in page  # the config version in force
    [error] = at.error
    assert "feed/feed_disconnected" in error.value
    assert "Finnhub socket closed: reconnecting with backoff" in error.value
    assert "10:12:05" in error.value  # exchange time

    at.button(key="dismiss_errors").click().run()

    assert not at.error


def test_banner_names_the_failing_readiness_check(
    mid_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    fake = FakeAgent(events=mid_day, checks={"bus": bus_down, "store": ok}).start()
    try:
        at = open_app(fake.url, dashboard_env)
    finally:
        fake.stop()

    assert "Agent not ready" in texts(at)
    assert any("bus" in e.value and "Redis does not answer" in e.value for e in at.error)


def test_unreachable_agent_shows_its_url_instead_of_a_traceback(
    dashboard_env: pytest.MonkeyPatch,
) -> None:
    url = "http://127.0.0.1:9"  # discard: nothing listens

    at = open_app(url, dashboard_env)

    assert not at.exception
    [error] = at.error
    assert f"Agent not reachable at {url}" in error.value
    assert any("Waiting for the agent" in i.value for i in at.info)


def test_scan_page_shows_candidates_figures_and_rejections_with_their_rule(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/scan.py").run()

    assert not at.exception, at.exception
    candidates, rejections = frames(at)
    assert list(candidates["Symbol"]) == ["XJEF", "DEZ", "TITR", "JIGI"]  # by rank
    assert {"Gap", "Prev close", "Pre-mkt last", "Pre-mkt volume", "ATR(14)", "ADV(20)"} <= set(
        candidates.columns
    )
    assert len(rejections) == 36
    assert set(rejections["Failed rule"]) == {"gap_band"}
    assert "outside the long band" in rejections["Why"].iloc[0]


def test_plans_page_shows_entry_stop_target_size_and_state(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/plans.py").run()

    assert not at.exception, at.exception
    plans = frames(at)[0]
    xjef = plans[plans["Symbol"] == "XJEF"].iloc[0]
    assert (xjef["Entry"], xjef["Stop"], xjef["Target"], xjef["Size"]) == (
        187.23,
        184.73,
        192.23,
        133,
    )
    assert xjef["State"] == "in position"
    assert xjef["Risk"] == pytest.approx(332.50)
    titr = plans[plans["Symbol"] == "TITR"].iloc[0]
    # refused for the position cap, it stayed armed (DESIGN 2.3) and expired at its deadline
    assert titr["State"] == "expired"


def test_plans_page_charts_the_chosen_plans_symbol_in_5_minute_candles_with_its_levels(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)
    at.switch_page("views/plans.py").run()

    choice = at.selectbox(key="candles_symbol")
    assert choice.value == "XJEF"  # the first plan by rank
    [chart] = charts(at)
    spec = str(chart.proto)
    assert all(level in spec for level in ("184.73", "187.23", "192.23"))  # stop, entry, target
    plans = frames(at)[0]
    dez = plans[plans["Symbol"] == "DEZ"].iloc[0]
    choice.set_value("DEZ").run()

    assert not at.exception, at.exception
    [chart] = charts(at)
    spec = str(chart.proto)
    assert all(str(dez[level]) in spec for level in ("Entry", "Stop", "Target"))
    assert "184.73" not in spec


def test_plans_orders_and_trades_show_the_config_version_that_produced_them(
    simulated_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    [version] = {e.config_version for e in simulated_day if isinstance(e, PlanCreated)}
    unknown = next(e for e in simulated_day if isinstance(e, PlanCreated))
    long_hash = next(e for e in simulated_day if isinstance(e, PositionClosed))
    events = [
        dataclasses.replace(e, config_version="")
        if e is unknown
        else dataclasses.replace(e, config_version="f" * 64)
        if e is long_hash
        else e
        for e in simulated_day
    ]
    fake = FakeAgent(events=events).start()
    try:
        at = open_app(fake.url, dashboard_env)
        shown: dict[str, dict[str, str]] = {}
        for page in ("plans", "orders", "positions"):
            at.switch_page(f"views/{page}.py").run()
            assert not at.exception, at.exception
            [table] = [df for df in frames(at) if "Config" in df.columns]
            shown[page] = dict(zip(table["Symbol"], table["Config"], strict=True))
    finally:
        fake.stop()

    assert len(version) == 12  # a short content hash: shown whole
    assert shown["plans"] == {
        sym: "—" if sym == unknown.plan.symbol else version
        for sym in (e.plan.symbol for e in simulated_day if isinstance(e, PlanCreated))
    }
    assert shown["orders"] == {
        e.order.symbol: version for e in simulated_day if isinstance(e, OrderPlaced)
    }
    assert shown["positions"] == {  # the closed trades
        e.trade.symbol: "f" * 12 if e is long_hash else version
        for e in simulated_day
        if isinstance(e, PositionClosed)
    }


def test_orders_page_shows_orders_and_fills(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/orders.py").run()

    assert not at.exception, at.exception
    orders, fills = frames(at)
    assert set(orders["Symbol"]) == {"XJEF", "JIGI", "DEZ"}
    assert set(fills["Kind"]) == {"entry"}
    assert "**Orders** (3)" in texts(at)


def test_positions_page_shows_unrealised_pnl_and_the_equity_chart(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/positions.py").run()

    assert not at.exception, at.exception
    positions = frames(at)[0]
    assert set(positions["Symbol"]) == {"XJEF", "JIGI", "DEZ"}
    assert positions["Unrealised"].notna().all()
    assert set(positions["Stop"]) == {184.73, 74.85, 92.28}
    assert "**Open positions** (3)" in texts(at)
    assert len(charts(at)) == 2
    assert "XJEF (open)" in str(charts(at)[1].proto)  # unrealised P&L beside the trades


def test_positions_page_after_the_close_charts_pnl_by_trade(
    simulated_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    fake = FakeAgent(events=simulated_day, checks={"store": ok}).start()
    try:
        at = open_app(fake.url, dashboard_env)
        at.switch_page("views/positions.py").run()
    finally:
        fake.stop()

    assert not at.exception, at.exception
    assert "Flat: no open position." in texts(at)
    assert len(charts(at)) == 2  # the equity curve and P&L by trade
    assert set(column(at, "Exit on")) == {"target", "flatten"}


def test_event_log_lists_the_days_events_newest_first(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/events.py").run()

    assert not at.exception, at.exception
    events = frames(at)[0]
    assert list(events["Time"]) == sorted(events["Time"], reverse=True)
    assert "market.bars_closed" not in set(events["Event"])
    assert "error.raised" in set(events["Event"])
    assert any("plan XJEF long 133 @ 187.23" in s for s in events["What happened"])

    at.multiselect(key="event_types").select("plan.created").run()

    assert set(frames(at)[0]["Event"]) == {"plan.created"}


def test_dead_letters_page_lists_the_dead_letters(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/dead_letters.py").run()

    assert not at.exception, at.exception
    letters = frames(at)[0]
    assert list(letters["Reason"]) == ["unknown_version"]
    assert list(letters["Original entry"]) == ["fin:events#1741012340000-0"]
    assert "fin-agent dlq replay" in texts(at)


def test_dead_letters_page_says_when_the_bus_has_none(
    mid_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    fake = FakeAgent(events=mid_day).start()
    try:
        at = open_app(fake.url, dashboard_env)
        at.switch_page("views/dead_letters.py").run()
    finally:
        fake.stop()

    assert any("no dead-letter stream" in i.value for i in at.info)


def test_system_page_shows_checks_schedule_and_the_config_with_secrets_masked(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.switch_page("views/system.py").run()

    assert not at.exception, at.exception
    assert set(column(at, "Check")) == {"bus", "store"}
    assert column(at, "Job") == ["scan", "plan"]
    assert column(at, "When (exchange time)")[0] == "2025-03-04 09:00"
    assert "feed_disconnected" in column(at, "Code")
    [config] = at.code
    assert "gap_min_pct: 4" in config.value
    assert "dashboard_password: '**********'" in config.value
    assert "hunter2-secret" not in config.value


def test_system_page_says_no_schedule_when_the_agent_has_none(
    mid_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    fake = FakeAgent(events=mid_day).start()
    try:
        at = open_app(fake.url, dashboard_env)
        at.switch_page("views/system.py").run()
    finally:
        fake.stop()

    assert "No schedule" in texts(at)


def test_history_page_shows_each_day_with_its_report(
    simulated_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    fake = FakeAgent(events=simulated_day).start()
    try:
        at = open_app(fake.url, dashboard_env)
        at.switch_page("views/history.py").run()
    finally:
        fake.stop()

    assert not at.exception, at.exception
    days = frames(at)[0]
    assert list(days["Day"]) == [DAY]
    assert list(days["Trades"]) == [3]
    assert days["Net P&L"].iloc[0] == pytest.approx(1681.13)
    assert len(charts(at)) == 1
    assert "Net P&L: +$1,681.13" in texts(at)


def test_picking_a_day_in_the_sidebar_shows_that_day(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    at = open_app(agent.url, dashboard_env)

    at.sidebar.selectbox(key="day_choice").select(DAY).run()

    assert not at.exception, at.exception
    assert "Overview" in texts(at)
    assert at.sidebar.selectbox(key="day_choice").options == ["Latest day", DAY]


def test_password_is_asked_first_and_checked(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    dashboard_env.setenv("FIN_AGENT_DASHBOARD_PASSWORD", "hunter2-secret")
    at = open_app(agent.url, dashboard_env)

    assert not at.metric  # nothing shown before the password
    assert not at.dataframe
    at.text_input(key="password").input("wrong")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error)
    assert not at.dataframe

    at.text_input(key="password").input("hunter2-secret")
    at.button[0].click().run()

    assert not at.exception, at.exception
    assert "Overview" in texts(at)
    assert at.dataframe


def test_a_broken_config_is_shown_not_raised(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "config.yaml"
    broken.write_text("scan:\n  gap_min_pct: -3\n")
    dashboard_env.setenv("FIN_AGENT_CONFIG", str(broken))

    at = open_app(agent.url, dashboard_env)

    assert not at.exception
    [error] = at.error
    assert "cannot read the agent's config" in error.value
    assert "gap_min_pct" in error.value


def test_control_page_confirms_a_halt_and_shows_the_agents_answer(
    mid_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    fake = FakeAgent(events=mid_day, checks={"bus": ok, "store": ok}, commands=True).start()
    try:
        at = open_app(fake.url, dashboard_env)
        at.switch_page("views/control.py").run()
        at.text_input(key="control_reason").set_value("news pending").run()
        [halt] = [b for b in at.button if b.label == "Halt"]
        halt.click().run()  # asks first
        assert "Halt new entries?" in texts(at)
        [confirm] = [b for b in at.button if b.label == "Confirm"]
        confirm.click().run()
    finally:
        fake.stop()

    assert not at.exception, at.exception
    assert "Refused: no trading day is running" in texts(at)  # the fake agent runs no day


def test_sign_in_refuses_a_client_past_five_wrong_passwords_a_minute(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    dashboard_env.setenv("FIN_AGENT_DASHBOARD_PASSWORD", "hunter2-secret")
    at = open_app(agent.url, dashboard_env)
    for _ in range(5):
        at.text_input(key="password").input("wrong")
        at.button[0].click().run()
        assert "Wrong password." in texts(at)

    at.text_input(key="password").input("hunter2-secret")  # right, but too late
    at.button[0].click().run()

    assert "Too many wrong passwords: try again in" in texts(at)


def test_an_expired_sign_in_asks_for_the_password_again(
    agent: FakeAgent, dashboard_env: pytest.MonkeyPatch
) -> None:
    dashboard_env.setenv("FIN_AGENT_DASHBOARD_PASSWORD", "hunter2-secret")
    dashboard_env.setenv("FIN_AGENT_DASHBOARD__SESSION_TTL_MINS", "1")
    at = open_app(agent.url, dashboard_env)
    at.text_input(key="password").input("hunter2-secret")
    at.button[0].click().run()
    assert "Agent ready" in texts(at)

    at.session_state["authenticated_at"] -= 61  # signed in 61 s earlier than it was
    at.run()

    assert "Your session expired: sign in again." in texts(at)


def test_banner_shows_why_trading_is_reducing_and_the_system_page_the_var(
    mid_day: list[DomainEvent], dashboard_env: pytest.MonkeyPatch
) -> None:
    reduced = RiskStateChanged(
        id=RiskStateChanged.id_for("reducing-test"),
        occurred_at=MID_DAY,
        trading_day=MID_DAY.date(),
        previous=TradingState.ACTIVE,
        current=TradingState.REDUCING,
        reason=RiskReason.DAILY_LOSS_LIMIT,
        detail="realised 0.00 and open -2100.00 (risk.loss_limit_basis marked) reached the limit",
    )
    fake = FakeAgent(events=[*mid_day, reduced], checks={"bus": ok, "store": ok}).start()
    try:
        at = open_app(fake.url, dashboard_env)
        page = texts(at)
        assert "Trading REDUCING · daily_loss_limit" in page
        [warning] = [w for w in at.warning if "Trading REDUCING" in str(w.value)]
        assert "open -2100.00" in str(warning.value)

        at.switch_page("views/system.py").run()
        assert not at.exception, at.exception
        assert column(at, "Of") == ["Open book", "Strategy (daily P&L)"]
    finally:
        fake.stop()
