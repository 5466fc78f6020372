"""Walk-forward scoring of backtests: rolling train and test windows, a window's score, and the
out-of-sample result of choosing, for each window, the candidate that did best in its training.

Pure: the optimiser (app/research) feeds it each trial's day-by-day results; nothing here knows
how the candidates were proposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fin_agent.domain.performance import sharpe

ZERO = Decimal(0)
SCORE_STEP = Decimal("0.0001")


class Objective(StrEnum):
    """What a window scores (higher is better)."""

    NET_PNL = "net_pnl"
    SHARPE = "sharpe"
    EXPECTANCY = "expectancy"


@dataclass(frozen=True, slots=True, kw_only=True)
class DayResult:
    """One session of a backtest: its start equity, net P&L, closed trades and their R sum."""

    day: date
    start_equity: Decimal
    net_pnl: Decimal
    trades: int
    r_total: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Fold:
    """A training window and the test window right after it (empty for the last, live fold)."""

    index: int
    train: tuple[date, ...]
    test: tuple[date, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowScore:
    """A window's figures; `score` is None when it has too few trades or the figure is undefined."""

    trades: int
    net_pnl: Decimal
    score: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FoldPick:
    """The candidate best in a fold's training window, and how it did in the test window."""

    fold: Fold
    trial: int | None
    train: WindowScore | None
    test: WindowScore | None


class WalkForwardError(ValueError):
    """The sessions cannot hold the windows asked for (the message says how to fix it)."""


def folds(sessions: Sequence[date], train_days: int, test_days: int) -> list[Fold]:
    """Rolling folds over `sessions`: trains of `train_days`, each followed by `test_days` of
    test, rolled by `test_days`; then a last fold training on the final `train_days` (no test),
    whose pick is the parameters to trade next."""
    if len(sessions) < train_days + test_days:
        raise WalkForwardError(
            f"{len(sessions)} session(s) cannot hold a training window of {train_days} and a "
            f"test window of {test_days}: widen --from/--to or lower optimize.train_days / "
            "optimize.test_days"
        )
    out: list[Fold] = []
    start = 0
    while start + train_days + test_days <= len(sessions):
        train = tuple(sessions[start : start + train_days])
        test = tuple(sessions[start + train_days : start + train_days + test_days])
        out.append(Fold(index=len(out), train=train, test=test))
        start += test_days
    out.append(Fold(index=len(out), train=tuple(sessions[-train_days:]), test=()))
    return out


def score(days: Sequence[DayResult], objective: Objective, min_trades: int) -> WindowScore:
    """The window's figures and its score by `objective` (None below `min_trades` trades)."""
    trades = sum(d.trades for d in days)
    net = sum((d.net_pnl for d in days), ZERO)
    value: Decimal | None
    if trades < min_trades:
        value = None
    elif objective is Objective.NET_PNL:
        value = net
    elif objective is Objective.SHARPE:
        value = sharpe([d.net_pnl / d.start_equity if d.start_equity else ZERO for d in days])
    else:
        total_r = sum((d.r_total for d in days), ZERO)
        value = (total_r / trades).quantize(SCORE_STEP) if trades else None
    return WindowScore(trades=trades, net_pnl=net, score=value)


def window(results: Mapping[date, DayResult], days: Sequence[date]) -> list[DayResult] | None:
    """The results of `days`, or None when some day was not run (a pruned trial)."""
    if not all(d in results for d in days):
        return None
    return [results[d] for d in days]


def pick(
    fold_list: Sequence[Fold],
    candidates: Mapping[int, Mapping[date, DayResult]],
    objective: Objective,
    min_trades: int,
) -> list[FoldPick]:
    """For each fold, the candidate (by number) best in its training window, ties to the lowest
    number, scored on the test window that follows: the walk-forward's out-of-sample result."""
    picks = []
    for fold in fold_list:
        best: tuple[Decimal, int, WindowScore] | None = None
        for number in sorted(candidates):
            train_days = window(candidates[number], fold.train)
            if train_days is None:
                continue
            train = score(train_days, objective, min_trades)
            if train.score is not None and (best is None or train.score > best[0]):
                best = (train.score, number, train)
        if best is None:
            picks.append(FoldPick(fold=fold, trial=None, train=None, test=None))
            continue
        test_days = window(candidates[best[1]], fold.test) if fold.test else None
        test = score(test_days, objective, 0) if test_days is not None else None
        picks.append(FoldPick(fold=fold, trial=best[1], train=best[2], test=test))
    return picks


def out_of_sample(
    picks: Sequence[FoldPick],
    candidates: Mapping[int, Mapping[date, DayResult]],
    objective: Objective,
) -> tuple[list[DayResult], WindowScore]:
    """The test days of every fold as traded by its pick, in order, and their combined score."""
    days: list[DayResult] = []
    for chosen in picks:
        if chosen.trial is None or not chosen.fold.test:
            continue
        run = window(candidates[chosen.trial], chosen.fold.test)
        if run is not None:
            days.extend(run)
    return days, score(days, objective, 0)
