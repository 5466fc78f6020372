"""A trial's settings: the base config with its values laid over it, equal to what an overlay
of the same values gives, and refused as a whole when the values break a cross-field rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fin_agent.app.config.settings import load_settings
from fin_agent.app.research.space import overlay_text
from fin_agent.app.research.trials import trial_settings

REPO = Path(__file__).resolve().parents[3]


def test_trial_settings_equal_the_overlay_written_for_them(tmp_path: Path) -> None:
    params = {"scan.gap_min_pct": 2.5, "plan.reward_risk": 1.75, "plan.atr_stop_multiple": 0.3}
    overlay = tmp_path / "best.yaml"
    overlay.write_text(overlay_text(params, "a trial"), encoding="utf-8")
    base = load_settings(REPO / "config.yaml", environ={})
    from_overlay = load_settings(REPO / "config.yaml", environ={}, overlays=[overlay])
    assert trial_settings(base, params) == from_overlay
    assert from_overlay != base


def test_trial_values_that_break_a_cross_field_rule_are_refused() -> None:
    base = load_settings(REPO / "config.yaml", environ={})
    with pytest.raises(ValidationError, match="gap_min_pct"):
        trial_settings(base, {"scan.gap_min_pct": 45.0})
