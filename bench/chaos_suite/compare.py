"""A fault run's store against the uninterrupted reference: table by table, by key.

Each table is read whole from both databases. A row is *lost* when its key is in the reference
and not in the run, *duplicated* when its key appears more than once in the run or is not in the
reference at all (an extra order is as wrong as a second copy), *changed* when the key matches but
a compared column differs. Keys are the stores' own unique keys, minus `occurred_at` for the
events log (so one event stored at two times counts as duplicated).

Columns left out, and why: none of the trading tables carries a wall-clock column (every time is
the simulated clock's, and every event id is deterministic). Only `config_version` differs between
two uninterrupted runs of the same days and seed: it hashes the whole config, and the runs are
configured with different databases and data folders. So the `config_version` column of every
table, and the `config_version` field inside `events.data`, are not compared (`strategy_version`,
which hashes the rules that decide trades, is). Everything else is, `events.trace` included.
Diagnostics are not differences: `error.raised` events and the `errors` table are what a fault is
*expected* to add (they are reported as the loud signal instead), and `schema_migrations`
(applied_at is wall clock), `daily_bars` and `daily_bar_coverage` (caches) are not compared.
The scan records (`scan_records`, `scan_inputs`, `scan_bars`: the inputs a
`scan.snapshot_taken` refers to) are.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

DIAGNOSTIC_TYPES = frozenset({"error.raised"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TableSpec:
    """One compared table: its key columns and the columns it is compared without."""

    name: str
    key: tuple[str, ...]
    ignored: frozenset[str] = frozenset({"config_version"})


TABLES: tuple[TableSpec, ...] = (
    TableSpec(name="events", key=("event_id",)),
    TableSpec(name="scan_candidates", key=("event_id", "symbol")),
    TableSpec(name="scan_rejections", key=("event_id", "symbol")),
    TableSpec(name="plans", key=("event_id",)),
    TableSpec(name="plan_states", key=("event_id",)),
    TableSpec(name="orders", key=("event_id",)),
    TableSpec(name="fills", key=("event_id",)),
    TableSpec(name="trades", key=("event_id",)),
    TableSpec(name="daily_reports", key=("event_id",)),
    TableSpec(name="risk_states", key=("event_id",)),
    TableSpec(name="bars_1m", key=("symbol", "start")),
    TableSpec(name="scan_records", key=("record",)),
    TableSpec(name="scan_inputs", key=("record", "position")),
    TableSpec(name="scan_bars", key=("symbol", "session", "seq")),
)
IGNORED = "config_version (every table's column and the field in events.data)"

Row = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class TableDiff:
    """How one table of the run differs from the reference."""

    table: str
    reference_rows: int
    run_rows: int
    lost: int
    duplicated: int
    changed: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreDiff:
    """Every compared table, with totals."""

    tables: tuple[TableDiff, ...]
    errors: tuple[str, ...] = field(default=())

    @property
    def lost(self) -> int:
        """Rows lost over all tables."""
        return sum(t.lost for t in self.tables)

    @property
    def duplicated(self) -> int:
        """Rows duplicated (or extra) over all tables."""
        return sum(t.duplicated for t in self.tables)

    @property
    def changed(self) -> int:
        """Rows changed over all tables."""
        return sum(t.changed for t in self.tables)

    @property
    def equal(self) -> bool:
        """True when the run's store equals the reference's."""
        return self.lost == self.duplicated == self.changed == 0

    def per_table(self) -> dict[str, dict[str, int]]:
        """The tables that differ: {table: {lost, duplicated, changed, reference}}."""
        return {
            t.table: {
                "lost": t.lost,
                "duplicated": t.duplicated,
                "changed": t.changed,
                "reference": t.reference_rows,
            }
            for t in self.tables
            if t.lost or t.duplicated or t.changed
        }


def _normal(value: Any) -> Any:
    """Values compared by meaning: jsonb text parsed, so key order or spacing never counts."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, dict):
            parsed.pop("config_version", None)
        return parsed
    return value


def _keyed(rows: Sequence[Row], spec: TableSpec) -> tuple[dict[tuple[Any, ...], Row], Counter[Any]]:
    counts: Counter[Any] = Counter()
    keyed: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[k] for k in spec.key)
        counts[key] += 1
        keyed.setdefault(key, row)
    return keyed, counts


def _example(what: str, key: tuple[Any, ...], rows: Mapping[tuple[Any, ...], Row]) -> str:
    row = rows[key]
    kind = row.get("type") or row.get("state") or row.get("kind") or ""
    return f"{what} {'/'.join(str(k) for k in key)} {row.get('trading_day', '')} {kind}".strip()


def diff_table(spec: TableSpec, reference: Sequence[Row], run: Sequence[Row]) -> TableDiff:
    """Lost, duplicated and changed rows of `run` against `reference` (diagnostics left out)."""
    if spec.name == "events":
        reference = [r for r in reference if r["type"] not in DIAGNOSTIC_TYPES]
        run = [r for r in run if r["type"] not in DIAGNOSTIC_TYPES]
    ref_rows, _ = _keyed(reference, spec)
    run_rows, run_counts = _keyed(run, spec)
    lost = [k for k in ref_rows if k not in run_rows]
    extra = [k for k in run_rows if k not in ref_rows]
    repeated = sum(n - 1 for n in run_counts.values() if n > 1)
    changed = []
    for key, ref in ref_rows.items():
        got = run_rows.get(key)
        if got is None:
            continue
        columns = [c for c in ref if c not in spec.ignored]
        if any(_normal(ref[c]) != _normal(got.get(c)) for c in columns):
            changed.append(key)
    examples = [_example("lost", k, ref_rows) for k in lost[:3]]
    examples += [_example("extra", k, run_rows) for k in extra[:3]]
    examples += [_example("changed", k, run_rows) for k in changed[:3]]
    return TableDiff(
        table=spec.name,
        reference_rows=len(reference),
        run_rows=len(run),
        lost=len(lost),
        duplicated=len(extra) + repeated,
        changed=len(changed),
        examples=tuple(str(e) for e in examples),
    )


def diff_stores(
    reference: Mapping[str, Sequence[Row]], run: Mapping[str, Sequence[Row]]
) -> StoreDiff:
    """Every table of TABLES compared."""
    return StoreDiff(
        tables=tuple(diff_table(s, reference.get(s.name, ()), run.get(s.name, ())) for s in TABLES)
    )


async def read_store(dsn: str) -> dict[str, list[Row]]:
    """Every compared table of the database at `dsn`, as rows (a missing table reads empty),
    and the `errors` table (the diagnostics)."""
    con = await asyncpg.connect(dsn, timeout=10)
    try:
        tables: dict[str, list[Row]] = {}
        for name in [s.name for s in TABLES] + ["errors"]:
            exists = await con.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
            rows = await con.fetch(f'SELECT * FROM "{name}"') if exists else []  # noqa: S608
            tables[name] = [dict(r) for r in rows]
        return tables
    finally:
        await con.close()
