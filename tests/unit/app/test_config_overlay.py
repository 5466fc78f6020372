"""`--config FILE` after a command: an overlay over the base config, unknown keys refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fin_agent.app.config.settings import load_settings
from fin_agent.domain.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_an_overlay_changes_only_the_keys_it_sets(tmp_path: Path) -> None:
    overlay = tmp_path / "best.yaml"
    overlay.write_text("scan:\n  gap_min_pct: 2.5\n", encoding="utf-8")
    settings = load_settings(REPO / "config.yaml", environ={}, overlays=[overlay])
    assert settings.scan.gap_min_pct == Decimal("2.5")
    assert (
        settings.scan.gap_max_pct
        == load_settings(REPO / "config.yaml", environ={}).scan.gap_max_pct
    )


def test_an_overlay_beats_the_environment(tmp_path: Path) -> None:
    overlay = tmp_path / "best.yaml"
    overlay.write_text("scan:\n  gap_min_pct: 2.5\n", encoding="utf-8")
    environ = {"FIN_AGENT_SCAN__GAP_MIN_PCT": "1"}
    settings = load_settings(REPO / "config.yaml", environ=environ, overlays=[overlay])
    assert settings.scan.gap_min_pct == Decimal("2.5")


def test_an_overlay_with_an_unknown_key_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    overlay = tmp_path / "best.yaml"
    overlay.write_text("scan:\n  gap_min_pct: 2.5\n  gap_mni_pct: 3\n", encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=rf"scan.gap_mni_pct: unknown key \(set in overlay {overlay} line 3\); "
        "did you mean gap_min_pct",
    ):
        load_settings(REPO / "config.yaml", environ={}, overlays=[overlay])


def test_an_overlay_cannot_hold_profiles(tmp_path: Path) -> None:
    overlay = tmp_path / "best.yaml"
    overlay.write_text("profiles:\n  dev: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot hold profiles"):
        load_settings(REPO / "config.yaml", environ={}, overlays=[overlay])


def test_a_search_space_key_that_is_not_a_numeric_setting_is_refused(tmp_path: Path) -> None:
    overlay = tmp_path / "space.yaml"
    overlay.write_text(
        "optimize:\n  space:\n    scan.gap_mn_pct: {low: 1, high: 2}\n"
        "    scan.direction: {low: 1, high: 2}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"scan.gap_mn_pct is not a setting") as raised:
        load_settings(REPO / "config.yaml", environ={}, overlays=[overlay])
    assert "scan.direction is not a number" in str(raised.value)
