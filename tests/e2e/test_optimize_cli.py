"""`fin-agent optimize` on the recorded av2019 15-minute bars (issue 20's Done-when): 20 trials
on two worker processes, a SIGINT mid-run, a rerun that keeps the finished trials and reaches 20,
and the overlay it writes accepted by `backtest --config`, reproducing its trial's P&L."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import optuna
import pytest

from fin_agent.app.cli.main import main
from fin_agent.app.research.optimizer import STOPPING
from support import stop_group, wait_until

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]
DAILY = "av2019_daily_24sym.csv.gz"
BARS = "av2019_15min_24sym.csv.gz"
SPAN = ["--from", "2019-01-04", "--to", "2019-02-15"]
STUDY = "e2e"


def _env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FIN_AGENT_DATA_DIR": str(data_dir),
        "FIN_AGENT_OPTIMIZE__STUDY": STUDY,
        "FIN_AGENT_OPTIMIZE__TRAIN_DAYS": "10",
        "FIN_AGENT_OPTIMIZE__TEST_DAYS": "5",
        "FIN_AGENT_OPTIMIZE__STARTUP_TRIALS": "6",
    }


def _trials(journal: Path) -> list[optuna.trial.FrozenTrial]:
    if not journal.exists():
        return []
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    try:
        study = optuna.load_study(study_name=STUDY, storage=storage)
    except KeyError:
        return []
    return study.get_trials(deepcopy=False)


def _finished(journal: Path) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in _trials(journal) if t.state in states]


def test_optimize_resumes_after_sigint_and_its_overlay_reproduces_the_trial(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = [str(shared_data / DAILY), str(shared_data / BARS)]
    command = [
        *(sys.executable, "-m", "fin_agent.app.cli.main", "--config", str(REPO / "config.yaml")),
        *("optimize", "--data", *data, *SPAN, "--trials", "20", "--jobs", "2"),
    ]
    env = _env(tmp_path)
    journal = tmp_path / "optimize" / STUDY / "journal.log"
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(_finished(journal)) >= 3, "three finished trials", timeout=300)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err.decode()
    assert b"interrupted: run the same command again" in err
    kept = {t.number: (t.params, t.value, t.state) for t in _finished(journal)}
    assert 3 <= len(kept) < 20

    second = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
    assert second.returncode == 0, second.stderr.decode()
    trials = _finished(journal)
    assert len(trials) == 20
    assert {t.number: (t.params, t.value, t.state) for t in trials if t.number in kept} == kept
    assert f"{20 - len(kept)} run now, {len(kept)} kept from before".encode() in second.stdout

    summary: dict[str, Any] = json.loads((journal.parent / "summary.json").read_text())
    chosen = summary["overlay"]["trial"]
    assert chosen is not None
    overlay = journal.parent / "best.yaml"
    expected = next(t for t in summary["trials"] if t["number"] == chosen)
    out_buffer, err_buffer = io.StringIO(), io.StringIO()
    monkeypatch.setenv("FIN_AGENT_DATA_DIR", str(tmp_path))
    code = main(
        [
            *("--config", str(REPO / "config.yaml"), "backtest", "--config", str(overlay)),
            *("--data", *data, *SPAN, "--json"),
        ],
        out=out_buffer,
        err=err_buffer,
    )
    assert code == 0, err_buffer.getvalue()
    report = json.loads(out_buffer.getvalue())
    cents = Decimal("0.01")
    assert Decimal(report["net_pnl"]) == Decimal(expected["net_pnl"]).quantize(cents)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_second_sigint_abandons_the_trials_in_flight_and_leaves_no_worker(
    shared_data: Path, tmp_path: Path
) -> None:
    data = [str(shared_data / DAILY), str(shared_data / BARS)]
    command = [
        *(sys.executable, "-m", "fin_agent.app.cli.main", "--config", str(REPO / "config.yaml")),
        *("optimize", "--data", *data, *SPAN, "--trials", "12", "--jobs", "2"),
    ]
    journal = tmp_path / "optimize" / STUDY / "journal.log"
    running = optuna.trial.TrialState.RUNNING
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        first = subprocess.Popen(command, env=_env(tmp_path), stderr=stderr, start_new_session=True)
    try:
        wait_until(
            lambda: (
                len(_finished(journal)) >= 1
                and sum(t.state is running for t in _trials(journal)) == 2
            ),
            "a finished trial and two in flight",
            timeout=300,
        )
        first.send_signal(signal.SIGINT)  # the first: finish the trials in flight
        wait_until(lambda: STOPPING in log.read_text(), "the first SIGINT's notice", timeout=30)
        first.send_signal(signal.SIGINT)  # the second: abandon them
        first.wait(timeout=120)
        wait_until(lambda: _group_gone(first.pid), "the worker processes to end", timeout=30)
    finally:
        stop_group(first)
    err = log.read_text()
    assert first.returncode == 130, err
    assert "interrupted: run the same command again" in err
    # the trials still in flight at the second SIGINT (one of the two may have ended between
    # the signals) are failed as interrupted; none is left running
    abandoned = [t for t in _trials(journal) if t.state is optuna.trial.TrialState.FAIL]
    assert 1 <= len(abandoned) <= 2
    assert {t.user_attrs.get("reason") for t in abandoned} == {"interrupted"}
    assert not [t for t in _trials(journal) if t.state is running]
