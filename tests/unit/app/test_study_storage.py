"""A study's storage: one run at a time (the lock file), and trials a killed run left RUNNING
failed when the study is opened again."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from fin_agent.app.research.storage import (
    StudyError,
    StudyPlace,
    fail_stale,
    open_storage,
    study_lock,
)


def test_a_second_run_of_the_same_study_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    place = StudyPlace(name="s", folder=tmp_path / "s")
    refused = pytest.raises(StudyError, match="study s is being optimised by another process")
    with study_lock(place), refused, study_lock(place):
        pass
    with study_lock(place):  # released: free again
        pass


def test_trials_left_running_are_failed_and_finished_ones_kept(tmp_path: Path) -> None:
    place = StudyPlace(name="s", folder=tmp_path / "s")
    study = optuna.create_study(study_name="s", storage=open_storage(place), direction="maximize")
    done = study.ask()
    study.tell(done, 1.0)
    left = study.ask()  # a killed run's trial: RUNNING forever
    reopened = optuna.load_study(study_name="s", storage=open_storage(place))
    assert fail_stale(reopened) == [left.number]
    states = [t.state for t in reopened.get_trials(deepcopy=False)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
