"""Benchmark of the store adapters' writes against bare bulk inserts of the same rows, side by side.

The stream is realistic: the real app runs a few sessions on the seeded simulator (the in-memory
bus) and its published events (mostly `market.bars_closed` with 5 bars each, plus the day's scan,
plans, orders, fills, trades and report) are copied week after week with new ids and shifted times,
so every event and every bar is unique. The coordinator's batches of 500 events are cut from it.

Four sides get the same batches, round after round (each round a fresh chunk of the stream), in an
order that alternates each round (ABBA within each store, and which store goes first):

- `timescale`: `TimescaleStore.write(events)` (projection, codec, COPY into a staging table,
  `INSERT ... ON CONFLICT DO NOTHING`, one transaction a batch) into a throwaway schema.
- reference: a bare asyncpg connection doing `copy_records_to_table` of the batch's projected rows
  (computed beforehand, outside the timing) straight into the same tables (another throwaway
  schema made by the same migration: same types and indexes), one transaction a batch.
- `duckdb`: `DuckDBStore.write(events)` into a file in a temp folder.
- reference: a bare DuckDB connection on another file made by the same migration: per table, the
  projected rows become an Arrow table (typed as the adapter types them; timed, as the adapter's
  must be too) and go in by `INSERT INTO t SELECT * FROM arrow_table`, one transaction a batch.

Rows count every row inserted: the `events` row of each event plus its projection rows. The first
measured round is the dedupe phase: every adapter batch is written a second time right after the
first (untimed; must report 0 new), and batches straddling two written ones are redelivered after
it. At the end each adapter store must hold every written event exactly once and exactly the
projected rows of each table: `lost` and `duplicated` count the differences (exit 1 unless both 0).

Run: `.venv/bin/python bench/store.py [--seconds N] [--dsn URL] [--profile] > results.jsonl`.
PostgreSQL comes from `--dsn` (default $FIN_AGENT_TEST_POSTGRES or
postgresql://postgres@127.0.0.1:5432/test); the schemas are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import io
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

from fin_agent.adapters.duckdb_store import ARROW_TYPES, DuckDBStore
from fin_agent.adapters.event_codec import EventCodec, default_registry
from fin_agent.adapters.store_rows import TABLES, Projector, RowValues
from fin_agent.adapters.timescale_store import TimescaleStore
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.runner import run_sessions
from fin_agent.app.settings import load_settings
from fin_agent.domain.events import BarsClosed, DomainEvent

BENCH = "store"
UNIT = "rows/s"
PG_REFERENCE = "bare asyncpg copy_records_to_table"
DUCK_REFERENCE = "bare DuckDB Arrow insert"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DSN = os.environ.get("FIN_AGENT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_SECONDS = 40.0
MIN_SECONDS, MAX_SECONDS = 4.0, 60.0
BASE_DAYS = (date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12))
"""Simulated sessions (one week: copies shifted by whole weeks never overlap)."""
BATCH_EVENTS = 500  # the coordinator's largest batch
ROUND_BATCHES = 6  # batches of a round's chunk, written by every side
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
    """What the real app publishes over `days` on the seeded simulator."""
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
    """Week-shifted copies of the simulated events, cut into batches of `BATCH_EVENTS`."""

    def __init__(self, base: Sequence[DomainEvent], projector: Projector) -> None:
        self._base = base
        self._projector = projector
        self._copies = self._events()
        self.batches = 0

    def _events(self) -> Iterator[DomainEvent]:
        copy = 0
        while True:
            copy += 1
            shift = timedelta(weeks=copy)
            for event in self._base:
                yield _shifted(event, shift, copy)

    def take(self, batches: int) -> list[Batch]:
        """The next `batches` batches, projected."""
        out = []
        for _ in range(batches):
            events = tuple(next(self._copies) for _ in range(BATCH_EVENTS))
            out.append(Batch(events, self._projector.rows(events)))
        self.batches += batches
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
    """One contender: writes a batch, returns how many events it reports as new."""

    name: str

    async def write(self, batch: Batch) -> int: ...


@dataclass(slots=True)
class Tally:
    """A side's timed work."""

    rows: int = 0
    events: int = 0
    secs: float = 0.0
    batches: int = 0

    @property
    def rate(self) -> float:
        return self.rows / self.secs if self.secs > 0 else float("nan")


