"""`fin-agent schedule`: the next runs of every job, around Thanksgiving and its half day."""

from __future__ import annotations

import io
import json
from pathlib import Path

from fin_agent.app.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_schedule_json_skips_thanksgiving_and_flattens_early_on_the_half_day() -> None:
    out, err = io.StringIO(), io.StringIO()

    code = main(
        ["--config", str(REPO / "config.yaml"), "schedule", "--from", "2026-11-25",
         "--count", "12", "--json"],
        out=out, err=err,
    )  # fmt: skip

    assert code == 0, err.getvalue()
    runs = json.loads(out.getvalue())
    assert len(runs) == 12
    assert not [r for r in runs if r["at"].startswith("2026-11-26")]
    flatten = [r["at"] for r in runs if r["job"] == "flatten"]
    assert flatten[:2] == ["2026-11-25T15:55:00-05:00", "2026-11-27T12:55:00-05:00"]
    assert {r["job"] for r in runs} >= {"scan", "plan", "flatten", "report", "housekeeping"}
