"""Benchmark of the store adapters' writes against bare bulk inserts of the same rows, side by side.

The stream is realistic: the real app runs a few sessions on the seeded simulator (the in-memory
bus) and what it publishes (mostly `market.bars_closed` with a few bars each, plus each day's
snapshot, scan, signals, plans, orders, fills, trades and report) is copied week after week with
new ids and shifted times, so every event and every bar is unique. The coordinator's batches of
500 events are cut from it in order.

Six sides get the same batches, round after round (each round a fresh chunk of the stream), in an
order that alternates (ABBA within each store, and the order of the stores reversed every other
pair of rounds):

- `timescale`: `TimescaleStore.write(events)` into a throwaway schema on TimescaleDB (hypertables,
  compression policies, continuous aggregates): projection and codec, COPY, one transaction a
  batch (the checked path, staging and `ON CONFLICT DO NOTHING`, for a batch with stored events).
- its reference: a bare asyncpg connection doing `copy_records_to_table` of the batch's projected
  rows (projected beforehand, outside the timing) straight into the same tables of another
  throwaway schema made by the same migration (the same hypertables, types and indexes), one
  transaction a batch.
- `postgres` and its reference: the same on plain PostgreSQL (plain tables).
- `duckdb`: `DuckDBStore.write(events)` into a file in a temp folder.
- its reference: a bare DuckDB connection on another file made by the same migration: per table
  the projected rows become an Arrow table typed as the adapter types them (timed: rows arrive as
  Python values, so any writer pays that) and go in by `INSERT INTO t SELECT * FROM arrow_table`,
  one transaction a batch.

Rows count every row inserted: the `events` row of each event plus its projection rows. The first
measured round is the dedupe phase: each adapter batch is written a second time right after the
first (untimed; it must report 0 new), then windows straddling two written batches are redelivered
(untimed). At the end each adapter store must hold every written event exactly once and exactly
the projected rows of every table: `lost` and `duplicated` count the rows that differ. Exits 1
unless both are 0 and every first write reported all its events new.

Run: `.venv/bin/python bench/store.py [--seconds N] [--timescale-dsn URL] [--postgres-dsn URL]
[--profile] > results.jsonl`. TimescaleDB comes from `--timescale-dsn` (default
$FIN_AGENT_TEST_TIMESCALE, else postgresql://postgres@127.0.0.1:5433/postgres: start it with
`../shared/tools/timescaledb start`), plain PostgreSQL from `--postgres-dsn` (default
$FIN_AGENT_TEST_POSTGRES, else postgresql://postgres@127.0.0.1:5432/test); every schema is dropped
at the end. A `timescale` DSN that is no TimescaleDB is an error, not a quiet plain-table run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import io
import itertools
import os
import platform
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import duckdb
import pyarrow as pa
from _common import emit, note, quiet_logs

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.duckdb_store import ARROW_TYPES, DuckDBStore
from fin_agent.adapters.storage.rows import TABLES, Projector, RowValues
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_sessions
from fin_agent.domain.events import BarsClosed, DomainEvent

BENCH = "store"
UNIT = "rows/s"
STORES = ("timescale", "postgres", "duckdb")
REFERENCE_NAMES = {
    "timescale": "bare asyncpg copy_records_to_table into the same hypertables",
    "postgres": "bare asyncpg copy_records_to_table into the same plain tables",
    "duckdb": "bare DuckDB Arrow insert",
}
BACKENDS = {"timescale": "timescaledb", "postgres": "postgresql"}
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DSNS = {
    "timescale": os.environ.get(
        "FIN_AGENT_TEST_TIMESCALE", "postgresql://postgres@127.0.0.1:5433/postgres"
    ),
    "postgres": os.environ.get(
        "FIN_AGENT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    ),
}
DEFAULT_SECONDS = 30.0
MIN_SECONDS, MAX_SECONDS = 4.0, 60.0
BASE_DAYS = (date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12))
"""Simulated sessions, all in one week: copies shifted by whole weeks never overlap."""
BATCH_EVENTS = 500  # the coordinator's largest batch
ROUND_BATCHES = 6  # a round's chunk of the stream, written by every side
WARMUP_BATCHES = 1
TARGET_RATIO = 0.5
TARGET_ROWS_PER_S = 50_000.0


# -- the stream ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """One coordinator batch: its events and the rows they project to (for the references)."""

    events: tuple[DomainEvent, ...]
    tables: dict[str, list[RowValues]]

    @property
    def rows(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


async def simulate(days: Sequence[date]) -> list[DomainEvent]:
    """What the real app publishes over `days` on the seeded simulator (config.yaml)."""
    settings = load_settings(REPO / "config.yaml")
    container = await build_simulation(settings, bus="memory", store="memory")
    async with running(container):
        sessions = [container.calendar.session(day) for day in days]
        await run_sessions(container, [s for s in sessions if s is not None], Decimal(100_000))
    published = getattr(container.bus, "published", None)
    if not isinstance(published, list):
        raise RuntimeError("the in-memory bus no longer keeps what it published")
    return list(published)


class Stream:
    """Week-shifted copies of the simulated events, cut into projected batches."""

    def __init__(self, base: Sequence[DomainEvent], projector: Projector) -> None:
        self._base = base
        self._projector = projector
        self._events = self._copies()
        self.batches = 0
        self.projected_rows = 0
        self.projection_secs = 0.0

    def _copies(self) -> Iterator[DomainEvent]:
        for copy in itertools.count(1):
            shift = timedelta(weeks=copy)
            for event in self._base:
                yield _shifted(event, shift, copy)

    def take(self, count: int) -> list[Batch]:
        """The next `count` batches, projected (the projection timed apart, for the report)."""
        out = []
        for _ in range(count):
            events = tuple(itertools.islice(self._events, BATCH_EVENTS))
            started = time.perf_counter()
            batch = Batch(events, self._projector.rows(events))
            self.projection_secs += time.perf_counter() - started
            self.projected_rows += batch.rows
            out.append(batch)
        self.batches += count
        return out


def _shifted(event: DomainEvent, shift: timedelta, copy: int) -> DomainEvent:
    """`event` `shift` later (its time, day and bars) with a new deterministic id."""
    changes: dict[str, Any] = {}
    if isinstance(event, BarsClosed):
        changes["bars"] = tuple(dataclasses.replace(b, start=b.start + shift) for b in event.bars)
    return dataclasses.replace(
        event,
        id=type(event).id_for(f"bench-store:{copy}:{event.id}"),
        occurred_at=event.occurred_at + shift,
        trading_day=event.trading_day + shift,
        **changes,
    )


# -- the sides ----------------------------------------------------------------------------------


class Side(Protocol):
    """One contender: writes a batch, returns how many of its events it reports as new."""

    name: str

    async def write(self, batch: Batch) -> int: ...


class AdapterSide:
    """A store adapter's `write`, timed with everything it does for a batch."""

    def __init__(self, name: str, store: TimescaleStore | DuckDBStore) -> None:
        self.name = name
        self.store = store

    async def write(self, batch: Batch) -> int:
        return await self.store.write(batch.events)


