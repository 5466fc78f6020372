"""One function per fault: run the agent, inject the fault, supervise, compare with the reference.

Every run gets a fresh database (owned by the agent's non-superuser role) and its own redis-server
(AOF on, except for the data-loss fault). The supervisor restarts the agent after a kill -9 and
after any non-zero exit (recorded, at most `MAX_UNPLANNED` times), and stops it at the deadline.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_suite.agent import Agent, AgentConfig, StoreWatch
from chaos_suite.compare import IGNORED, StoreDiff, diff_stores, read_store
from chaos_suite.services import (
    admin_dsn,
    create_database,
    fill_disk,
    new_cluster,
    new_redis,
    restart_redis_empty,
    set_inserts,
    small_disk,
)
from pg_cluster import PostgresCluster
from support import RedisServer

MAX_UNPLANNED = 5
DISK_MB = 160  # the disk-full fault's tmpfs: the cluster and a 10-day store fit with room to spare
MID_RUN = 0.3  # a fault starts once this share of the reference's events is stored


@dataclass(slots=True, kw_only=True)
class Options:
    """The suite's knobs (bench/chaos.py's arguments)."""

    days: int
    seed: int
    kills: int
    refuse_secs: float
    db_down_secs: float
    disk_full_secs: float
    deadline_secs: float
    work: Path


@dataclass(slots=True, kw_only=True)
class Reference:
    """The uninterrupted run every fault run is compared with."""

    rows: dict[str, list[dict[str, Any]]]
    events: int
    seconds: float
    work_seconds: float
    database: str


@dataclass(slots=True, kw_only=True)
class Run:
    """One fault run in progress: its servers, its agents, what happened."""

    name: str
    cluster: PostgresCluster
    database: str
    redis: RedisServer
    agent: Agent
    watch: StoreWatch
    opts: Options
    others: list[Agent] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    fault_ends: list[tuple[float, int]] = field(default_factory=list)  # (when, events stored)
    kills: int = 0
    restarted: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # no more restarts


Inject = Callable[[Run, Reference], Coroutine[Any, Any, None]]


async def run_agent(
    name: str,
    cluster: PostgresCluster,
    opts: Options,
    *,
    appendonly: bool = True,
    inject: Inject | None = None,
    reference: Reference | None = None,
    tag: str = "",
) -> Run:
    """Run the agent to its end with `inject` alongside; the run, its store left in place
    (database chaos_<name><tag>, folder <work>/<name><tag>)."""
    database = f"chaos_{name}{tag}"
    dsn = await create_database(cluster, database)
    folder = opts.work / f"{name}{tag}"
    redis = new_redis(folder / "redis", appendonly=appendonly)
    config = AgentConfig(
        name="primary", data_dir=folder / "agent", store_dsn=dsn, redis_url=redis.url,
        days=opts.days, seed=opts.seed,
    )  # fmt: skip
    try:
        async with StoreWatch(admin_dsn(cluster, database)) as watch:
            run = Run(
                name=name, cluster=cluster, database=database, redis=redis,
                agent=Agent(config), watch=watch, opts=opts,
            )  # fmt: skip
            started = time.monotonic()
            await run.agent.start()
            task = asyncio.create_task(inject(run, reference) if inject and reference else _idle())
            await _supervise(run, started + opts.deadline_secs, task)
            run.notes["seconds"] = round(time.monotonic() - started, 1)
    finally:
        redis.stop()
    return run


async def _idle() -> None:
    return None


async def _supervise(run: Run, deadline: float, inject: asyncio.Task[None]) -> None:
    """Restart after kills and non-zero exits until exit 0, then let the injection finish."""
    agent, unplanned = run.agent, 0
    while True:
        left = deadline - time.monotonic()
        end = await agent.wait(max(left, 0.0)) if agent.running else None
        if end is None and agent.running:
            run.notes["timed_out"] = True
            await agent.stop()
            break
        if end is not None and end.code == 0:
            break
        if end is not None and not end.killed:
            unplanned += 1
            if unplanned > MAX_UNPLANNED:
                run.notes["gave_up"] = f"{unplanned} non-zero exits"
                break
        await agent.start()
        run.restarted.set()
    run.finished.set()
    run.restarted.set()  # a kill waiting for a restart that will not come
    await asyncio.wait_for(inject, max(deadline - time.monotonic(), 60.0))
    for other in run.others:
        if await other.wait(max(deadline - time.monotonic(), 1.0)) is None:
            run.notes[f"{other.config.name}_timed_out"] = True
            await other.stop()


# --- the faults ------------------------------------------------------------------------------


async def _mid_run(run: Run, reference: Reference) -> bool:
    """Wait until MID_RUN of the reference's events are stored; False if the run ended first."""
    target = max(1, int(reference.events * MID_RUN))
    while not run.finished.is_set():
        if run.watch.count() >= target:
            return True
        await asyncio.sleep(0.1)
    run.notes["fault_skipped"] = "the run ended before the fault could start"
    return False


