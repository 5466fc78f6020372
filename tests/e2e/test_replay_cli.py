"""`fin-agent replay --day` on a stored day: only a change to a deciding key is a difference.

A simulated session is recorded once in a DuckDB store with the repository's config.yaml; each
test replays a copy of it through the CLI with an edited config. Decisions carry the whole
config's hash (`config_version`, not compared) and the deciding sections' hash
(`strategy_version`, compared), so a new port changes nothing and a new gap threshold is reported.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.cli.main import main
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.version import ConfigHistory, config_version, strategy_version
from fin_agent.app.day.scan_record import snapshot_of
from fin_agent.app.runner import run_session
from fin_agent.domain.events import (
    OrderPlaced,
    PlanCreated,
    PositionClosed,
    ScanCompleted,
    SnapshotTaken,
)

REPO = Path(__file__).resolve().parents[2]
DAY = date(2025, 3, 12)
"""A day on which the seeded simulator scans, plans, trades and closes positions."""
VERSIONED = {cls.TYPE for cls in (ScanCompleted, PlanCreated, OrderPlaced, PositionClosed)}


def write_config(folder: Path, **sections: Mapping[str, Any]) -> Path:
    """config.yaml of the repository, its data under `folder/var`, with `sections` merged in."""
    config: dict[str, Any] = yaml.safe_load((REPO / "config.yaml").read_text())
    config["data_dir"] = str(folder / "var")
    config["store"] = {**config["store"], "kind": "duckdb"}
    config["bus"] = {**config["bus"], "kind": "memory"}
    for name, values in sections.items():
        config[name] = {**config[name], **values}
    path = folder / f"config-{len(list(folder.glob('config-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def record(settings: Settings) -> None:
    """Run the simulated DAY into the DuckDB store of `settings`."""
    container = await build_simulation(settings, bus="memory", store="duckdb")
    async with running(container):
        session = container.calendar.session(DAY)
        assert session is not None
        await run_session(container, session, Decimal(100_000))


@dataclass(frozen=True, slots=True)
class Recorded:
    """DAY recorded under `folder/var` with `settings` (the repository's config)."""

    folder: Path
    settings: Settings


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """DAY recorded once for the module."""
    folder = tmp_path_factory.mktemp("recorded")
    settings = load_settings(write_config(folder))
    asyncio.run(record(settings))
    return Recorded(folder, settings)


@pytest.fixture
def stored(recorded: Recorded, tmp_path: Path) -> Path:
    """A copy of the recorded day for one test (some rewrite it): the folder of its `var/`."""
    shutil.copytree(recorded.folder / "var", tmp_path / "var")
    return tmp_path


def replay(config: Path, *extra: str) -> tuple[int, str]:
    """`fin-agent --config CONFIG replay --day DAY [extra]`: its exit code and output."""
    out = io.StringIO()
    code = main(
        ["--config", str(config), "replay", "--day", DAY.isoformat(), *extra],
        out=out,
        err=io.StringIO(),
    )
    return code, out.getvalue()


def stored_decisions(folder: Path) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """Event id -> (type, version, data) of the versioned decisions in the stored events table."""
    con = duckdb.connect(str(folder / "var" / "fin_agent.duckdb"), read_only=True)
    try:
        rows = con.execute('SELECT "event_id", "type", "version", "data" FROM "events"').fetchall()
    finally:
        con.close()
    return {
        str(event_id): (str(kind), int(version), json.loads(str(data)))
        for event_id, kind, version, data in rows
        if kind in VERSIONED
    }


def store_as_main_did(folder: Path) -> int:
    """Rewrite the stored decisions as main wrote them before strategy versions: v1, with
    `config_version` and without `strategy_version`; returns how many were rewritten."""
    decisions = stored_decisions(folder)
    con = duckdb.connect(str(folder / "var" / "fin_agent.duckdb"))
    try:
        for event_id, (_, _, data) in decisions.items():
            del data["strategy_version"]
            con.execute(
                'UPDATE "events" SET "version" = 1, "data" = ? WHERE "event_id" = ?',
                [json.dumps(data, separators=(",", ":")), event_id],
            )
    finally:
        con.close()
    return len(decisions)


def test_the_recorded_decisions_carry_both_versions_of_the_config(recorded: Recorded) -> None:
    settings = recorded.settings

    decisions = stored_decisions(recorded.folder)

    assert {kind for kind, _, _ in decisions.values()} == VERSIONED
    for kind, version, data in decisions.values():
        assert version == 2, kind
        assert data["config_version"] == config_version(settings), kind
        assert data["strategy_version"] == strategy_version(settings), kind


def test_replay_with_only_http_port_changed_reports_every_decision_identical(
    stored: Path, recorded: Recorded
) -> None:
    edited = write_config(stored, http={"port": 18080})
    assert config_version(load_settings(edited)) != config_version(recorded.settings)

    code, out = replay(edited)

    assert code == 0, out
    assert out.startswith(f"{DAY}: all "), out
    assert out.endswith(" recorded decisions made again, identical\n"), out
    assert int(out.split()[2]) > len(VERSIONED)


def expected_gap_edit(folder: Path, *, scan_fields: str) -> dict[str, str]:
    """Event id -> the detail `replay --json` gives each versioned decision of the stored day
    after `scan.gap_min_pct: 4.01`: every one under another strategy version, and the scan's
    rejections quote the new threshold (no candidate gaps between 4 and 4.01 %)."""
    versions_only = "strategy_version"
    return {
        event_id: f"fields differ: {scan_fields if kind == ScanCompleted.TYPE else versions_only}"
        for event_id, (kind, _, _) in stored_decisions(folder).items()
    }


def test_replay_with_scan_gap_min_pct_changed_reports_the_decisions_it_made(
    stored: Path,
) -> None:
    edited = write_config(stored, scan={"gap_min_pct": 4.01})

    code, out = replay(edited, "--json")

    report = json.loads(out)
    assert code == 1
    assert report["unversioned"] == 0
    assert {d["kind"] for d in report["differences"]} == {"changed"}
    assert {d["id"]: d["detail"] for d in report["differences"]} == expected_gap_edit(
        stored, scan_fields="result, strategy_version"
    )


def test_replay_names_the_decision_a_stricter_scan_no_longer_makes(stored: Path) -> None:
    edited = write_config(stored, scan={"top_n": 1})

    code, out = replay(edited, "--json")

    report = json.loads(out)
    kinds = {(d["kind"], d["type"]) for d in report["differences"]}
    assert code == 1
    assert ("changed", ScanCompleted.TYPE) in kinds
    assert ("missing", PlanCreated.TYPE) in kinds


def test_a_day_stored_before_strategy_versions_is_audited_with_its_recorded_config(
    stored: Path, recorded: Recorded
) -> None:
    ConfigHistory(stored / "var" / "config").record(recorded.settings)  # as `fin-agent run` does
    assert store_as_main_did(stored) > 0

    same_code, same_out = replay(write_config(stored, http={"port": 18080}))
    edited_code, edited_out = replay(write_config(stored, scan={"gap_min_pct": 4.01}), "--json")

    assert same_code == 0, same_out
    assert same_out.endswith(" recorded decisions made again, identical\n"), same_out  # no note
    assert edited_code == 1
    assert {d["id"]: d["detail"] for d in json.loads(edited_out)["differences"]} == (
        expected_gap_edit(stored, scan_fields="result, strategy_version")
    )


def test_a_day_stored_before_strategy_versions_without_its_config_is_compared_on_decisions(
    stored: Path,
) -> None:
    rewritten = store_as_main_did(stored)
    assert not (stored / "var" / "config").exists()
    note = (
        f"  note: {rewritten} decisions were recorded before strategy versions and their "
        "config is not under data_dir/config: compared on what they decided only\n"
    )

    same_code, same_out = replay(write_config(stored, http={"port": 18080}))
    edited_code, edited_out = replay(write_config(stored, scan={"gap_min_pct": 4.01}), "--json")

    assert same_code == 0, same_out
    assert same_out.endswith(f" recorded decisions made again, identical\n{note}"), same_out
    edited = json.loads(edited_out)
    assert edited_code == 1
    assert edited["unversioned"] == rewritten
    assert [(d["type"], d["detail"]) for d in edited["differences"]] == [
        (ScanCompleted.TYPE, "fields differ: result")
    ]


def store_as_v3_did(folder: Path) -> None:
    """Rewrite the stored day as stores held it before scan records: its `scan.snapshot_taken`
    a v3 event carrying the snapshot as columns, and no scan record."""
    path = folder / "var" / "fin_agent.duckdb"
    codec = EventCodec(default_registry())

    async def snapshot_event() -> SnapshotTaken:
        store = DuckDBStore(path, codec)
        try:
            [taken] = await store.events(day=DAY, types=[SnapshotTaken.TYPE])
            assert isinstance(taken, SnapshotTaken)
            return taken.with_snapshot(await snapshot_of(store.scan_records(), taken))
        finally:
            await store.close()

    taken = asyncio.run(snapshot_event())
    data = codec.encode(taken, trace="")["data"]
    v3 = {"trading_day": DAY.isoformat(), "snapshot": json.loads(data)["snapshot"]}
    con = duckdb.connect(str(path))
    try:
        con.execute(
            'UPDATE "events" SET "version" = 3, "data" = ? WHERE "event_id" = ?',
            [json.dumps(v3, separators=(",", ":")), taken.id],
        )
        for table in ("scan_records", "scan_inputs", "scan_bars"):
            con.execute(f'DELETE FROM "{table}"')  # noqa: S608 - the three names above
    finally:
        con.close()


def test_a_day_stored_with_a_v3_snapshot_and_no_scan_record_audits_identical(
    stored: Path,
) -> None:
    store_as_v3_did(stored)

    code, out = replay(write_config(stored, http={"port": 18080}))

    assert code == 0, out
    assert out.endswith(" recorded decisions made again, identical\n"), out


def test_a_day_whose_scan_record_is_gone_is_refused_naming_the_fix(stored: Path) -> None:
    con = duckdb.connect(str(stored / "var" / "fin_agent.duckdb"))
    try:
        con.execute('DELETE FROM "scan_inputs"')
        con.execute('DELETE FROM "scan_records"')
    finally:
        con.close()
    err = io.StringIO()

    code = main(
        ["--config", str(write_config(stored)), "replay", "--day", DAY.isoformat()],
        out=io.StringIO(),
        err=err,
    )

    assert code != 0
    assert "scan record 'gap_and_go:2025-03-12' of 2025-03-12 is missing" in err.getvalue()
    assert "restore them from the same backup" in err.getvalue()
