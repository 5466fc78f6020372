"""The dashboard's Research page in Chromium: a real `fin-agent optimize` study on the av2019
1-minute week, served by the agent's `/api/research`, shown with its out-of-sample equity curve,
parameter importance, walk-forward folds and every trial."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import free_port, http_get, in_ci, served_dashboard, stop_group, wait_until

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
UI_TIMEOUT_MS = 30_000
STUDY = "browser"
OVERLAY = f"""optimize:
  study: {STUDY}
  train_days: 2
  test_days: 1
  startup_trials: 4
  space:
    scan.gap_min_pct: {{low: 1, high: 2, step: 0.5}}
"""


@pytest.fixture
def study_env(shared_data: Path, tmp_path: Path) -> dict[str, str]:
    """A data folder holding a finished study (6 trials, one worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_") or k == "CI"}
    env.update(
        {
            "FIN_AGENT_CONFIG": str(REPO / "config.yaml"),
            "FIN_AGENT_DATA_DIR": str(tmp_path / "data"),
            "FIN_AGENT_HTTP__PORT": str(free_port()),
            "FIN_AGENT_DASHBOARD__PORT": str(free_port()),
            "FIN_AGENT_STORE__KIND": "memory",
        }
    )
    overlay = tmp_path / "research.yaml"
    overlay.write_text(OVERLAY, encoding="utf-8")
    data = [str(shared_data / "av2019_daily_24sym.csv.gz")]
    data.append(str(shared_data / "av2019_1min_24sym.csv.gz"))
    command = [sys.executable, "-m", "fin_agent.app.cli.main", "optimize", "--config"]
    command += [str(overlay), "--data", *data, "--from", "2019-02-11", "--to", "2019-02-15"]
    command += ["--trials", "6", "--jobs", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


@pytest.fixture
def agent(study_env: dict[str, str]) -> Iterator[str]:
    """The agent (a simulated day on a memory bus), kept serving; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fin_agent.app.cli.main", "run", "--bus", "memory", "--days", "1",
         "--keep-serving"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=study_env,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{study_env['FIN_AGENT_HTTP__PORT']}"
    try:
        wait_until(lambda: http_get(f"{url}/healthz")[0] == 200, "the agent's HTTP server", 120)
        yield url
    finally:
        stop_group(process)
        reader.join(10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def dashboard(agent: str, study_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with served_dashboard(study_env, tmp_path / "dashboard.log", REPO) as (url, _):
        yield url
    output = (tmp_path / "dashboard.log").read_text()
    assert "Traceback" not in output, output[-3000:]


def test_the_research_page_shows_the_study_in_chromium(agent: str, dashboard: str) -> None:
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail("CI must have Debian's chromium (/usr/bin/chromium): .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt install chromium)")
    status, body = http_get(f"{agent}/api/research")
    assert status == 200
    studies = json.loads(body)["studies"]
    assert [s["study"] for s in studies] == [STUDY]
    study = studies[0]
    assert len(study["trials"]) == 6
    assert study["out_of_sample"]["curve"], "the folds' picks traded their test days"
    assert study["importance"], "two complete trials at least"

    expect = playwright_api.expect
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.goto(dashboard)
            page.get_by_role("link", name="Research").click()
            expect(page.get_by_text("Out-of-sample equity")).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("Parameter importance")).to_be_visible()
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            expect(charts).to_have_count(2, timeout=UI_TIMEOUT_MS)
            expect(charts.first.locator("canvas, svg").first).to_be_visible(timeout=UI_TIMEOUT_MS)
            tables = page.locator('[data-testid="stDataFrame"]')
            expect(tables).to_have_count(2, timeout=UI_TIMEOUT_MS)  # folds, trials
            cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
            expect(cells.first).to_be_attached(timeout=UI_TIMEOUT_MS)
            shown = set(cells.all_text_contents())
            assert {t["state"] for t in study["trials"]} <= shown
            assert "scan.gap_min_pct" in page.content()
        finally:
            browser.close()
