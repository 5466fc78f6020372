"""Chaos suite: the real agent under faults, its store compared with an uninterrupted run.

Runs `fin-agent run --bus redis` on a simulated market (`--days`, `--seed`) against a private
PostgreSQL cluster and its own redis-server (both on free ports), once without faults (the
reference) and once per fault, and compares each fault run's store with the reference table by
table, by key (chaos_suite/compare.py names the one column left out and why). Faults:

  a kill9          kill -9 at --kills random moments, restarted each time
  b write_refused  INSERT revoked from the agent's role for --refuse-secs, then granted back
  c db_down        the database server stopped for --db-down-secs, then started
  d redis_lost     Redis restarted without its data (no persistence) mid-run
  e second_agent   a second agent on the same streams, groups and store, started mid-run
  f disk_full      the database's disk (a tmpfs) filled for --disk-full-secs (needs root to
                   mount it: skipped, saying so, without)

plus `uninterrupted` (a second clean run: the comparison's control) and `self_check` (a tampered
copy of the reference must read as 1 lost, 1 changed, 1 duplicated). One JSON line per scenario on
stdout (`{"bench": "chaos", "metric": "<scenario>", "lost": n, "duplicated": n, "changed": n,
"recovery_s": x, ...}`); progress on stderr. Exit 1 if a store ends different from the reference
without a loud signal (an `error.raised`, an error log, a non-zero exit with a message), or the
control differs, or the self check is blind, or a fault could not be injected (the run ended
first); 2 when a server binary is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import note, quiet_logs
from chaos_suite.faults import FAULTS, Options, fault_run, reference_run
from chaos_suite.self_check import self_check
from chaos_suite.services import MissingServer, missing_binaries, new_cluster

LETTERS = {letter: name for name, (letter, _) in FAULTS.items() if letter != "-"}
DEFAULT = "uninterrupted,a,b,c,d,e,f"
SHORT = "uninterrupted,a,b,d,e"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The suite's options; `--short` is the round `make test` runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", help=f"comma-separated letters or names (default {DEFAULT})")
    parser.add_argument("--scenario", action="append", default=[], help="a fault by name (repeat)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each fault (default 1)")
    parser.add_argument("--kills", type=int, help="kill -9 count of fault a (default 20)")
    parser.add_argument("--days", type=int, help="simulated sessions per run (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    parser.add_argument("--refuse-secs", type=float, help="fault b's length (default 10)")
    parser.add_argument("--db-down-secs", type=float, help="fault c's length (default 30)")
    parser.add_argument("--disk-full-secs", type=float, default=30.0, help="fault f's length")
    parser.add_argument("--deadline-secs", type=float, help="longest run of one fault")
    parser.add_argument(
        "--short", action="store_true",
        help=f"the test's round: 3 days, 3 kills, 5 s refusal, faults {SHORT}",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the cluster and logs (printed)")
    return parser.parse_args(argv)


def chosen(args: argparse.Namespace) -> list[str]:
    """The scenarios to run, by name, in the order given."""
    raw = args.scenario or (args.faults or (SHORT if args.short else DEFAULT)).split(",")
    names = []
    for item in (r.strip() for r in raw):
        name = LETTERS.get(item, item)
        if name not in FAULTS:
            raise SystemExit(f"unknown fault {item!r}: use {', '.join([*LETTERS, *FAULTS])}")
        names.append(name)
    return names


def options(args: argparse.Namespace, work: Path) -> Options:
    """Defaults by mode: the full round, or `--short`."""
    short = args.short
    return Options(
        days=args.days or (3 if short else 10),
        seed=args.seed,
        kills=args.kills if args.kills is not None else (3 if short else 20),
        refuse_secs=args.refuse_secs or (5.0 if short else 10.0),
        db_down_secs=args.db_down_secs or (10.0 if short else 30.0),
        disk_full_secs=args.disk_full_secs,
        deadline_secs=args.deadline_secs or (90.0 if short else 900.0),
        work=work,
    )


def emit(line: dict[str, Any]) -> None:
    """One result line on stdout, a summary on stderr."""
    print(json.dumps(line, default=str), flush=True)
    note(
        f"{line['metric']}: {line['verdict']} lost {line['lost']} duplicated "
        f"{line['duplicated']} changed {line['changed']} recovery {line['recovery_s']} s"
    )


async def suite(names: list[str], opts: Options, *, rounds: int = 1, keep: bool = False) -> int:
    """Reference, self check, then each fault; the exit code."""
    cluster = new_cluster()
    failed = False
    try:
        note(f"reference: {opts.days} days, seed {opts.seed}, cluster port {cluster.port}")
        ref = await reference_run(cluster, opts)
        note(f"reference: {ref.events} events in {ref.seconds} s ({ref.work_seconds} s storing)")
        check = await self_check(cluster, ref)
        emit(check)
        failed |= check["verdict"] != "detects"
        for round_no, name in itertools.product(range(1, rounds + 1), names):
            note(f"{name}: running (round {round_no})")
            try:
                line = await fault_run(name, cluster, opts, ref, round_no=round_no)
            except MissingServer as exc:  # the disk-full fault without the right to mount
                line = {"bench": "chaos", "metric": name, "lost": None, "duplicated": None,
                        "changed": None, "recovery_s": None, "verdict": "skipped",
                        "reason": str(exc)}  # fmt: skip
            except Exception as exc:  # one broken scenario must not hide the rest
                line = {"bench": "chaos", "metric": name, "lost": None, "duplicated": None,
                        "changed": None, "recovery_s": None, "verdict": "harness_error",
                        "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip
            emit(line)
            failed |= line["verdict"] in {"silent_difference", "harness_error", "not_injected"}
            failed |= name == "uninterrupted" and line["verdict"] != "equal"
    finally:
        if keep:
            cluster.stop()
            note(f"kept the cluster in {cluster.folder} (pg_ctl start -D {cluster.data})")
        else:
            cluster.destroy()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; 2 when a server binary is missing."""
    args = parse_args(argv)
    names = chosen(args)
    missing = missing_binaries()
    if missing:
        note(f"chaos: cannot run: {missing}")
        return 2
    quiet_logs()
    work = Path(tempfile.mkdtemp(prefix="fin-chaos-", dir="/tmp"))
    try:
        return asyncio.run(suite(names, options(args, work), rounds=args.rounds, keep=args.keep))
    finally:
        if args.keep:
            note(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
