"""The chaos suite's short round (issue 14): the real agent under faults, its store compared.

`bench/chaos.py --short` runs `fin-agent run --bus redis` over 3 simulated days against a private
PostgreSQL cluster and its own redis-server: once uninterrupted (the reference), then under 3
kill -9s, a 5 s write refusal, Redis restarted without its data and a second agent on the same
streams. Each fault must end with the store equal to the reference, or with a loud refusal. The
comparison itself is tested first, on rows, and by the suite's self check on a tampered copy.
Select with `-m chaos`; it runs in the default `pytest` run too.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import in_ci

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SHORT_TIMEOUT_SECS = 420


def _bench(name: str) -> ModuleType:
    """A module of bench/ (imported with bench/ on sys.path, as bench/chaos.py runs)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def short_round() -> dict[str, dict[str, Any]]:
    """`bench/chaos.py --short`, once for the module: its JSON lines by scenario."""
    missing = _bench("chaos_suite.services").missing_binaries()
    if missing:
        if in_ci():
            pytest.fail(f"CI must be able to run the chaos suite: {missing}")
        pytest.skip(f"chaos suite: {missing}")
    done = subprocess.run(
        [sys.executable, str(BENCH / "chaos.py"), "--short"],
        capture_output=True, text=True, timeout=SHORT_TIMEOUT_SECS, check=False, cwd=ROOT,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    by_metric = {line["metric"]: line for line in lines}
    assert "self_check" in by_metric, f"no results (exit {done.returncode}): {done.stderr[-3000:]}"
    return by_metric


def _row(**values: Any) -> dict[str, Any]:
    return {"event_id": "e1", "trading_day": "2025-03-03", "config_version": "v1", **values}


def test_compare_counts_lost_duplicated_and_changed_rows() -> None:
    compare = _bench("chaos_suite.compare")
    spec = compare.TableSpec(name="fills", key=("event_id",))
    reference = [_row(event_id="e1", price=1), _row(event_id="e2", price=2), _row(event_id="e3")]
    run = [_row(event_id="e2", price=3), _row(event_id="e3"), _row(event_id="e4")]

    diff = compare.diff_table(spec, reference, run)

    assert (diff.lost, diff.duplicated, diff.changed) == (1, 1, 1)


def test_compare_ignores_config_version_and_diagnostic_events_only() -> None:
    compare = _bench("chaos_suite.compare")
    spec = next(s for s in compare.TABLES if s.name == "events")
    reference = [_row(type="plan.created", data='{"qty": 5, "config_version": "a"}')]
    same = [
        _row(type="plan.created", data='{"config_version": "b", "qty": 5}', config_version="v2"),
        _row(event_id="e9", type="error.raised", data="{}"),
    ]
    other = [_row(type="plan.created", data='{"qty": 6, "config_version": "a"}')]

    assert compare.diff_table(spec, reference, same).changed == 0
    assert compare.diff_table(spec, reference, same).duplicated == 0
    assert compare.diff_table(spec, reference, other).changed == 1


def test_chaos_self_check_sees_a_deleted_a_changed_and_an_added_row(
    short_round: dict[str, dict[str, Any]],
) -> None:
    check = short_round["self_check"]

    assert check["verdict"] == "detects", check
    assert (check["lost"], check["duplicated"], check["changed"]) == (1, 1, 1)


def test_chaos_uninterrupted_run_equals_the_reference(
    short_round: dict[str, dict[str, Any]],
) -> None:
    control = short_round["uninterrupted"]

    assert control["verdict"] == "equal", control
    assert control["exit_codes"] == [0]


@pytest.mark.parametrize(
    "fault",
    [
        "kill9",
        "write_refused",
        "redis_lost",
        "second_agent",
    ],
)
def test_chaos_fault_ends_equal_to_the_reference_or_loud(
    short_round: dict[str, dict[str, Any]], fault: str
) -> None:
    line = short_round[fault]

    assert line["verdict"] in {"equal", "loud"}, json.dumps(line, indent=1)
