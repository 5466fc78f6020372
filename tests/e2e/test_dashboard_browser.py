"""The dashboard in a real browser: the agent's simulated day, an injected error, a screenshot.

The agent runs a simulated day through a throwaway redis-server and keeps serving; an
`error.raised` is then written onto its event stream as any producer would (XADD of an encoded
event), the dashboard is started with `python -m fin_agent.app.cli.dashboard` and Debian's
Chromium, driven by Playwright, checks what a trader must see. The screenshot is docs/dashboard.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.domain.events import ErrorRaised, Severity
from support import (
    RedisServerFactory,
    free_port,
    http_get,
    in_ci,
    served_dashboard,
    stop_group,
    stream_entry,
    wait_until,
)

playwright_api = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "dashboard.png"
DAY = "2025-03-03"
UI_TIMEOUT_MS = 30_000


def get_json(url: str) -> Any:
    status, body = http_get(url)
    assert status == 200, f"{url} answered {status}: {body[:300]!r}"
    return json.loads(body)


def injected_error() -> ErrorRaised:
    at = datetime(2025, 3, 3, 15, 59, 30, tzinfo=UTC)
    return ErrorRaised(
        id=ErrorRaised.id_for("e2e-dashboard-banner"),
        occurred_at=at,
        trading_day=at.date(),
        source="feed",
        code="feed_disconnected",
        message="market data socket closed: reconnecting",
        severity=Severity.ERROR,
    )


@pytest.fixture
def agent_env(redis_server_factory: RedisServerFactory, tmp_path: Path) -> dict[str, str]:
    redis = redis_server_factory()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_") or k == "CI"}
    env.update(
        {
            "FIN_AGENT_CONFIG": str(REPO / "config.yaml"),
            "FIN_AGENT_DATA_DIR": str(tmp_path / "data"),
            "FIN_AGENT_BUS__REDIS_URL": redis.url,
            "FIN_AGENT_BUS__BLOCK_MS": "200",
            "FIN_AGENT_HTTP__PORT": str(free_port()),
            "FIN_AGENT_DASHBOARD__PORT": str(free_port()),
            "FIN_AGENT_STORE__KIND": "duckdb",
        }
    )
    return env


@pytest.fixture
def agent(agent_env: dict[str, str]) -> Iterator[str]:
    """The agent after its simulated day, still serving; yields its URL."""
    process = subprocess.Popen(
        [str(FIN_AGENT), "run", "--bus", "redis", "--days", "1", "--keep-serving"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=agent_env,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{agent_env['FIN_AGENT_HTTP__PORT']}"
    try:
        wait_until(lambda: any("agent_idle" in line for line in lines), "the simulated day", 120)
        yield url
    finally:
        stop_group(process)
        reader.join(10)
        out = process.stdout.read() if process.stdout else ""
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    assert process.returncode == 0, "".join(lines)[-3000:]
    assert out.startswith(f"{DAY} trades ")


@pytest.fixture
def dashboard(agent: str, agent_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The dashboard as `fin-agent dashboard` starts it; yields its URL."""
    with served_dashboard(agent_env, tmp_path / "dashboard.log", REPO) as (url, process):
        yield url
    output = (tmp_path / "dashboard.log").read_text()
    assert process.returncode == 0, output[-3000:]
    assert f"dashboard at {url}/" in output
    assert "Traceback" not in output, output[-3000:]


def inject_error(redis_url: str, agent_url: str) -> ErrorRaised:
    """XADD an encoded `error.raised` onto the agent's event stream; wait until it is stored."""
    import redis  # the synchronous client: this is a test, not the agent

    error = injected_error()
    client = redis.Redis.from_url(redis_url)
    try:
        client.xadd("fin:events", stream_entry(EventCodec(default_registry()).encode(error)))
    finally:
        client.close()
    wait_until(
        lambda: any(e["event_id"] == error.id for e in get_json(f"{agent_url}/api/errors")),
        "the injected error to be stored",
    )
    return error


def test_dashboard_shows_the_day_and_the_injected_error_in_chromium(
    agent: str, dashboard: str, agent_env: dict[str, str]
) -> None:
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail("CI must have Debian's chromium (/usr/bin/chromium): .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt install chromium)")
    error = inject_error(agent_env["FIN_AGENT_BUS__REDIS_URL"], agent)
    day = get_json(f"{agent}/api/day/{DAY}")
    candidates = {c["symbol"] for c in day["candidates"]}
    planned = {p["symbol"] for p in day["plans"]}
    traded = {t["symbol"] for t in day["trades"]}
    assert candidates
    assert planned
    assert traded
    news = get_json(f"{agent}/api/news/{DAY}")["news"]
    assert news, "the simulated day publishes headlines about its candidates"

    expect = playwright_api.expect
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1320})
            page.goto(dashboard)
            expect(page.get_by_text("Agent ready")).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text(f"Day {DAY}")).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.get_by_text("Agent ready").click(trial=True)  # on top: not under the header

            alert = page.locator('[data-testid="stAlertContentError"]', has_text=error.code)
            expect(alert).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(alert).to_contain_text(error.message)

            tables = page.locator('[data-testid="stDataFrame"]')
            expect(tables).to_have_count(3, timeout=UI_TIMEOUT_MS)  # trades, candidates, plans
            cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
            expect(cells.first).to_be_attached(timeout=UI_TIMEOUT_MS)
            shown = set(cells.all_text_contents())
            assert candidates <= shown, "a candidate is missing"
            assert planned <= shown, "a plan is missing"
            assert traded <= shown, "a trade is missing"

            charts = page.locator('[data-testid="stVegaLiteChart"]')
            expect(charts).to_have_count(2, timeout=UI_TIMEOUT_MS)  # equity curve, P&L by trade
            expect(charts.first.locator("canvas, svg").first).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("Equity today")).to_be_visible()
            expect(page.get_by_text("P&L by trade")).to_be_visible()
            page.wait_for_timeout(1500)  # let the charts finish their first paint

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))

            page.get_by_role("link", name="Positions & P&L").click()
            expect(page.get_by_text("Flat: no open position.")).to_be_visible(timeout=UI_TIMEOUT_MS)

            page.get_by_role("link", name="News").click()
            expect(page.get_by_text(f"Headlines ({len(news)})")).to_be_visible(
                timeout=UI_TIMEOUT_MS
            )
            newest = page.get_by_role("link", name=news[0]["title"]).first
            expect(newest).to_be_visible(timeout=UI_TIMEOUT_MS)
            assert newest.get_attribute("href") == news[0]["url"]
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 50_000
    assert shutil.which("chromium") or CHROMIUM.exists()


