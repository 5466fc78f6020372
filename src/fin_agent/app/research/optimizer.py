"""`fin-agent optimize`: Optuna asks for parameters here, worker processes backtest them.

The parent process alone samples (TPE) and ends trials (`ask`/`tell`), keeping `jobs` trials in
flight on a process pool (processes: the backtest is Python-bound, and threads would share one
GIL). A first SIGINT stops asking and lets the trials in flight finish; a second one abandons
them (failed). Rerunning the command resumes: finished trials are kept, and only the rest of
`--trials` are run.
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from fin_agent.app.config.settings import Settings
from fin_agent.app.research.space import distributions
from fin_agent.app.research.storage import StudyError, fail_stale, open_storage
from fin_agent.app.research.trials import Outcome, RunSpec, init_worker, run_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECS = 0.25
STOPPING = "stopping: the trials in flight finish first; Ctrl-C again abandons them (failed)"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCounts:
    """What a run did: trials finished before it, by it, failed stale, and if it was stopped."""

    before: int
    ran: int
    stale: list[int]
    interrupted: bool


def open_study(spec: RunSpec, settings: Settings) -> optuna.Study:
    """Create the study, or load it to resume; `StudyError` when it was made for other data,
    sessions, windows, objective or search space (resuming it would mix incomparable trials)."""
    optimize = settings.optimize
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=spec.place.name,
        storage=open_storage(spec.place),
        sampler=optuna.samplers.TPESampler(
            seed=optimize.seed, n_startup_trials=optimize.startup_trials
        ),
        direction="maximize",
        load_if_exists=True,
    )
    identity = _identity(spec, settings)
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", identity)
    elif stored != identity:
        changed = sorted(k for k in identity if identity[k] != stored.get(k))
        raise StudyError(
            f"study {spec.place.name} was started with other {', '.join(changed)} "
            f"(kept in {spec.place.where}): run it with the same data, --from/--to and "
            "optimize settings, or set another optimize.study"
        )
    return study


def _identity(spec: RunSpec, settings: Settings) -> dict[str, Any]:
    optimize = settings.optimize
    return {
        "data": [str(p.absolute()) for p in spec.data],
        "sessions": [str(spec.sessions[0]), str(spec.sessions[-1]), len(spec.sessions)],
        "objective": optimize.objective,
        "min_trades": optimize.min_trades,
        "windows": [optimize.train_days, optimize.test_days],
        "space": {path: r.model_dump() for path, r in sorted(optimize.space.items())},
    }


def run_study(
    study: optuna.Study, spec: RunSpec, settings: Settings, *, trials: int, jobs: int, err: TextIO
) -> RunCounts:
    """Run trials until `trials` have finished (complete or pruned) or SIGINT."""
    stale = fail_stale(study)
    before = len(study.get_trials(deepcopy=False, states=FINISHED))
    space = distributions(settings.optimize)
    stop = _Stop(err)
    previous = signal.signal(signal.SIGINT, stop.handle)
    bar = tqdm(
        total=trials, initial=min(before, trials), unit="trial", file=err, desc=spec.place.name
    )
    ran = 0
    asked: dict[Future[Outcome], optuna.trial.Trial] = {}
    context = multiprocessing.get_context("spawn")  # fresh workers: no inherited lock or loop
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=init_worker, initargs=(spec,)
    )
    try:
        while True:
            while not stop.requested and len(asked) < jobs and before + ran + len(asked) < trials:
                trial = study.ask(space)
                asked[pool.submit(run_trial, spec, trial.number)] = trial
            if not asked:
                break
            done, _ = wait(asked, timeout=POLL_SECS, return_when=FIRST_COMPLETED)
            for future in done:
                trial = asked[future]
                _tell(study, trial, _outcome(future, trial, spec))  # an error fails it, below
                del asked[future]
                ran += 1
                bar.update(1)
                if any(t.state is TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
                    bar.set_postfix(best=f"{study.best_value:.4g}")
    except KeyboardInterrupt:  # the second SIGINT: abandon the trials in flight
        for trial in asked.values():
            trial.set_user_attr("reason", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
        for process in list(pool._processes.values()):  # no public way to kill them
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
        return RunCounts(before=before, ran=ran, stale=stale, interrupted=True)
    except BaseException:
        for trial in asked.values():
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    pool.shutdown(wait=True)
    bar.close()
    return RunCounts(before=before, ran=ran, stale=stale, interrupted=stop.requested)


def _outcome(future: Future[Outcome], trial: optuna.trial.Trial, spec: RunSpec) -> Outcome:
    """The worker's outcome of `trial`; `StudyError` naming the trial when its worker failed
    (the finished trials stay in the study, so the same command resumes it once mended)."""
    kept = f"finished trials are kept in {spec.place.where}: run the same command again to resume"
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise StudyError(
            f"trial {trial.number}: a worker process could not start or died ({exc}); its error, "
            "if it had one, is printed above (a bar file or config.yaml changed since the start?); "
            "killed without one, the machine may be short of memory: run fewer --jobs; " + kept
        ) from exc
    except Exception as exc:
        raise StudyError(
            f"trial {trial.number} failed in its worker with {type(exc).__name__}: {exc} "
            f"(parameters {trial.params}); " + kept
        ) from exc


def _tell(study: optuna.Study, trial: optuna.trial.Trial, outcome: Outcome) -> None:
    if outcome.reason is not None:
        trial.set_user_attr("reason", outcome.reason)
    if outcome.state == "complete" and outcome.value is not None:
        study.tell(trial, outcome.value)
    else:
        study.tell(trial, state=TrialState.PRUNED)


class _Stop:
    """SIGINT: the first asks to stop after the trials in flight (and says so on `err`), the
    second interrupts."""

    def __init__(self, err: TextIO) -> None:
        self.requested = False
        self._err = err

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write(STOPPING, file=self._err)


def counts_text(study: optuna.Study, trials: int, counts: RunCounts) -> str:
    """One line on how far the study got."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    finished = sum(1 for s in states if s in FINISHED)
    parts = [
        f"{finished} of {trials} trial(s) finished ({states.count(TrialState.COMPLETE)} complete,"
        f" {states.count(TrialState.PRUNED)} pruned, {states.count(TrialState.FAIL)} failed)",
        f"{counts.ran} run now, {counts.before} kept from before",
    ]
    if counts.stale:
        parts.append(f"trial(s) {counts.stale} left running by a killed run were failed")
    return "; ".join(parts)