class PgCopySide:
    """The reference: one transaction a batch, `copy_records_to_table` per table."""

    def __init__(self, name: str, con: asyncpg.Connection[asyncpg.Record], schema: str) -> None:
        self.name = name
        self._con = con
        self.schema = schema

    async def write(self, batch: Batch) -> int:
        async with self._con.transaction():
            for name, rows in batch.tables.items():
                await self._con.copy_records_to_table(
                    name, records=rows, columns=TABLES[name].names, schema_name=self.schema
                )
        return len(batch.events)


class DuckArrowSide:
    """The reference: one transaction a batch; per table an Arrow table, `INSERT ... SELECT *`."""

    name = "duckdb_reference"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._schemas = {
            name: pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in table.columns])
            for name, table in TABLES.items()
        }

    async def write(self, batch: Batch) -> int:
        con = self._con
        con.begin()
        try:
            for name, rows in batch.tables.items():
                schema = self._schemas[name]
                columns = zip(*rows, strict=True)
                arrays = [pa.array(v, type=f.type) for v, f in zip(columns, schema, strict=True)]
                con.register("arrow_table", pa.Table.from_arrays(arrays, schema=schema))
                try:
                    con.execute(f'INSERT INTO "{name}" SELECT * FROM arrow_table')  # noqa: S608
                finally:
                    con.unregister("arrow_table")
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return len(batch.events)


# -- the run ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """A side's timed work."""

    rows: int = 0
    events: int = 0
    batches: int = 0
    secs: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.secs if self.secs > 0 else float("nan")


