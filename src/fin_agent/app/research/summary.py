"""What a study found: its trials, the walk-forward picks and their out-of-sample days, the
parameter importance, and the best parameters written as a config overlay.

`summary.json` (beside the study's journal) is what the dashboard's Research page shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fin_agent.app.config.settings import Settings
from fin_agent.app.research.space import overlay_text
from fin_agent.app.research.trials import RunSpec, days_of
from fin_agent.domain.walk_forward import (
    DayResult,
    FoldPick,
    Objective,
    WindowScore,
    out_of_sample,
    pick,
)

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySummary:
    """The summary as JSON-ready data, and the overlay's parameters (None: no pick)."""

    data: dict[str, Any]
    overlay_params: dict[str, Any] | None


def summarize(study: optuna.Study, spec: RunSpec, settings: Settings) -> StudySummary:
    """The study's summary (every trial, the folds' picks, out of sample, importance)."""
    optimize = settings.optimize
    objective = Objective(optimize.objective)
    trials = study.get_trials(deepcopy=False)
    candidates = {
        t.number: days_of(t.user_attrs.get("days"))
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    }
    picks = pick(spec.folds, candidates, objective, optimize.min_trades)
    oos_days, oos = out_of_sample(picks, candidates, objective)
    by_number = {t.number: t for t in trials}
    final = picks[-1]
    overlay_params = dict(by_number[final.trial].params) if final.trial is not None else None
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    data: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "study": spec.place.name,
        "objective": objective.value,
        "min_trades": optimize.min_trades,
        "sessions": [str(spec.sessions[0]), str(spec.sessions[-1]), len(spec.sessions)],
        "trials": [_trial(t) for t in trials],
        "best_trial": study.best_trial.number if complete else None,
        "folds": [_fold(p) for p in picks],
        "out_of_sample": {
            **_window(oos),
            "curve": _curve(oos_days, settings.strategy_equity()),
        },
        "importance": _importance(study) if len(complete) >= 2 else {},
        "overlay": {"trial": final.trial, "params": overlay_params},
    }
    return StudySummary(data=data, overlay_params=overlay_params)


def write_summary(summary: StudySummary, spec: RunSpec) -> Path | None:
    """Write summary.json, and best.yaml when a trial was picked; the overlay's path or None."""
    place = spec.place
    place.summary.write_text(json.dumps(summary.data, indent=1) + "\n", encoding="utf-8")
    if summary.overlay_params is None:
        return None
    final = summary.data["folds"][-1]
    header = (
        f"fin-agent optimize: study {place.name}, trial {summary.data['overlay']['trial']}, "
        f"best {summary.data['objective']} on {final['train'][0]}..{final['train'][1]}\n"
        "use: fin-agent backtest --config THIS_FILE --data ... --from ... --to ..."
    )
    place.overlay.write_text(overlay_text(summary.overlay_params, header), encoding="utf-8")
    return place.overlay


def summary_text(summary: StudySummary, overlay: Path | None) -> str:
    """The summary for a terminal: each fold's pick, out of sample, importance, the overlay."""
    data = summary.data
    lines = [f"walk-forward ({data['objective']}; train -> test, the pick by its training score):"]
    for fold in data["folds"]:
        test = f"{fold['test'][0]}..{fold['test'][1]}" if fold["test"] else "(none: trade next)"
        lines.append(
            f"  fold {fold['index']}: {fold['train'][0]}..{fold['train'][1]} -> {test}  "
            f"trial {fold['trial']}  train {fold['train_score']}  test {fold['test_score']}"
        )
    oos = data["out_of_sample"]
    lines.append(
        f"out of sample: {data['objective']} {oos['score']}, net P&L {oos['net_pnl']}, "
        f"{oos['trades']} trade(s) over {len(oos['curve'])} session(s)"
    )
    if data["importance"]:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in data["importance"].items())
        lines.append(f"parameter importance: {shares}")
    if overlay is not None:
        lines.append(f"best parameters (the last fold's pick): {overlay}")
    else:
        lines.append("no trial scored on the last training window: no overlay written")
    return "\n".join(lines)


def _trial(trial: FrozenTrial) -> dict[str, Any]:
    days = days_of(trial.user_attrs.get("days"))
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,
        "params": trial.params,
        "reason": trial.user_attrs.get("reason"),
        "net_pnl": str(sum((d.net_pnl for d in days.values()), Decimal(0))),
        "trades": sum(d.trades for d in days.values()),
        "sessions": len(days),
    }


def _fold(chosen: FoldPick) -> dict[str, Any]:
    fold = chosen.fold
    return {
        "index": fold.index,
        "train": [str(fold.train[0]), str(fold.train[-1])],
        "test": [str(fold.test[0]), str(fold.test[-1])] if fold.test else None,
        "trial": chosen.trial,
        "train_score": _text(chosen.train.score) if chosen.train else None,
        "test_score": _text(chosen.test.score) if chosen.test else None,
        "test_net_pnl": str(chosen.test.net_pnl) if chosen.test else None,
        "test_trades": chosen.test.trades if chosen.test else None,
    }


def _window(result: WindowScore) -> dict[str, Any]:
    return {"score": _text(result.score), "net_pnl": str(result.net_pnl), "trades": result.trades}


def _curve(days: list[DayResult], start: Decimal) -> list[dict[str, Any]]:
    equity = start
    curve = []
    for day in days:
        equity += day.net_pnl
        curve.append({"day": str(day.day), "net_pnl": str(day.net_pnl), "equity": str(equity)})
    return curve


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _importance(study: optuna.Study) -> dict[str, float]:
    """Each parameter's share of the objective's variance over the complete trials (PED-ANOVA:
    no scikit-learn needed); empty when the trials do not vary enough to tell."""
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    except (RuntimeError, ValueError):
        return {}
    return {name: round(float(share), 4) for name, share in found.items()}


__all__ = ["StudySummary", "summarize", "summary_text", "write_summary"]
