"""Config versions: the whole config's hash, and the strategy version of its deciding sections.

The strategy version changes with a key of scan, plan, risk or execution and with nothing else,
so an audit replay can tell a changed rule from a changed port; the config version still names
the whole config (`config diff`, the dashboard's banner).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.version import (
    STRATEGY_SECTIONS,
    ConfigHistory,
    config_version,
    strategy_version,
    strategy_version_of,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def settings() -> Settings:
    """The repository's config.yaml, without the machine's environment."""
    return load_settings(REPO / "config.yaml", environ={})


def edited(settings: Settings, section: str, **values: Any) -> Settings:
    """`settings` with `values` set in `section`, validated as a loaded config would be."""
    dumped = settings.model_dump()
    dumped[section] = {**dumped[section], **values}
    return type(settings).model_validate(dumped)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("http", "port", 18080),
        ("dashboard", "port", 18501),
        ("bus", "kind", "redis"),
        ("store", "batch_size", 250),
        ("logging", "level", "DEBUG"),
        ("schedule", "grace_minutes", 3),
        ("notifications", "queue_size", 10),
        ("simulator", "seed", 11),
    ],
)
def test_a_key_outside_the_deciding_sections_changes_only_the_config_version(
    settings: Settings, section: str, key: str, value: object
) -> None:
    other = edited(settings, section, **{key: value})

    assert config_version(other) != config_version(settings)
    assert strategy_version(other) == strategy_version(settings)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("scan", "gap_min_pct", "4.5"),
        ("scan", "universe", ["AAA"]),
        ("plan", "reward_risk", "2.5"),
        ("risk", "max_open_positions", 2),
        ("execution", "slippage_bps", "5"),
    ],
)
def test_a_key_of_a_deciding_section_changes_both_versions(
    settings: Settings, section: str, key: str, value: object
) -> None:
    other = edited(settings, section, **{key: value})

    assert config_version(other) != config_version(settings)
    assert strategy_version(other) != strategy_version(settings)


def test_the_deciding_sections_are_the_strategys() -> None:
    assert STRATEGY_SECTIONS == ("scan", "plan", "risk", "execution")


def test_the_strategy_version_of_a_recorded_config_is_that_of_its_settings(
    settings: Settings, tmp_path: Path
) -> None:
    history = ConfigHistory(tmp_path / "config")

    version = history.record(settings)

    assert strategy_version_of(history.load(version)) == strategy_version(settings)
    assert len(strategy_version(settings)) == len(version) == 12
    assert strategy_version(settings) != version
