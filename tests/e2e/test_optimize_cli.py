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
from support import wait_until

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


def _finished(journal: Path) -> list[optuna.trial.FrozenTrial]:
    if not journal.exists():
        return []
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    try:
        study = optuna.load_study(study_name=STUDY, storage=storage)
    except KeyError:
        return []
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


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