def test_the_halt_and_resume_buttons_steer_a_running_day_in_chromium(
    agent_env: dict[str, str], tmp_path: Path
) -> None:
    """During a paced simulated day: Halt (confirmed) stops new entries, Resume restores them,
    and both outcomes are in the event log."""
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail("CI must have Debian's chromium (/usr/bin/chromium): .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt install chromium)")
    log = (tmp_path / "dashboard.log").open("w")
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "fin_agent.app.cli.dashboard"],
        stdout=log, stderr=subprocess.STDOUT, env=agent_env, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    agent: subprocess.Popen[Any] | None = None
    dash_url = f"http://127.0.0.1:{agent_env['FIN_AGENT_DASHBOARD__PORT']}"
    url = f"http://127.0.0.1:{agent_env['FIN_AGENT_HTTP__PORT']}"
    expect = playwright_api.expect
    try:
        wait_until(lambda: http_get(f"{dash_url}/_stcore/health")[0] == 200, "the dashboard", 60)
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.goto(f"{dash_url}/control")
                expect(page.get_by_role("button", name="Halt")).to_be_visible(timeout=UI_TIMEOUT_MS)
                agent = subprocess.Popen(  # the day starts once the controls are on screen
                    [str(FIN_AGENT), "run", "--bus", "redis", "--days", "1", "--pace-secs",
                     "0.08", "--keep-serving"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=agent_env,
                    start_new_session=True,
                )  # fmt: skip
                expect(page.get_by_text("Trading is ACTIVE")).to_be_visible(timeout=UI_TIMEOUT_MS)
                page.get_by_label("Reason (shown in the event log and notified)").fill("e2e halt")
                page.get_by_role("button", name="Halt").click()
                page.get_by_role("button", name="Confirm").click()
                expect(page.get_by_text("Applied: trading halted").first).to_be_visible(
                    timeout=UI_TIMEOUT_MS
                )
                expect(page.get_by_text("Trading HALTED").first).to_be_visible(
                    timeout=UI_TIMEOUT_MS
                )
                halted_at = _state_changes(url)[0]["occurred_at"]
                wait_until(  # half an hour of the simulated day goes by halted
                    lambda: _last_minute(url) >= _plus_minutes(halted_at, 30), "30 minutes", 60
                )
                page.get_by_role("button", name="Resume").click()
                page.get_by_role("button", name="Confirm").click()
                expect(page.get_by_text("Applied: trading active").first).to_be_visible(
                    timeout=UI_TIMEOUT_MS
                )

                page.get_by_role("link", name="Event log").click()
                page.get_by_label("Search").fill("operator")
                page.get_by_label("Search").press("Enter")
                cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
                expect(cells.first).to_be_attached(timeout=UI_TIMEOUT_MS)
                wait_until(
                    lambda: (
                        {"operator halt applied", "operator resume applied"}
                        <= {t.split(":")[0] for t in cells.all_text_contents()}
                    ),
                    "both commands in the event log",
                )
            finally:
                browser.close()
        halt, resume = _state_changes(url)[:2]
        placed = [
            e["occurred_at"]
            for e in get_json(f"{url}/api/events?types=order.placed&limit=1000")["events"]
        ]
        assert not [at for at in placed if halt["occurred_at"] <= at < resume["occurred_at"]]
        assert resume["summary"].startswith("trading halted -> active")
    finally:
        if agent is not None:
            stop_group(agent, 60)
        stop_group(dashboard)
        log.close()


def _state_changes(url: str) -> list[dict[str, Any]]:
    events = get_json(f"{url}/api/events?types=risk.state_changed")["events"]
    assert isinstance(events, list)
    return [e for e in events if isinstance(e, dict)]


def _last_minute(url: str) -> str:
    bars = get_json(f"{url}/api/events?types=market.bars_closed&exclude=&limit=1")["events"]
    return str(bars[-1]["occurred_at"]) if bars else ""


def _plus_minutes(instant: str, minutes: int) -> str:
    return (datetime.fromisoformat(instant) + timedelta(minutes=minutes)).isoformat()
