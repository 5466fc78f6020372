"""Walk-forward windows and picks: each fold's pick is the best training score, scored on the
test days after it, never on its own training days."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from fin_agent.domain.walk_forward import (
    DayResult,
    Objective,
    WalkForwardError,
    folds,
    out_of_sample,
    pick,
    score,
)

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(7)]


def _run(pnls: list[int]) -> dict[date, DayResult]:
    return {
        d: DayResult(
            day=d, start_equity=Decimal(1000), net_pnl=Decimal(p), trades=1, r_total=Decimal(p)
        )
        for d, p in zip(DAYS, pnls, strict=False)
    }


def test_folds_roll_by_the_test_window_and_end_with_a_fold_to_trade_next() -> None:
    found = folds(DAYS, 3, 2)
    assert [(f.train, f.test) for f in found] == [
        (tuple(DAYS[0:3]), tuple(DAYS[3:5])),
        (tuple(DAYS[2:5]), tuple(DAYS[5:7])),
        (tuple(DAYS[4:7]), ()),
    ]


def test_folds_refuse_sessions_shorter_than_one_train_and_test() -> None:
    with pytest.raises(WalkForwardError, match="7 session"):
        folds(DAYS, 6, 2)


def test_pick_scores_each_folds_best_training_trial_on_the_following_test_days() -> None:
    candidates = {0: _run([1, 1, 1, -5, -5, 9, 9]), 1: _run([0, 0, 0, 4, 4, 0, 0])}
    picks = pick(folds(DAYS, 3, 2), candidates, Objective.NET_PNL, 1)
    assert [p.trial for p in picks] == [0, 1, 0]
    assert [p.test.net_pnl if p.test else None for p in picks] == [-10, 0, None]
    days, oos = out_of_sample(picks, candidates, Objective.NET_PNL)
    assert [d.day for d in days] == DAYS[3:7]
    assert oos.net_pnl == -10


def test_a_window_below_min_trades_has_no_score() -> None:
    run = list(_run([1, 2]).values())
    assert score(run, Objective.NET_PNL, 3).score is None
    assert score(run, Objective.EXPECTANCY, 2).score == Decimal("1.5000")
