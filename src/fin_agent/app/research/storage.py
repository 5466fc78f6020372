"""Where a study lives: Optuna's journal file in `data_dir/optimize/<study>/`, or, when the
store is PostgreSQL (`store.kind: timescale`), Optuna's tables in that database's schema
`optuna`; one run at a time.

A journal file (append-only log, locked per write) needs no database server and is safe for
several worker processes; a lock file in the study's folder keeps a second `optimize` of the
same study off it on this machine, so a trial found RUNNING at the start was left by a killed run
and is failed (`fail_stale`). The folder also holds the summary and the overlay either way.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from fin_agent.domain.errors import PermanentError

OPTUNA_SCHEMA = "optuna"
"""The PostgreSQL schema of Optuna's tables, apart from the store's own."""


class StudyError(PermanentError):
    """The study cannot be used as asked; the message names the fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyPlace:
    """A study's name and its folder (journal, lock, summary, overlay)."""

    name: str
    folder: Path
    database_url: str | None = None
    """A PostgreSQL URL (password included) to keep the study in; None: the journal file."""

    @property
    def where(self) -> str:
        """Where the study is kept, for messages (never the password)."""
        if self.database_url is None:
            return str(self.journal)
        return f"schema {OPTUNA_SCHEMA} of the store's database"

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
    """The study's storage (the folder, or the database schema, created if missing)."""
    place.folder.mkdir(parents=True, exist_ok=True)
    if place.database_url is None:
        return JournalStorage(JournalFileBackend(str(place.journal)))
    url = sqlalchemy_url(place.database_url)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
    except sqlalchemy.exc.OperationalError as exc:
        raise StudyError(
            f"the store's database cannot keep the study ({exc.orig}): start it, or set "
            "store.kind to duckdb to keep studies in data_dir"
        ) from None
    finally:
        engine.dispose()
    options = {"options": f"-csearch_path={OPTUNA_SCHEMA}"}
    return optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": options, "pool_pre_ping": True}
    )


def sqlalchemy_url(database_url: str) -> str:
    """`postgresql://...` as SQLAlchemy names it with the psycopg (3) driver."""
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg{sep}{rest}"
    return database_url


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
