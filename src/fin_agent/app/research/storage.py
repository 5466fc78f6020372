"""Where a study lives: Optuna's journal file in `data_dir/optimize/<study>/`, one run at a time.

A journal file (append-only log, locked per write) needs no database server and is safe for
several worker processes; a lock file keeps a second `optimize` off the same study, so a trial
found RUNNING at the start was left by a killed run and is failed (`fail_stale`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from fin_agent.domain.errors import PermanentError


class StudyError(PermanentError):
    """The study cannot be used as asked; the message names the fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyPlace:
    """A study's name and its folder (journal, lock, summary, overlay)."""

    name: str
    folder: Path

    @property
    def journal(self) -> Path:
        """Optuna's journal file."""
        return self.folder / "journal.log"

    @property
    def summary(self) -> Path:
        """The summary of the study, read by the dashboard's Research page."""
        return self.folder / "summary.json"

    @property
    def overlay(self) -> Path:
        """The best parameters as a config overlay (`backtest --config`)."""
        return self.folder / "best.yaml"


def open_storage(place: StudyPlace) -> BaseStorage:
    """The study's storage (the folder is created if missing)."""
    place.folder.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(place.journal)))


@contextmanager
def study_lock(place: StudyPlace) -> Iterator[None]:
    """Hold the study's lock file for the block; `StudyError` if another process holds it."""
    place.folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(place.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(
                f"study {place.name} is being optimised by another process ({place.folder}/lock):"
                " wait for it to finish, or set another optimize.study"
            ) from None
        yield
    finally:
        os.close(fd)


def fail_stale(study: optuna.Study) -> list[int]:
    """Fail the trials a killed run left RUNNING (call with the lock held); their numbers."""
    stale = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for number in stale:
        study.tell(number, state=TrialState.FAIL)
    return stale
