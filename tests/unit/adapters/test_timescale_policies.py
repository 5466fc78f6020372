"""Which TimescaleDB features a version can have, and what the store says when one is off.

Old releases are not installed anywhere here, so the gate is tested as the rule it is: a version
too old for a feature turns that feature off with the reason and the fix, never the store.
"""

from __future__ import annotations

import pytest

from fin_agent.adapters.storage.timescale_features import Timescale
from fin_agent.adapters.storage.timescale_policies import (
    COMPRESSION,
    CONTINUOUS_AGGREGATES,
    HYPERTABLES,
    RETENTION,
    Policies,
    refused,
    too_old,
    version_tuple,
)
from fin_agent.domain.errors import ConfigError


@pytest.mark.parametrize(
    ("version", "expected"),
    [("2.28.3", (2, 28)), ("2.11.0-dev", (2, 11)), ("10.0.0", (10, 0)), ("unknown", (0, 0))],
)
def test_version_tuple_reads_major_and_minor(version: str, expected: tuple[int, int]) -> None:
    assert version_tuple(version) == expected


def test_a_current_timescaledb_can_have_every_feature() -> None:
    for feature in (HYPERTABLES, COMPRESSION, RETENTION, CONTINUOUS_AGGREGATES):
        assert too_old(feature, "2.28.3") is None, feature
        assert too_old(feature, "3.0.0") is None, feature  # newer: tried, refusals caught


@pytest.mark.parametrize(
    ("feature", "version", "message"),
    [
        (
            COMPRESSION,
            "2.10.3",
            "compression off, chunks stay uncompressed: timescaledb 2.10.3 is older than 2.11 "
            "(older versions do not check unique keys in compressed chunks, so a redelivered "
            "event could be stored twice): ALTER EXTENSION timescaledb UPDATE after installing a "
            "newer TimescaleDB 2.x",
        ),
        (
            RETENTION,
            "2.12.2",
            "retention off, every bar is kept: timescaledb 2.12.2 is older than 2.13 (older "
            "versions do not record when a chunk was created, which tells live bars from "
            "back-dated ones): ALTER EXTENSION timescaledb UPDATE after installing a newer "
            "TimescaleDB 2.x",
        ),
        (
            CONTINUOUS_AGGREGATES,
            "2.7.2",
            "continuous aggregates off, candles are computed from bars_1m: timescaledb 2.7.2 is "
            "older than 2.8 (older versions cannot bucket a continuous aggregate by the "
            "exchange's time zone): ALTER EXTENSION timescaledb UPDATE after installing a newer "
            "TimescaleDB 2.x",
        ),
        (
            HYPERTABLES,
            "1.7.5",
            "hypertables off, the tables stay plain: timescaledb 1.7.5 is older than 2.0 (this "
            "agent knows TimescaleDB 2.x): ALTER EXTENSION timescaledb UPDATE after installing a "
            "newer TimescaleDB 2.x",
        ),
    ],
)
def test_a_version_too_old_for_a_feature_turns_it_off_saying_why_and_the_fix(
    feature: str, version: str, message: str
) -> None:
    assert too_old(feature, version) == message


def test_a_step_a_newer_timescaledb_refuses_turns_its_feature_off_naming_the_refusal() -> None:
    message = refused(COMPRESSION, "3.1.0", ValueError("unknown option compress_orderby"))

    assert message == (
        "compression off, chunks stay uncompressed: timescaledb 3.1.0 refused it (ValueError: "
        "unknown option compress_orderby); this agent was tested with TimescaleDB 2.x"
    )


def test_policies_refuse_less_than_a_day_and_keep_retention_off_by_default() -> None:
    assert Policies() == Policies(compress_after_days=7, bars_retention_days=None)
    with pytest.raises(ConfigError, match=r"bars_retention_days is 0: use at least 1, or null"):
        Policies(bars_retention_days=0)
    with pytest.raises(ConfigError, match=r"compress_after_days is -1: use at least 1, or null"):
        Policies(compress_after_days=-1)


def test_the_detail_says_the_mode_then_the_policies_then_what_is_off() -> None:
    plain = Timescale(version=None, problems=("timescaledb is installed but not preloaded: fix",))
    full = Timescale(
        version="2.28.3",
        features=(HYPERTABLES, COMPRESSION),
        notes=("compression after 7 days",),
        problems=("retention off, every bar is kept: why",),
    )

    assert plain.detail == (
        "plain PostgreSQL tables; timescaledb is installed but not preloaded: fix"
    )
    assert full.detail == (
        "timescaledb 2.28.3; compression after 7 days; retention off, every bar is kept: why"
    )
