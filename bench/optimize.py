"""Trials per second of `fin-agent optimize` with --jobs 1 and --jobs 2, beside plain backtests.

Each optimize run is the real command in a child process, in a fresh data folder, with pruning
off and no minimum of trades, so every trial backtests the whole span: its rate is trials over
the time from the first trial's start to the last one's end (Optuna's own stamps; the workers'
start-up, one read of the bar files each, is outside it and reported apart). The reference,
measured in the same run: the same backtest with the default settings in one process, then in
two processes at once (each reading the files once, then backtesting in a loop), as backtests
per second: what the trials would reach with no optimiser around them.

    .venv/bin/python bench/optimize.py [--trials 20] [--seconds 20] > results.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import optuna
from _common import emit, note, quiet_logs
from optuna.storages.journal import JournalFileBackend

from fin_agent.app.bootstrap import build_replay, load_bar_files, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_sessions

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FILES = (DATA / "av2019_daily_24sym.csv.gz", DATA / "av2019_15min_24sym.csv.gz")
START, END = date(2019, 1, 4), date(2019, 2, 15)
STUDY = "bench"
ENV = {
    "FIN_AGENT_OPTIMIZE__STUDY": STUDY,
    "FIN_AGENT_OPTIMIZE__TRAIN_DAYS": "10",
    "FIN_AGENT_OPTIMIZE__TEST_DAYS": "5",
    "FIN_AGENT_OPTIMIZE__PRUNER": "none",
    "FIN_AGENT_OPTIMIZE__MIN_TRADES": "0",
}


def optimize_rate(trials: int, jobs: int) -> tuple[float, float]:
    """(trials/s between the first trial's start and the last one's end, the run's wall s)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, **ENV, "FIN_AGENT_DATA_DIR": folder}
        command = [
            *(sys.executable, "-m", "fin_agent.app.cli.main"),
            *("--config", str(REPO / "config.yaml"), "optimize"),
            *("--data", *map(str, FILES), "--from", str(START), "--to", str(END)),
            *("--trials", str(trials), "--jobs", str(jobs)),
        ]
        began = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - began
        journal = Path(folder) / "optimize" / STUDY / "journal.log"
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        done = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
        first = min(t.datetime_start for t in done if t.datetime_start is not None)
        last = max(t.datetime_complete for t in done if t.datetime_complete is not None)
        return len(done) / (last - first).total_seconds(), wall


def _backtest_loop(seconds: float, results: multiprocessing.SimpleQueue[int]) -> None:
    quiet_logs()
    settings = load_settings(REPO / "config.yaml", environ={})
    market = load_bar_files(
        FILES, timezone=settings.replay.timezone, bar_stamp="auto", factors_dir=None
    ).market
    days = [d for d in market.sessions() if START <= d <= END]

    async def once() -> None:
        container = await build_replay(settings, market)
        sessions = [s for d in days if (s := container.calendar.session(d)) is not None]
        async with running(container):
            await run_sessions(container, sessions, settings.strategy_equity())

    asyncio.run(once())  # warm-up
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        asyncio.run(once())
        count += 1
    results.put(count)


def backtest_rate(processes: int, seconds: float) -> float:
    """Plain backtests per second over `processes` processes running side by side."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.SimpleQueue[int] = context.SimpleQueue()
    children = [
        context.Process(target=_backtest_loop, args=(seconds, results)) for _ in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    return sum(results.get() for _ in children) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per optimize run")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measuring time of each reference loop"
    )
    args = parser.parse_args()
    if not all(f.exists() for f in FILES):
        note(f"the av2019 files are missing from {DATA}")
        return 2
    quiet_logs()
    for jobs in (1, 2):
        note(f"reference: plain backtests in {jobs} process(es) for {args.seconds:g} s")
        reference = backtest_rate(jobs, args.seconds)
        note(f"optimize --trials {args.trials} --jobs {jobs}")
        rate, wall = optimize_rate(args.trials, jobs)
        emit(
            "optimize",
            f"trials_per_s_jobs{jobs}",
            rate,
            "trials/s",
            reference=reference,
            reference_name=f"plain backtests/s of the same span, {jobs} process(es) side by side",
            wall_s=round(wall, 2),
            trials=args.trials,
            cpus=os.cpu_count(),
            load_avg_1m=round(os.getloadavg()[0], 2),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
