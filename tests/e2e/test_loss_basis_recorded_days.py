"""The default `risk.loss_limit_basis: marked` trades the recorded week of ../shared/data exactly
as the realised-only loss limit did (with the 1 % gap band the week's other tests use)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e.test_backtest_recorded_days import DAILY, MINUTES, run_cli

pytestmark = pytest.mark.data


def week(shared_data: Path) -> dict[str, Any]:
    code, out, _ = run_cli(
        "backtest", "--data", str(shared_data / DAILY), str(shared_data / MINUTES),
        "--from", "2019-02-11", "--to", "2019-02-15", "--json",
    )  # fmt: skip
    assert code == 0
    report: dict[str, Any] = json.loads(out)
    return report


def test_marked_loss_basis_keeps_the_recorded_weeks_trades(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    marked = week(shared_data)  # the default basis
    monkeypatch.setenv("FIN_AGENT_RISK__LOSS_LIMIT_BASIS", "realised")
    realised = week(shared_data)

    assert len(marked["trades"]) > 0
    assert marked["trades"] == realised["trades"]
    assert marked["end_equity"] == realised["end_equity"]
