"""One trial in a worker process: the backtest of `fin-agent backtest`, run as it is with the
trial's parameters over every session, scored window by window for the pruner.

Each worker process reads the bar files once and keeps them for all its trials; the trial's
settings are the base config with the parameters as overrides (the same layer an overlay
file sets), so the overlay written at the end reproduces the trial.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import optuna
from pydantic import ValidationError

from fin_agent.app.bootstrap import build_replay, load_bar_files, running
from fin_agent.app.config.problems import translate
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.observability.logs import configure_logging
from fin_agent.app.research.space import overrides
from fin_agent.app.research.storage import StudyPlace, open_storage
from fin_agent.app.runner import run_sessions
from fin_agent.domain.report import DailyReport
from fin_agent.domain.walk_forward import DayResult, Fold, Objective, score, window
from fin_agent.ports.market_data import RecordedMarketData

ZERO = Decimal(0)
TOO_FEW_TRADES = "too_few_trades"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """What a worker process needs, picklable: the config, the data, the sessions, the study."""

    config_path: Path | None
    profile: str | None
    overlays: tuple[Path, ...]
    data: tuple[Path, ...]
    timezone: str
    bar_stamp: str
    factors_dir: Path | None
    sessions: tuple[date, ...]
    folds: tuple[Fold, ...]
    place: StudyPlace


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How a trial ended: its objective value (mean training score), or pruned and why."""

    number: int
    state: Literal["complete", "pruned"]
    value: float | None
    reason: str | None


@dataclass(slots=True, kw_only=True)
class _Worker:
    settings: Settings
    market: RecordedMarketData
    study: optuna.Study


def init_worker(spec: RunSpec) -> None:
    """Worker start: ignore SIGINT (the parent decides when to stop), read the bar files."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker(spec)


@functools.cache
def _worker(spec: RunSpec) -> _Worker:
    settings = load_settings(spec.config_path, profile=spec.profile, overlays=spec.overlays)
    configure_logging("WARNING", settings.logging.format, secrets=settings.secret_values())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = load_bar_files(
        spec.data, timezone=spec.timezone, bar_stamp=spec.bar_stamp, factors_dir=spec.factors_dir
    )
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=settings.optimize.startup_trials // 2)
        if settings.optimize.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.load_study(
        study_name=spec.place.name,
        storage=open_storage(spec.place),
        sampler=optuna.samplers.RandomSampler(),  # never asked: the parent samples
        pruner=pruner,
    )
    return _Worker(settings=settings, market=loaded.market, study=study)


def run_trial(spec: RunSpec, number: int) -> Outcome:
    """Backtest trial `number` (asked by the parent) day by day, reporting each fold's
    training score as it completes; pruned when told, or when a window has too few trades."""
    worker = _worker(spec)
    frozen = worker.study.get_trials(deepcopy=False)[number]
    trial = optuna.trial.Trial(worker.study, frozen._trial_id)
    try:
        settings = trial_settings(worker.settings, frozen.params)
    except ValidationError as exc:
        problems = translate(exc, Settings, secret_fields=frozenset())
        why = "; ".join(str(p) for p in problems)
        return Outcome(number=number, state="pruned", value=None, reason=f"invalid: {why}")
    return asyncio.run(_backtest(spec, worker, settings, trial))


async def _backtest(
    spec: RunSpec, worker: _Worker, settings: Settings, trial: optuna.trial.Trial
) -> Outcome:
    optimize = settings.optimize
    objective = Objective(optimize.objective)
    results: dict[date, DayResult] = {}
    scores: list[Decimal] = []
    ends = {fold.train[-1]: fold for fold in spec.folds}
    container = await build_replay(settings, worker.market)
    async with running(container):
        equity = settings.strategy_equity()
        for day in spec.sessions:
            session = container.calendar.session(day)
            if session is None:
                continue
            reports = await run_sessions(container, [session], equity)
            report = reports[0]
            equity = report.performance.end_equity
            results[day] = _day_result(report)
            fold = ends.get(day)
            if fold is None:
                continue
            train = window(results, fold.train)
            window_score = score(train or [], objective, optimize.min_trades)
            if window_score.score is None:
                reason = f"{TOO_FEW_TRADES}: {window_score.trades} in fold {fold.index}"
                return _pruned(trial, results, reason)
            scores.append(window_score.score)
            trial.report(float(sum(scores, ZERO) / len(scores)), step=fold.index)
            if trial.should_prune():
                return _pruned(trial, results, f"below the median at fold {fold.index}")
    value = float(sum(scores, ZERO) / len(scores)) if scores else None
    trial.set_user_attr("days", _days_attr(results))
    return Outcome(number=trial.number, state="complete", value=value, reason=None)


def trial_settings(base: Settings, params: dict[str, Any]) -> Settings:
    """`base` with the trial's values laid over it, validated as a whole: what `load_settings`
    gives with them as overrides (the layer just below the arguments), without reading the
    config file again for every trial."""
    data = base.model_dump()
    for section, values in overrides(params).items():
        data[section] = {**data[section], **values}
    return Settings(**data)


def _pruned(trial: optuna.trial.Trial, results: dict[date, DayResult], reason: str) -> Outcome:
    trial.set_user_attr("days", _days_attr(results))
    return Outcome(number=trial.number, state="pruned", value=None, reason=reason)


def _day_result(report: DailyReport) -> DayResult:
    perf = report.performance
    return DayResult(
        day=report.day,
        start_equity=perf.start_equity,
        net_pnl=perf.net_pnl,
        trades=len(perf.trades),
        r_total=sum((t.r_multiple for t in perf.trades), ZERO),
    )


def _days_attr(results: dict[date, DayResult]) -> list[list[Any]]:
    return [
        [str(r.day), str(r.start_equity), str(r.net_pnl), r.trades, str(r.r_total)]
        for r in results.values()
    ]


def days_of(attr: object) -> dict[date, DayResult]:
    """The day results a trial stored (`_days_attr`), keyed by day."""
    out: dict[date, DayResult] = {}
    if not isinstance(attr, list):
        return out
    for day, start, net, trades, r_total in attr:
        out[date.fromisoformat(day)] = DayResult(
            day=date.fromisoformat(day),
            start_equity=Decimal(start),
            net_pnl=Decimal(net),
            trades=int(trades),
            r_total=Decimal(r_total),
        )
    return out