@dataclass(slots=True)
class Checks:
    """What every store must hold, and what the adapters' writes reported."""

    written_ids: set[str] = field(default_factory=set)
    expected_rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    first_write_mismatches: dict[str, int] = field(default_factory=dict)
    rewrite_new: dict[str, int] = field(default_factory=dict)
    rewrites: int = 0

    def add(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            self.written_ids.update(e.id for e in batch.events)
            for name, rows in batch.tables.items():
                self.expected_rows[name] += len(rows)


@dataclass(slots=True)
class Run:
    """The two (adapter, reference) pairs, their tallies and the checks."""

    pairs: tuple[tuple[AdapterSide, Side], ...]
    profiles: dict[str, cProfile.Profile] | None
    checks: Checks = field(default_factory=Checks)
    tallies: dict[str, Tally] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tallies = {side.name: Tally() for pair in self.pairs for side in pair}

    async def write(self, side: Side, batches: Sequence[Batch], *, timed: bool) -> None:
        """First writes of `batches`, timed (and profiled when asked) unless warming up."""
        tally = self.tallies[side.name]
        profile = self.profiles.get(side.name) if self.profiles is not None and timed else None
        for batch in batches:
            if profile is not None:
                profile.enable()
            started = time.perf_counter()
            new = await side.write(batch)
            elapsed = time.perf_counter() - started
            if profile is not None:
                profile.disable()
            if new != len(batch.events):
                if not isinstance(side, AdapterSide):
                    raise RuntimeError(f"{side.name} wrote {new} of {len(batch.events)} events")
                mismatches = self.checks.first_write_mismatches
                mismatches[side.name] = mismatches.get(side.name, 0) + 1
            if timed:
                tally.secs += elapsed
                tally.rows += batch.rows
                tally.events += len(batch.events)
                tally.batches += 1

    async def rewrite(self, side: AdapterSide, again: Sequence[Sequence[DomainEvent]]) -> None:
        """Redeliver events already written (untimed): none of them may be reported new."""
        for events in again:
            new = await side.store.write(events)
            self.checks.rewrites += 1
            self.checks.rewrite_new[side.name] = self.checks.rewrite_new.get(side.name, 0) + new

    async def round(self, batches: Sequence[Batch], number: int) -> None:
        """Every side writes `batches`; round 0 is the dedupe phase."""
        pairs = self.pairs if number % 4 < 2 else self.pairs[::-1]
        for pair in pairs:
            for side in pair if number % 2 == 0 else pair[::-1]:
                if number == 0 and isinstance(side, AdapterSide):
                    for batch in batches:  # each batch twice in a row, the second untimed
                        await self.write(side, [batch], timed=True)
                        await self.rewrite(side, [batch.events])
                    half = BATCH_EVENTS // 2  # then windows straddling two written batches
                    await self.rewrite(
                        side,
                        [
                            (*a.events[half:], *b.events[:half])
                            for a, b in itertools.pairwise(batches)
                        ],
                    )
                else:
                    await self.write(side, batches, timed=True)

    async def rounds(self, stream: Stream, seconds: float) -> int:
        """Rounds in pairs (each order as often) while another pair fits in `seconds` of timed
        writes in all (at least one pair)."""
        number, measured = 0, 0.0
        while True:
            for _ in range(2):
                batches = stream.take(ROUND_BATCHES)
                self.checks.add(batches)
                gc.collect()
                gc.freeze()  # the stream held here is not the writers' garbage to scan
                await self.round(batches, number)
                number += 1
            before, measured = measured, sum(t.secs for t in self.tallies.values())
            note(
                f"round {number}: {measured:.1f} s measured; "
                + ", ".join(f"{n} {t.rate:,.0f}" for n, t in self.tallies.items())
                + " rows/s"
            )
            if measured + (measured - before) > seconds:  # the next pair would overrun
                return number


@dataclass(frozen=True, slots=True)
class Counted:
    """What a store holds: rows per table and the distinct event ids."""

    rows: dict[str, int]
    ids: set[str]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Rows lost and duplicated in one adapter store, with the detail."""

    lost: int
    duplicated: int
    detail: dict[str, Any]


def verdict(store: str, held: Counted, checks: Checks) -> Verdict:
    """Events by id, projection tables by count, and what the re-writes reported as new."""
    lost = len(checks.written_ids - held.ids)
    duplicated = held.rows["events"] - len(held.ids) + len(held.ids - checks.written_ids)
    differences: dict[str, int] = {}
    for name, expected in checks.expected_rows.items():
        if name == "events":
            continue
        diff = held.rows[name] - expected
        if diff:
            differences[name] = diff
        lost += max(0, -diff)
        duplicated += max(0, diff)
    rewrite_new = checks.rewrite_new.get(store, 0)
    return Verdict(
        lost=lost,
        duplicated=duplicated + rewrite_new,
        detail={
            "written_events": len(checks.written_ids),
            "events_rows": held.rows["events"],
            "distinct_event_ids": len(held.ids),
            "rows": sum(held.rows.values()),
            "projection_row_differences": differences,
            "rewrites_reported_new": rewrite_new,
            "first_writes_not_all_new": checks.first_write_mismatches.get(store, 0),
        },
    )


async def pg_counted(dsn: str, schema: str) -> Counted:
    con = await asyncpg.connect(dsn)
    try:
        rows = {
            name: int(await con.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"'))  # noqa: S608
            for name in TABLES
        }
        found = await con.fetch(f'SELECT DISTINCT event_id FROM "{schema}".events')  # noqa: S608
    finally:
        await con.close()
    return Counted(rows, {str(r[0]) for r in found})


def duck_counted(path: Path) -> Counted:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = {}
        for name in TABLES:
            found = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608
            rows[name] = int(found[0]) if found else 0
        ids = {str(r[0]) for r in con.execute("SELECT DISTINCT event_id FROM events").fetchall()}
    finally:
        con.close()
    return Counted(rows, ids)


@dataclass(slots=True)
class Outcome:
    """Everything the report needs."""

    run: Run
    stream: Stream
    rounds: int
    verdicts: dict[str, Verdict]
    facts: dict[str, Any]


@contextlib.asynccontextmanager
async def pg_sides(
    store: str, dsn: str, codec: EventCodec, tag: str, facts: dict[str, Any]
) -> AsyncIterator[tuple[AdapterSide, PgCopySide, str]]:
    """`store`'s TimescaleStore in one throwaway schema (named third), the bare COPY into another
    made by the same migration; both dropped after. Refuses a server of the wrong kind."""
    adapter = await TimescaleStore.connect(dsn, codec, schema=f"bench_{store}_{tag}")
    maker = await TimescaleStore.connect(dsn, codec, schema=f"bench_{store}_ref_{tag}")
    con: asyncpg.Connection[asyncpg.Record] | None = None
    try:
        info = await adapter.migrate()
        await maker.migrate()
        if info.backend != BACKENDS[store]:
            raise RuntimeError(
                f"--{store}-dsn {dsn} is {info.backend} ({info.detail}), not {BACKENDS[store]}"
                + (": run ../shared/tools/timescaledb start" if store == "timescale" else "")
            )
        con = await asyncpg.connect(dsn)
        facts[f"{store}_server"] = str(await con.fetchval("SHOW server_version"))
        facts[f"{store}_backend"] = info.backend
        facts[f"{store}_detail"] = info.detail
        note(f"{store}: PostgreSQL {facts[f'{store}_server']}, {info.backend} ({info.detail})")
        yield (
            AdapterSide(store, adapter),
            PgCopySide(f"{store}_reference", con, maker.schema),
            adapter.schema,
        )
    finally:
        if con is not None:
            await con.close()
        for each in (adapter, maker):
            try:
                await each.drop_schema()
            finally:
                await each.close()


async def measure(
    seconds: float, dsns: dict[str, str], profiles: dict[str, cProfile.Profile] | None
) -> Outcome:
    codec = EventCodec(default_registry())
    started = time.perf_counter()
    base = await simulate(BASE_DAYS)
    bars = sum(len(e.bars) for e in base if isinstance(e, BarsClosed))
    note(
        f"simulated {len(BASE_DAYS)} sessions in {time.perf_counter() - started:.1f} s: "
        f"{len(base)} events, {bars} bars"
    )
    stream = Stream(base, Projector(codec))
    facts: dict[str, Any] = {}
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="fin-bench-store-") as folder:
        duck_path, ref_path = Path(folder) / "store.duckdb", Path(folder) / "reference.duckdb"
        maker = DuckDBStore(ref_path, codec)
        await maker.migrate()
        await maker.close()
        duck = DuckDBStore(duck_path, codec)
        ref_con = duckdb.connect(str(ref_path))
        try:
            facts["duckdb_file"] = (await duck.migrate()).detail
            async with (
                pg_sides("timescale", dsns["timescale"], codec, tag, facts) as timescale,
                pg_sides("postgres", dsns["postgres"], codec, tag, facts) as postgres,
            ):
                run = Run(
                    pairs=(
                        timescale[:2],
                        postgres[:2],
                        (AdapterSide("duckdb", duck), DuckArrowSide(ref_con)),
                    ),
                    profiles=profiles,
                )
                warmup = stream.take(WARMUP_BATCHES)
                run.checks.add(warmup)
                for side in (s for pair in run.pairs for s in pair):
                    await run.write(side, warmup, timed=False)
                try:
                    rounds = await run.rounds(stream, seconds)
                finally:
                    gc.unfreeze()
                held = {}
                references = {}
                for store, (_, reference, schema) in (
                    ("timescale", timescale),
                    ("postgres", postgres),
                ):
                    held[store] = await pg_counted(dsns[store], schema)
                    references[store] = await pg_counted(dsns[store], reference.schema)
        finally:
            await duck.close()
            ref_con.close()
        held["duckdb"] = duck_counted(duck_path)
        duck_reference = duck_counted(ref_path)
    for name, counted in (*references.items(), ("duckdb", duck_reference)):
        if counted.rows != run.checks.expected_rows:
            raise RuntimeError(
                f"the {name} reference holds {counted.rows}, not {run.checks.expected_rows}"
            )
    verdicts = {store: verdict(store, held[store], run.checks) for store in STORES}
    return Outcome(run=run, stream=stream, rounds=rounds, verdicts=verdicts, facts=facts)


def report(outcome: Outcome, seconds: float) -> None:
    tallies = outcome.run.tallies
    for store in STORES:
        mine, ref = tallies[store], tallies[f"{store}_reference"]
        ratio = mine.rate / ref.rate
        met = ratio >= TARGET_RATIO and mine.rate >= TARGET_ROWS_PER_S
        emit(
            BENCH,
            f"{store}_rows_per_s",
            mine.rate,
            UNIT,
            reference=ref.rate,
            reference_name=REFERENCE_NAMES[store],
            ratio=round(ratio, 3),
            target=f">= {TARGET_RATIO:.0%} of the reference and >= {TARGET_ROWS_PER_S:.0f} {UNIT}",
            target_met=met,
            rows=mine.rows,
            events=mine.events,
            batches=mine.batches,
            secs=round(mine.secs, 3),
            reference_secs=round(ref.secs, 3),
        )
        verdict = outcome.verdicts[store]
        note(
            f"{store}: {mine.rate:,.0f} rows/s, reference {ref.rate:,.0f} rows/s ({ratio:.0%}): "
            f"target {'met' if met else 'MISSED'}; lost {verdict.lost}, duplicated "
            f"{verdict.duplicated}"
        )
    for metric in ("lost", "duplicated"):
        by_store = {store: getattr(v, metric) for store, v in outcome.verdicts.items()}
        emit(
            BENCH,
            metric,
            sum(by_store.values()),
            "rows",
            reference=None,
            reference_name=None,
            by_store=by_store,
        )
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = None
    stream = outcome.stream
    emit(
        BENCH,
        "environment",
        None,
        None,
        reference=None,
        reference_name=None,
        cpu_count=os.cpu_count(),
        cpus_usable=usable,
        load_avg_1m=round(os.getloadavg()[0], 2),
        python=platform.python_version(),
        platform=platform.platform(),
        **outcome.facts,
        duckdb=duckdb.__version__,
        asyncpg=asyncpg.__version__,
        pyarrow=pa.__version__,
        measuring_secs=seconds,
        rounds=outcome.rounds,
        batch_events=BATCH_EVENTS,
        rows_per_batch=round(stream.projected_rows / stream.batches, 1),
        projection_rows_per_s=round(stream.projected_rows / stream.projection_secs),
        dedupe_rewrites=outcome.run.checks.rewrites,
        checks={store: v.detail for store, v in outcome.verdicts.items()},
        date=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Store adapters' writes against bare inserts.")
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"timed writes in total over the four sides (default {DEFAULT_SECONDS:g}, "
        f"{MIN_SECONDS:g} to {MAX_SECONDS:g}); simulation, projection and checks come on top",
    )
    for store, dsn in DEFAULT_DSNS.items():
        parser.add_argument(
            f"--{store}-dsn",
            default=dsn,
            help=f"{'TimescaleDB' if store == 'timescale' else 'plain PostgreSQL'} (default {dsn})",
        )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the adapters' timed writes and print the top functions on stderr (it "
        "slows them: the rates are then not comparable; DuckDB's own work runs in a worker "
        "thread, so it shows as the event loop's wait)",
    )
    args = parser.parse_args()
    if not MIN_SECONDS <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g}")
    return args


def main() -> int:
    args = parse_args()
    quiet_logs()
    profiles = {store: cProfile.Profile() for store in STORES} if args.profile else None
    dsns = {"timescale": args.timescale_dsn, "postgres": args.postgres_dsn}
    outcome = asyncio.run(measure(args.seconds, dsns, profiles))
    report(outcome, args.seconds)
    for store, profile in (profiles or {}).items():
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
        note(
            f"\n== cProfile of the {store} adapter's timed writes, by tottime ==\n{out.getvalue()}"
        )
    checks = outcome.run.checks
    failed = any(v.lost or v.duplicated for v in outcome.verdicts.values())
    return 1 if failed or any(checks.first_write_mismatches.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