async def kill9(run: Run, reference: Reference) -> None:
    """(a) kill -9 at `kills` random moments of the agent's work, restarted each time.

    Each process is killed a random time (up to an even share of the reference's work,
    from its first event stored to its last) after it stored its first new event, so every kill
    lands in work wherever the run is, and the wait for that first event is the restart's
    recovery."""
    rng = random.Random(run.opts.seed)  # reproducible moments
    spread = reference.work_seconds / (run.opts.kills + 1)
    moments: list[float] = []
    at_kill: list[int] = []
    while run.kills < run.opts.kills:
        since = run.fault_ends[-1][1] if run.fault_ends else 0  # counted fresh at the restart
        if not await _progress(run, since=since):
            break
        delay = rng.uniform(0.0, spread)
        moments.append(round(delay, 2))
        await asyncio.sleep(delay)
        run.restarted.clear()
        if not run.agent.kill9():
            break  # the run ended first
        run.kills += 1
        at_kill.append(run.watch.count())
        await run.restarted.wait()
        if run.finished.is_set():
            break
        run.fault_ends.append(await run.watch.sample_now())
    if run.kills < run.opts.kills:
        run.notes["kills_missed"] = f"the run ended after {run.kills} of {run.opts.kills} kills"
    if not run.kills:
        run.notes["fault_skipped"] = "the run ended before the first kill"
    run.notes["kill_after_first_event_s"] = moments
    run.notes["events_stored_at_each_kill"] = at_kill


async def _progress(run: Run, *, since: int) -> bool:
    """Wait until the agent stores an event beyond `since`; False if the run ended first."""
    while not run.finished.is_set():
        if run.watch.count() > since and run.agent.running:
            return True
        await asyncio.sleep(0.05)
    return False


async def write_refused(run: Run, reference: Reference) -> None:
    """(b) REVOKE INSERT on the store's tables from the agent's role, GRANT it back later."""
    if not await _mid_run(run, reference):
        return
    await set_inserts(run.cluster, run.database, allowed=False)
    _, before = await run.watch.sample_now()
    await asyncio.sleep(run.opts.refuse_secs)
    _, after = await run.watch.sample_now()
    run.notes["stored_while_refused"] = after - before  # 0: the REVOKE held
    await set_inserts(run.cluster, run.database, allowed=True)
    run.fault_ends.append(await run.watch.sample_now())


async def db_down(run: Run, reference: Reference) -> None:
    """(c) Stop the database server, start it again after `db_down_secs`."""
    if not await _mid_run(run, reference):
        return
    await asyncio.to_thread(run.cluster.stop)
    run.notes["database_stopped"] = not await asyncio.to_thread(lambda: run.cluster.running)
    await asyncio.sleep(run.opts.db_down_secs)
    await asyncio.to_thread(run.cluster.start)
    run.fault_ends.append(await run.watch.sample_now())


async def redis_lost(run: Run, reference: Reference) -> None:
    """(d) Redis restarted without its data (no persistence: the streams and groups are gone)."""
    if not await _mid_run(run, reference):
        return
    run.notes["redis_keys_lost"] = await asyncio.to_thread(restart_redis_empty, run.redis)
    run.fault_ends.append(await run.watch.sample_now())


async def second_agent(run: Run, reference: Reference) -> None:
    """(e) A second agent on the same Redis streams, groups and store, started mid-run."""
    if not await _mid_run(run, reference):
        return
    primary = run.agent.config
    other = Agent(
        AgentConfig(
            name="second",
            data_dir=primary.data_dir.parent / "second",
            store_dsn=primary.store_dsn,
            redis_url=primary.redis_url,
            days=primary.days,
            seed=primary.seed,
        )
    )
    await other.start()
    run.others.append(other)


async def disk_full(run: Run, reference: Reference) -> None:
    """(f) The database's disk full for `disk_full_secs`: ballast files fill its tmpfs, topped up
    every 0.2 s (the server frees space as it goes: WAL recycling, temporary files)."""
    if not await _mid_run(run, reference):
        return
    folder = run.cluster.folder
    ballasts = [await asyncio.to_thread(fill_disk, folder, 0)]
    run.notes["disk_free_bytes_while_full"] = await asyncio.to_thread(_free_bytes, folder)
    _, before = await run.watch.sample_now()
    end = time.monotonic() + run.opts.disk_full_secs
    while time.monotonic() < end:
        await asyncio.sleep(0.2)
        if await asyncio.to_thread(_free_bytes, folder):
            ballasts.append(await asyncio.to_thread(fill_disk, folder, len(ballasts)))
    run.notes["stored_while_full"] = (await run.watch.sample_now())[1] - before  # into free
    # space of pages the tables already have: PostgreSQL needs new disk only to extend a file
    for ballast in ballasts:
        ballast.unlink()
    run.fault_ends.append(await run.watch.sample_now())
    if not await asyncio.to_thread(lambda: run.cluster.running):
        run.notes["database_restarted_by_harness"] = True  # it crashed on ENOSPC: as an operator
        await asyncio.to_thread(run.cluster.start)


