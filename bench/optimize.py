"""Trials per second of `fin-agent optimize` with --jobs 1 and --jobs 2, beside plain backtests.

Each optimize run is the real command in a child process, in a fresh data folder, with pruning
off and no minimum of trades, so every trial backtests the whole span. Its rate comes from
Optuna's own stamps: the trials after the first over the time from the first trial's end to the
last one's, so the workers' start-up (imports, one read of the bar files each) is left out;
`wall_s` is the whole command. The reference, measured in the same run right after: plain
backtests of the same parameter sets (a trial's duration depends on its parameters) in one
process, then shared out over two processes at once (each reading the files and running one
untimed backtest first), as backtests per second: what the trials would reach with no optimiser
around them.

    .venv/bin/python bench/optimize.py [--trials 20] > results.jsonl
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
from typing import Any

import optuna
from _common import emit, note, quiet_logs
from optuna.storages.journal import JournalFileBackend

from fin_agent.app.bootstrap import build_replay, load_bar_files, running
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.research.space import overrides
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


def optimize_rate(trials: int, jobs: int) -> tuple[float, float, list[dict[str, Any]]]:
    """(trials/s between the first trial's end and the last one's, the run's wall s, the
    trials' parameters)."""
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
        ends = sorted(t.datetime_complete for t in done if t.datetime_complete is not None)
        rate = (len(ends) - 1) / (ends[-1] - ends[0]).total_seconds()
        return rate, wall, [dict(t.params) for t in done]


def _backtest_loop(
    params: list[dict[str, Any]], results: multiprocessing.SimpleQueue[float]
) -> None:
    """Plain backtests of each parameter set in turn (settings and files read, and one backtest
    run, before timing)."""
    quiet_logs()
    base = REPO / "config.yaml"
    each = [load_settings(base, environ={}, overrides=overrides(p)) for p in params]
    market = load_bar_files(
        FILES, timezone=each[0].replay.timezone, bar_stamp="auto", factors_dir=None
    ).market
    days = [d for d in market.sessions() if START <= d <= END]

    async def once(settings: Settings) -> None:
        container = await build_replay(settings, market)
        sessions = [s for d in days if (s := container.calendar.session(d)) is not None]
        async with running(container):
            await run_sessions(container, sessions, settings.strategy_equity())

    asyncio.run(once(each[0]))  # warm-up, as the trials' rate leaves out each worker's first
    began = time.perf_counter()
    for settings in each:
        asyncio.run(once(settings))
    results.put(time.perf_counter() - began)


def backtest_rate(params: list[dict[str, Any]], processes: int) -> float:
    """Plain backtests per second of `params`, shared out over `processes` side by side."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.SimpleQueue[float] = context.SimpleQueue()
    children = [
        context.Process(target=_backtest_loop, args=(params[i::processes], results))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    return len(params) / max(results.get() for _ in children)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per optimize run")
    args = parser.parse_args()
    if not all(f.exists() for f in FILES):
        note(f"the av2019 files are missing from {DATA}")
        return 2
    quiet_logs()
    for jobs in (1, 2):
        note(f"optimize --trials {args.trials} --jobs {jobs}")
        rate, wall, params = optimize_rate(args.trials, jobs)
        note(f"reference: the same {len(params)} backtests in {jobs} plain process(es)")
        reference = backtest_rate(params, jobs)
        emit(
            "optimize",
            f"trials_per_s_jobs{jobs}",
            rate,
            "trials/s",
            reference=reference,
            reference_name=f"plain backtests/s of the trials' parameter sets, {jobs} process(es)"
            " side by side",
            wall_s=round(wall, 2),
            trials=args.trials,
            cpus=os.cpu_count(),
            load_avg_1m=round(os.getloadavg()[0], 2),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