class AdapterSide:
    """A store adapter's `write`, timed with everything it does for a batch."""

    def __init__(self, name: str, store: TimescaleStore | DuckDBStore) -> None:
        self.name = name
        self.store = store

    async def write(self, batch: Batch) -> int:
        return await self.store.write(batch.events)


class PgCopySide:
    """The reference: one transaction a batch, `copy_records_to_table` per table."""

    name = "timescale_reference"

    def __init__(self, con: asyncpg.Connection[asyncpg.Record], schema: str) -> None:
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
    """The reference: one transaction a batch, an Arrow table and `INSERT ... SELECT *` per table."""

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
                columns = list(zip(*rows, strict=True))
                arrow_table = pa.Table.from_arrays(
                    [pa.array(values, type=f.type) for values, f in zip(columns, schema, strict=True)],
                    schema=schema,
                )
                con.register("arrow_table", arrow_table)
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
class Checks:
    """What every adapter store must hold, and what the writes reported."""

    written_ids: set[str] = field(default_factory=set)
    expected_rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    first_write_mismatch: dict[str, int] = field(default_factory=dict)
    rewrite_new: dict[str, int] = field(default_factory=dict)
    rewrites: int = 0

    def add(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            self.written_ids.update(e.id for e in batch.events)
            for name, rows in batch.tables.items():
                self.expected_rows[name] += len(rows)


@dataclass(slots=True)
class Run:
    """The four sides and their tallies."""

    pairs: tuple[tuple[Side, Side], tuple[Side, Side]]
    tallies: dict[str, Tally]
    checks: Checks
    profiles: dict[str, cProfile.Profile] | None

    async def write_all(self, side: Side, batches: Sequence[Batch], *, timed: bool) -> None:
        tally = self.tallies[side.name]
        adapter = isinstance(side, AdapterSide)
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
                if not adapter:
                    raise RuntimeError(f"{side.name} wrote {new} of {len(batch.events)} events")
                self.checks.first_write_mismatch[side.name] = (
                    self.checks.first_write_mismatch.get(side.name, 0) + 1
                )
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

    async def round(self, batches: Sequence[Batch], number: int, *, dedupe: bool) -> None:
        pairs = list(self.pairs)
        if number % 4 >= 2:
            pairs.reverse()
        for pair in pairs:
            order = pair if number % 2 == 0 else pair[::-1]
            for side in order:
                if dedupe and isinstance(side, AdapterSide):
                    for batch in batches:  # each batch twice in a row, the second untimed
                        await self.write_all(side, [batch], timed=True)
                        await self.rewrite(side, [batch.events])
                    half = BATCH_EVENTS // 2  # then windows straddling two written batches
                    await self.rewrite(
                        side,
                        [
                            (*first.events[half:], *second.events[:half])
                            for first, second in zip(batches, batches[1:], strict=False)
                        ],
                    )
                else:
                    await self.write_all(side, batches, timed=True)


@contextlib.asynccontextmanager
async def timescale_pair(
    dsn: str, codec: EventCodec, tag: str
) -> AsyncIterator[tuple[AdapterSide, PgCopySide, dict[str, Any]]]:
    """The TimescaleStore in one throwaway schema, the bare COPY in another; both dropped after."""
    store = await TimescaleStore.connect(dsn, codec, schema=f"bench_store_{tag}")
    ref_store = await TimescaleStore.connect(dsn, codec, schema=f"bench_store_ref_{tag}")
    con: asyncpg.Connection[asyncpg.Record] | None = None
    try:
        info = await store.migrate()
        await ref_store.migrate()
        con = await asyncpg.connect(dsn)
        version = await con.fetchval("SHOW server_version")
        facts = {
            "postgres": str(version),
            "postgres_backend": info.backend,
            "postgres_detail": info.detail,
        }
        note(f"PostgreSQL {version}: {info.backend} ({info.detail})")
        yield AdapterSide("timescale", store), PgCopySide(con, ref_store.schema), facts
    finally:
        if con is not None:
            await con.close()
        for each in (store, ref_store):
            with contextlib.suppress(Exception):
                await each.drop_schema()
            await each.close()


async def pg_counts(dsn: str, schema: str) -> tuple[dict[str, int], set[str]]:
    """Rows of every table in `schema` and the distinct event ids."""
    con = await asyncpg.connect(dsn)
    try:
        counts = {
            name: int(await con.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"'))  # noqa: S608
            for name in TABLES
        }
        ids = {r[0] for r in await con.fetch(f'SELECT DISTINCT event_id FROM "{schema}".events')}  # noqa: S608
    finally:
        await con.close()
    return counts, ids


def duck_counts(path: Path) -> tuple[dict[str, int], set[str]]:
    """Rows of every table in the DuckDB file and the distinct event ids."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        counts = {}
        for name in TABLES:
            found = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608
            counts[name] = int(found[0]) if found else 0
        ids = {str(r[0]) for r in con.execute("SELECT DISTINCT event_id FROM events").fetchall()}
    finally:
        con.close()
    return counts, ids


def verdict(
    store: str, counts: dict[str, int], ids: set[str], checks: Checks
) -> tuple[int, int, dict[str, Any]]:
    """Lost and duplicated for one adapter store: events by id, projection tables by count."""
    lost = len(checks.written_ids - ids)
    duplicated = counts["events"] - len(ids) + len(ids - checks.written_ids)
    tables: dict[str, int] = {}
    for name, expected in checks.expected_rows.items():
        if name == "events":
            continue
        diff = counts[name] - expected
        if diff:
            tables[name] = diff
        lost += max(0, -diff)
        duplicated += max(0, diff)
    rewrite_new = checks.rewrite_new.get(store, 0)
    mismatch = checks.first_write_mismatch.get(store, 0)
    duplicated += rewrite_new
    detail = {
        "events_rows": counts["events"],
        "distinct_event_ids": len(ids),
        "written_events": len(checks.written_ids),
        "projection_row_differences": tables,
        "rewrite_reported_new": rewrite_new,
        "first_write_count_mismatches": mismatch,
    }
    return lost, duplicated, detail


async def measure(args: argparse.Namespace) -> int:
    codec = EventCodec(default_registry())
    projector = Projector(codec)
    started = time.perf_counter()
    base = await simulate(BASE_DAYS)
    stream = Stream(base, projector)
    per_day = len(base) / len(BASE_DAYS)
    bars = sum(len(e.bars) for e in base if isinstance(e, BarsClosed))
    note(
        f"simulated {len(BASE_DAYS)} sessions in {time.perf_counter() - started:.1f} s: "
        f"{len(base)} events ({per_day:.0f} a day, {bars} bars)"
    )
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    profiles = {"timescale": cProfile.Profile(), "duckdb": cProfile.Profile()}
    with tempfile.TemporaryDirectory(prefix="fin-bench-store-") as folder:
        duck_path, duck_ref_path = Path(folder) / "store.duckdb", Path(folder) / "ref.duckdb"
        duck = DuckDBStore(duck_path, codec)
        duck_info = await duck.migrate()
        ref_maker = DuckDBStore(duck_ref_path, codec)
        await ref_maker.migrate()
        await ref_maker.close()
        duck_con = duckdb.connect(str(duck_ref_path))
        try:
            async with timescale_pair(args.dsn, codec, tag) as (ts_side, pg_side, pg_facts):
                run = Run(
                    pairs=(
                        (ts_side, pg_side),
                        (AdapterSide("duckdb", duck), DuckArrowSide(duck_con)),
                    ),
                    tallies={
                        name: Tally()
                        for name in ("timescale", "timescale_reference", "duckdb", "duckdb_reference")
                    },
                    checks=Checks(),
                    profiles=profiles if args.profile else None,
                )
                warmup = stream.take(WARMUP_BATCHES)
                run.checks.add(warmup)
                for pair in run.pairs:
                    for side in pair:
                        await run.write_all(side, warmup, timed=False)
                try:
                    rounds = await _rounds(run, stream, args.seconds)
                finally:
                    gc.unfreeze()  # what was held may go now (DuckDB's objects before exit)
                await duck.close()  # before the file is opened again to count
                pg_counted = await pg_counts(args.dsn, ts_side.store.schema)
                pg_ref_counted = await pg_counts(args.dsn, pg_side.schema)
        finally:
            await duck.close()
            duck_con.close()
        duck_counted = duck_counts(duck_path)
        duck_ref_counted = duck_counts(duck_ref_path)

    checks = run.checks
    for name, (counts, _ids) in (
        ("timescale_reference", pg_ref_counted),
        ("duckdb_reference", duck_ref_counted),
    ):
        if counts != checks.expected_rows:
            raise RuntimeError(f"{name} holds {counts}, not the rows written {checks.expected_rows}")
    results = {
        "timescale": verdict("timescale", *pg_counted, checks),
        "duckdb": verdict("duckdb", *duck_counted, checks),
    }
    report(run, rounds, args.seconds, results, pg_facts, duck_info.detail, stream)
    if args.profile:
        for name, profile in profiles.items():
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
            note(f"\n== cProfile of {name} writes (by tottime) ==\n{out.getvalue()}")
    lost = sum(r[0] for r in results.values())
    duplicated = sum(r[1] for r in results.values())
    mismatches = sum(checks.first_write_mismatch.values())
    return 0 if lost == 0 and duplicated == 0 and mismatches == 0 else 1


async def _rounds(run: Run, stream: Stream, seconds: float) -> int:
    """Measured rounds, in pairs (so each order runs as often), until `seconds` of timed writes."""
    number = 0
    while True:
        for _ in range(2):
            batches = stream.take(ROUND_BATCHES)
            run.checks.add(batches)
            gc.collect()
            gc.freeze()  # the held stream is not the adapters' garbage to scan
            await run.round(batches, number, dedupe=number == 0)
            number += 1
        measured = sum(t.secs for t in run.tallies.values())
        note(
            f"round {number}: {measured:.1f} s measured; "
            + ", ".join(f"{n} {t.rate:,.0f} rows/s" for n, t in run.tallies.items())
        )
        if measured >= seconds:
            return number


def report(
    run: Run,
    rounds: int,
    seconds: float,
    results: dict[str, tuple[int, int, dict[str, Any]]],
    pg_facts: dict[str, Any],
    duck_detail: str,
    stream: Stream,
) -> None:
    t = run.tallies
    for store, reference in (("timescale", PG_REFERENCE), ("duckdb", DUCK_REFERENCE)):
        value, ref = t[store].rate, t[f"{store}_reference"].rate
        emit(
            BENCH,
            f"{store}_rows_per_s",
            value,
            UNIT,
            reference=ref,
            reference_name=reference,
            rows=t[store].rows,
            events=t[store].events,
            batches=t[store].batches,
            secs=round(t[store].secs, 3),
            reference_secs=round(t[f"{store}_reference"].secs, 3),
            ratio=round(value / ref, 3),
            target_met=value / ref >= TARGET_RATIO and value >= TARGET_ROWS_PER_S,
        )
    for metric, index in (("lost", 0), ("duplicated", 1)):
        emit(
            BENCH,
            metric,
            sum(r[index] for r in results.values()),
            "events",
            reference=None,
            reference_name=None,
            by_store={store: r[index] for store, r in results.items()},
        )
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
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
        duckdb=duckdb.__version__,
        asyncpg=asyncpg.__version__,
        pyarrow=pa.__version__,
        duckdb_file=duck_detail,
        **pg_facts,
        measuring_secs=seconds,
        rounds=rounds,
        batch_events=BATCH_EVENTS,
        rows_per_batch=round(t["timescale"].rows / max(t["timescale"].batches, 1), 1),
        batches_written=stream.batches,
        dedupe_rewrites=run.checks.rewrites,
        checks={store: r[2] for store, r in results.items()},
        date=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for store in ("timescale", "duckdb"):
        value, ref = t[store].rate, t[f"{store}_reference"].rate
        ratio = value / ref
        met = ratio >= TARGET_RATIO and value >= TARGET_ROWS_PER_S
        note(
            f"{store}: {value:,.0f} rows/s vs reference {ref:,.0f} rows/s ({ratio:.0%}); target "
            f">= {TARGET_RATIO:.0%} and >= {TARGET_ROWS_PER_S:,.0f} rows/s: "
            f"{'met' if met else 'MISSED'}; lost {results[store][0]}, "
            f"duplicated {results[store][1]}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"timed writes in total over the four sides (default {DEFAULT_SECONDS:g}, "
        f"{MIN_SECONDS:g} to {MAX_SECONDS:g}); simulation, projection and checks come on top",
    )
    parser.add_argument("--dsn", default=DEFAULT_DSN, help=f"PostgreSQL (default {DEFAULT_DSN})")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the adapters' timed writes and print the top functions on stderr "
        "(slows them: the rates are then not comparable)",
    )
    args = parser.parse_args()
    if not MIN_SECONDS <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g}")
    return args


def main() -> int:
    args = parse_args()
    quiet_logs()
    return asyncio.run(measure(args))


if __name__ == "__main__":
    sys.exit(main())