def _free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


FAULTS: dict[str, tuple[str, Inject | None]] = {
    "uninterrupted": ("-", None),
    "kill9": ("a", kill9),
    "write_refused": ("b", write_refused),
    "db_down": ("c", db_down),
    "redis_lost": ("d", redis_lost),
    "second_agent": ("e", second_agent),
    "disk_full": ("f", disk_full),
}


# --- results ---------------------------------------------------------------------------------


async def reference_run(cluster: PostgresCluster, opts: Options) -> Reference:
    """The uninterrupted run of the same days and seed."""
    run = await run_agent("reference", cluster, opts)
    ends = [e.code for e in run.agent.exits]
    if ends != [0] or run.notes.get("timed_out"):
        raise RuntimeError(f"the reference run did not end cleanly: exits {ends}, {run.notes}")
    rows = await read_store(admin_dsn(cluster, run.database))
    events = len(rows["events"])
    stored = [t for t, n in run.watch.samples if n > 0]
    done = [t for t, n in run.watch.samples if n >= events]
    work = (done[0] - stored[0]) if stored and done else run.notes["seconds"]
    return Reference(
        rows=rows,
        events=events,
        seconds=run.notes["seconds"],
        work_seconds=round(max(work, 0.5), 2),
        database=run.database,
    )


async def fault_run(
    name: str, cluster: PostgresCluster, opts: Options, ref: Reference, *, round_no: int = 1
) -> dict[str, Any]:
    """Run fault `name` (its `round_no`th round) and its figures as one JSON-able dict."""
    _, inject = FAULTS[name]
    tag = f"_{round_no}" if round_no > 1 else ""
    if name == "disk_full":
        line = await _disk_full_run(opts, ref, tag)
    else:
        run = await run_agent(
            name, cluster, opts, appendonly=name != "redis_lost", inject=inject, reference=ref,
            tag=tag,
        )  # fmt: skip
        if not cluster.running:
            cluster.start()
        line = await result(run, ref)
    return {**line, "round": round_no}


async def _disk_full_run(opts: Options, ref: Reference, tag: str) -> dict[str, Any]:
    with small_disk(size_mb=DISK_MB) as mount:
        cluster = new_cluster(mount)
        try:
            run = await run_agent(
                "disk_full", cluster, opts, inject=disk_full, reference=ref, tag=tag
            )
            if not cluster.running:
                cluster.start()
            return await result(run, ref)
        finally:
            cluster.stop()


async def result(run: Run, ref: Reference) -> dict[str, Any]:
    """The JSON line of one run: differences, exits, restarts, recovery, loud signals."""
    rows = await read_store(admin_dsn(run.cluster, run.database))
    diff: StoreDiff = diff_stores(ref.rows, rows)
    agents = [run.agent, *run.others]
    exits = [
        {"agent": a.config.name, "code": e.code, "killed": e.killed}
        for a in agents
        for e in a.exits
    ]
    unplanned = [e for a in agents for e in a.exits if e.code != 0 and not e.killed]
    errors = [f"{r['code']}: {r['message'][:160]}" for r in rows.get("errors", [])]
    loud_exits = [f"exit {e.code}: {e.last_error}" for e in unplanned if e.last_error]
    logs = [line for a in agents for line in a.loud_logs()]
    loud = bool(errors or loud_exits or logs)
    recoveries = [run.watch.recovery_secs(t, n) for t, n in run.fault_ends]
    measured = [r for r in recoveries if r is not None]
    verdict = "equal" if diff.equal else ("loud" if loud else "silent_difference")
    if "fault_skipped" in run.notes:
        verdict = "not_injected"  # an equal store proves nothing then
    return {
        "bench": "chaos",
        "metric": run.name,
        "lost": diff.lost,
        "duplicated": diff.duplicated,
        "changed": diff.changed,
        "recovery_s": max(measured) if measured else None,
        "verdict": verdict,
        "tables": diff.per_table(),
        "examples": {t.table: list(t.examples) for t in diff.tables if t.examples},
        "reference_events": ref.events,
        "run_events": len(rows["events"]),
        "exit_codes": [e["code"] for e in exits],
        "exits": exits,
        "restarts": sum(a.starts for a in agents) - len(agents),
        "unplanned_restarts": len(unplanned),
        "kills": run.kills,
        "recoveries_s": recoveries,
        "loud": loud,
        "error_raised": errors[:10],
        "loud_exits": loud_exits[:5],
        "loud_logs": logs[:10],
        "ignored_columns": IGNORED,
        **run.notes,
    }
