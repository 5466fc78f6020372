"""A worker process that cannot run its trial ends `fin-agent optimize` with a `StudyError` that
names the trial and the fix, not a traceback; the trial is failed in the study (not left
running), so the same command resumes it once mended."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from fin_agent.app.config.settings import load_settings
from fin_agent.app.research.optimizer import open_study, run_study
from fin_agent.app.research.storage import StudyError, StudyPlace
from fin_agent.app.research.trials import RunSpec
from fin_agent.domain.walk_forward import folds

REPO = Path(__file__).resolve().parents[2]


def test_a_worker_that_cannot_start_fails_its_trial_and_names_the_fix(tmp_path: Path) -> None:
    settings = load_settings(REPO / "config.yaml")
    optimize = settings.optimize
    start = date(2024, 1, 1)
    sessions = tuple(start + timedelta(days=i) for i in range(optimize.train_days * 2))
    spec = RunSpec(
        config_path=REPO / "config.yaml",
        profile=None,
        overlays=(),
        data=(tmp_path / "moved-away.csv",),  # read by the parent, gone when the workers start
        timezone="America/New_York",
        bar_stamp="auto",
        factors_dir=None,
        sessions=sessions,
        folds=tuple(folds(sessions, optimize.train_days, optimize.test_days)),
        place=StudyPlace(name="broken", folder=tmp_path / "study"),
    )
    spec.place.folder.mkdir()
    study = open_study(spec, settings)

    with pytest.raises(StudyError) as raised:
        run_study(study, spec, settings, trials=3, jobs=1, err=io.StringIO())

    message = str(raised.value)
    assert "trial 0: a worker process could not start or died" in message
    assert "run the same command again to resume" in message
    assert str(spec.place.journal) in message
    stored = optuna.load_study(study_name="broken", storage=study._storage)
    assert [t.state for t in stored.trials] == [TrialState.FAIL]
