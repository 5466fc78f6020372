"""`fin-agent optimize` with the store on PostgreSQL keeps its study in the database (schema
`optuna`, not the journal file) and resumes it from there."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from fin_agent.app.research.storage import OPTUNA_SCHEMA, sqlalchemy_url

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _storage(dsn: str) -> Iterator[optuna.storages.RDBStorage]:
    storage = optuna.storages.RDBStorage(
        sqlalchemy_url(dsn),
        engine_kwargs={"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}},
    )
    try:
        yield storage
    finally:
        storage.engine.dispose()


def _trials(dsn: str, name: str) -> int:
    with _storage(dsn) as storage:
        return len(optuna.load_study(study_name=name, storage=storage).trials)


def test_optimize_keeps_and_resumes_its_study_in_postgres(
    postgres_dsn: str, shared_data: Path, tmp_path: Path
) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    overlay = tmp_path / "study.yaml"
    overlay.write_text(
        f"optimize:\n  study: {name}\n  train_days: 2\n  test_days: 1\nstore:\n  kind: timescale\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "FIN_AGENT_DATA_DIR": str(tmp_path / "data"),
        "FIN_AGENT_STORE__URL": postgres_dsn,
    }
    data = [str(shared_data / f) for f in ("av2019_daily_24sym.csv.gz", "av2019_1min_24sym.csv.gz")]

    def optimize(trials: int) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "fin_agent.app.cli.main", "--config"]
        command += [str(REPO / "config.yaml"), "optimize", "--config", str(overlay)]
        command += ["--data", *data, "--from", "2019-02-11", "--to", "2019-02-15"]
        command += ["--trials", str(trials), "--jobs", "1"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    try:
        first = optimize(3)
        assert first.returncode == 0, first.stderr[-3000:]
        assert _trials(postgres_dsn, name) == 3
        folder = tmp_path / "data" / "optimize" / name
        assert not (folder / "journal.log").exists()
        assert (folder / "summary.json").exists()

        second = optimize(4)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "1 run now, 3 kept from before" in second.stdout
        assert _trials(postgres_dsn, name) == 4
    finally:
        with contextlib.suppress(KeyError), _storage(postgres_dsn) as storage:
            optuna.delete_study(study_name=name, storage=storage)  # KeyError: never created
