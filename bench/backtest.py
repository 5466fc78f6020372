"""Benchmark of `fin-agent backtest` against backtrader and a bare pyarrow read, side by side.

Two data sets, each run by three contenders in a child process of their own (peak RSS is the
child's own VmHWM):

- `project`: fin_agent's backtest as `fin-agent backtest` runs it (bar files read into the replay
  market, sessions run on the memory bus and store), timed as load and run.
- `backtrader`: the same rules written again on backtrader (bench/gap_backtrader.py); its trades
  must equal the project's, or the bench exits 1.
- `pyarrow`: a bare read of the same files into Arrow tables: the floor for loading them.

Data sets: `shared`, the av2019 daily and 1-minute files of ../shared/data (scan.gap_min_pct 1: the
week's gaps are 1-3 %), and `universe`, a synthetic market of `--symbols` symbols (7,000 by default)
from the simulator: daily bars for every symbol and 1-minute bars (pre-market and session) of each
day's gappers, written once to Parquet under `--cache`.

Each contender runs `--repeats` times (3 by default), round robin, so a busy spell of the machine
falls on all alike; its time is its best run's, and the ratios are also given on the medians and
run by run. Each result is a JSON line on stdout (bars_per_s, rss_mb, seconds, per contender, with
ratios to the others); progress on stderr. Run: `.venv/bin/python bench/backtest.py [--symbols N]
[--days N] [--only shared|universe] [--repeats N] > results.jsonl`; the linearity section alone:
`.venv/bin/python bench/backtest.py --linearity SYMBOLS DAYS [--repeats N]` (1x, 2x, 4x the days,
then the symbols, each size N times: min, median, spread, time ratio per doubling, a linear fit).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _common import emit, note, quiet_logs  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
AV_DAILY, AV_MINUTES = "av2019_daily_24sym.csv.gz", "av2019_1min_24sym.csv.gz"
CONTENDERS = ("project", "backtrader", "pyarrow")
UNIVERSE_START = date(2025, 3, 3)


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSet:
    """Bar files and how to read them, and the days to backtest."""

    name: str
    daily: Path
    minutes: Path
    first: date
    last: date
    tz: str
    stamp: str
    gap_min_pct: str
    store: Literal["memory", "duckdb"] = "memory"


# --- the children -------------------------------------------------------------------------------


def trade_key(day: str, symbol: str, qty: int, entry: Any, exit_: Any, reason: str) -> list[Any]:
    """A trade as both implementations report it, comparable as JSON."""
    return [day, symbol, qty, str(Decimal(str(entry)).normalize()),
            str(Decimal(str(exit_)).normalize()), reason]  # fmt: skip


def child_project(data: DataSet) -> dict[str, Any]:
    from fin_agent.app.bootstrap import build_replay, load_bar_files, running
    from fin_agent.app.config.settings import load_settings
    from fin_agent.app.heap import loaded_out_of_gc
    from fin_agent.app.runner import run_session

    os.environ["FIN_AGENT_SCAN__GAP_MIN_PCT"] = data.gap_min_pct
    settings = load_settings(REPO / "config.yaml")
    started = time.perf_counter()
    loaded = load_bar_files(
        [data.daily, data.minutes], timezone=data.tz, bar_stamp=data.stamp, factors_dir=None
    )
    loaded_at = time.perf_counter()
    after_load = rss_mb()
    market = loaded.market
    days = [d for d in market.sessions() if data.first <= d <= data.last]

    rss_by_day: list[float | None] = []

    async def go() -> list[Any]:  # run_sessions' loop, with the resident set after each day
        container = await build_replay(settings, market, store=data.store)
        sessions = [s for d in days if (s := container.calendar.session(d)) is not None]
        found: list[Any] = []
        equity = settings.strategy_equity()
        async with running(container):
            for session in sessions:
                found.append(await run_session(container, session, equity))
                equity = found[-1].performance.end_equity
                rss_by_day.append(rss_mb())
        return found

    with loaded_out_of_gc():  # as `fin-agent backtest` runs
        reports = asyncio.run(go())
    done = time.perf_counter()
    trades = [
        trade_key(r.day.isoformat(), t.symbol, t.qty, t.entry_price, t.exit_price,
                  str(t.exit_reason))
        for r in reports
        for t in r.performance.trades
    ]  # fmt: skip
    return {"load_s": loaded_at - started, "run_s": done - loaded_at, "days": len(days),
            "trades": trades, "rss_by_day": rss_by_day, "rss_after_load": after_load}  # fmt: skip


def child_backtrader(data: DataSet) -> dict[str, Any]:
    import gap_backtrader as gb

    started = time.perf_counter()
    market = gb.load(data.daily, data.minutes, tz=data.tz, stamp=data.stamp)
    loaded_at = time.perf_counter()
    days = [d for d in market.sessions() if data.first <= d <= data.last]
    rules = gb.Rules(gap_min_pct=Decimal(data.gap_min_pct))
    found = gb.backtest(market, days, rules, Decimal(100_000))
    done = time.perf_counter()
    trades = [
        trade_key(t.day.isoformat(), t.symbol, t.qty, t.entry, t.exit, t.reason) for t in found
    ]
    return {"load_s": loaded_at - started, "run_s": done - loaded_at, "days": len(days),
            "trades": trades}  # fmt: skip


def child_pyarrow(data: DataSet) -> dict[str, Any]:
    started = time.perf_counter()
    rows = sum(read_table(path).num_rows for path in (data.daily, data.minutes))
    return {"load_s": time.perf_counter() - started, "run_s": 0.0, "rows": rows, "trades": None}


def read_table(path: Path) -> Any:
    """A bar file as an Arrow table, the bare way."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    return pq.read_table(path) if path.suffix == ".parquet" else pv.read_csv(path)


def rss_mb() -> float | None:
    """This process's resident set now (VmRSS, Linux), in MB, or None elsewhere."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float | None:
    """This process's peak resident set (VmHWM, Linux), in MB, or None elsewhere."""
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float | None:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    found = [line.split()[1] for line in lines if line.startswith(f"{field}:")]
    return int(found[0]) / 1024 if found else None


# --- the parent ---------------------------------------------------------------------------------


def run_child(contender: str, data: DataSet) -> dict[str, Any]:
    """Run one contender in a child process; its result with wall time and peak RSS."""
    fields = dataclasses.asdict(data)
    spec = json.dumps({**fields, "daily": str(data.daily), "minutes": str(data.minutes),
                       "first": data.first.isoformat(), "last": data.last.isoformat()})  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", contender, "--spec", spec],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{contender} on {data.name} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["wall_s"] = wall
    # ru_maxrss keeps the forking parent's size across exec: the child's own VmHWM is its peak.
    result["rss_mb"] = result.pop("peak_rss_mb", None) or usage.ru_maxrss / 1024
    return result


def compare(data: DataSet, repeats: int) -> bool:
    """Run the three contenders on `data` `repeats` times each, round robin (a busy spell of the
    machine falls on all of them alike), print the results side by side; trades equal in every
    run? Each contender's time is its best run's (the least disturbed), its RSS the highest peak;
    the ratios are given on the best and on the median runs, with every run's time."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    for _ in range(repeats):
        for contender in CONTENDERS:
            runs[contender].append(run_child(contender, data))
    bars = runs["pyarrow"][0]["rows"]
    results = {name: _summary(found, bars) for name, found in runs.items()}
    for name, r in results.items():
        note(f"{data.name} {name}: best load {r['load_s']:.2f} s, run {r['run_s']:.2f} s; "
             f"all {', '.join(f'{t:.2f}' for t in r['seconds_all'])} s; "
             f"peak RSS {r['rss_mb']:.0f} MB")  # fmt: skip
    project, backtrader, arrow = results["project"], results["backtrader"], results["pyarrow"]
    trades = [r["trades"] for r in runs["project"] + runs["backtrader"]]
    equal: bool = all(t == trades[0] for t in trades)
    for name, r in results.items():
        for metric, unit in (("bars_per_s", "bars/s"), ("rss_mb", "MB")):
            emit("backtest", metric, r[metric], unit, data=data.name, contender=name, bars=bars,
                 repeats=repeats)  # fmt: skip
    emit(
        "backtest",
        "side_by_side",
        None,
        None,
        data=data.name,
        bars=bars,
        days=runs["project"][0]["days"],
        trades=len(runs["project"][0]["trades"]),
        trades_equal=equal,
        repeats=repeats,
        contenders={
            name: {k: r[k] for k in ("load_s", "run_s", "bars_per_s", "rss_mb", "seconds_all")}
            for name, r in results.items()
        },
        ratios={
            "project_vs_backtrader_speed": _ratio(project["bars_per_s"], backtrader["bars_per_s"]),
            "project_vs_backtrader_speed_median": _ratio(
                backtrader["seconds_median"], project["seconds_median"]
            ),
            "project_vs_backtrader_speed_each_run": [
                round(b / p, 2)
                for p, b in zip(project["seconds_all"], backtrader["seconds_all"], strict=True)
            ],
            "project_load_vs_pyarrow_speed": _ratio(
                project["load_bars_per_s"], arrow["load_bars_per_s"]
            ),
            "project_vs_backtrader_rss": _ratio(project["rss_mb"], backtrader["rss_mb"]),
        },
    )
    if not equal:
        first_p, first_b = runs["project"][0]["trades"], runs["backtrader"][0]["trades"]
        only_p = [t for t in first_p if t not in first_b]
        only_b = [t for t in first_b if t not in first_p]
        note(f"{data.name}: TRADES DIFFER: project only {only_p[:5]}, backtrader only {only_b[:5]}")
    return equal


def _summary(found: list[dict[str, Any]], bars: int) -> dict[str, Any]:
    """One contender's runs: the best run's load and run time and speeds, the highest peak RSS,
    every run's time (load + run) in order and their median."""
    seconds = [r["load_s"] + r["run_s"] for r in found]
    best = found[seconds.index(min(seconds))]
    return {
        "load_s": best["load_s"],
        "run_s": best["run_s"],
        "bars_per_s": bars / min(seconds) if min(seconds) else None,
        "load_bars_per_s": bars / min(r["load_s"] for r in found) if best["load_s"] else None,
        "rss_mb": max(r["rss_mb"] for r in found),
        "seconds_all": [round(t, 3) for t in seconds],
        "seconds_median": statistics.median(seconds),
    }


def linearity(symbols: int, days: int, *, seed: int, cache: Path, repeats: int) -> None:
    """The project's backtest at 1x, 2x and 4x the days and the symbols, each size `repeats`
    times (round robin, so a busy spell of the machine falls on every size alike): per size the
    minimum and median time (load + run) and their spread; per axis the time ratio of each
    doubling beside its bars ratio, the least-squares line time = fixed + per_scale * scale on
    the minima, and the headline: the 2x-to-4x step in time over the 1x-to-2x step, which the
    fixed costs cancel out of (2 when time is linear in the axis, 4 when quadratic)."""
    runs = {"days": [(symbols, days * k) for k in (1, 2, 4)],
            "symbols": [(symbols * k, days) for k in (1, 2, 4)]}  # fmt: skip
    for axis, sizes in runs.items():
        sets = [universe(count, length, seed, cache) for count, length in sizes]
        bars = [run_child("pyarrow", data)["rows"] for data in sets]
        times: list[list[float]] = [[] for _ in sizes]
        runs_s: list[list[float]] = [[] for _ in sizes]
        peaks: list[list[float]] = [[] for _ in sizes]
        for _ in range(repeats):
            for at, data in enumerate(sets):
                found = run_child("project", data)
                times[at].append(found["load_s"] + found["run_s"])
                runs_s[at].append(found["run_s"])
                peaks[at].append(found["rss_mb"])
        scale = [(c * n) / (sizes[0][0] * sizes[0][1]) for c, n in sizes]
        best = [min(t) for t in times]
        for at, (count, length) in enumerate(sizes):
            note(f"linearity {axis}: {count} symbols x {length} days, {bars[at]} bars: min "
                 f"{best[at]:.2f} s, median {statistics.median(times[at]):.2f} s "
                 f"over {repeats}")  # fmt: skip
            emit("backtest", "linearity", best[at], "s", axis=axis, symbols=count, days=length,
                 bars=bars[at], scale=scale[at], repeats=repeats,
                 seconds=[round(t, 3) for t in times[at]],
                 median_s=statistics.median(times[at]), spread=_spread(times[at]),
                 run_min_s=min(runs_s[at]), rss_mb=max(peaks[at]), time_ratio=best[at] / best[0],
                 bars_ratio=bars[at] / bars[0])  # fmt: skip
        doublings = [
            {"from": sizes[at - 1], "to": sizes[at], "time_ratio": best[at] / best[at - 1],
             "time_ratio_range": [min(times[at]) / max(times[at - 1]),
                                  max(times[at]) / min(times[at - 1])],
             "bars_ratio": bars[at] / bars[at - 1]}
            for at in range(1, len(sizes))
        ]  # fmt: skip
        fixed, per_scale = _line(scale, best)
        growth = _step_ratio(best)
        run_best = [min(r) for r in runs_s]  # the sessions alone, without the files' load
        note(f"linearity {axis}: time per doubling "
             + ", ".join(f"{d['time_ratio']:.2f}x (bars {d['bars_ratio']:.2f}x)"
                         for d in doublings)
             + f"; time = {fixed:.2f} s + {per_scale:.2f} s per 1x; the 2x-to-4x step over the "
             f"1x-to-2x step {growth or float('nan'):.2f} (linear 2, quadratic 4); the run alone "
             f"(no load) per doubling {run_best[1] / run_best[0]:.2f}x, "
             f"{run_best[2] / run_best[1]:.2f}x")  # fmt: skip
        emit("backtest", "linearity_fit", growth, "step ratio (linear 2, quadratic 4)",
             axis=axis, fixed_s=fixed, per_scale_s=per_scale,
             max_residual=max(abs(t - fixed - per_scale * x) / t
                              for x, t in zip(scale, best, strict=True)),
             log_log_slope=_line([math.log(x) for x in scale], [math.log(t) for t in best])[1],
             per_doubling=doublings, repeats=repeats,
             spread_max=max(_spread(t) for t in times),
             run_step_ratio=_step_ratio(run_best),
             run_time_ratios=[run_best[at] / run_best[at - 1] for at in (1, 2)])  # fmt: skip


def _step_ratio(seconds: list[float]) -> float | None:
    """Of times at 1x, 2x, 4x: the 2x-to-4x step over the 1x-to-2x step (None: no first step)."""
    first = seconds[1] - seconds[0]
    return (seconds[2] - seconds[1]) / first if first else None


def _spread(values: list[float]) -> float:
    """(max - min) / min: how far the repeats of one size lie apart."""
    return (max(values) - min(values)) / min(values)


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """The least-squares line of ys on xs: (intercept, slope)."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / den
    return mean_y - slope * mean_x, slope


def memory(
    symbols: int,
    days: int,
    *,
    seed: int,
    cache: Path,
    target_days: int,
    store: Literal["memory", "duckdb"],
) -> None:
    """The project's resident set after each simulated day of SYMBOLS x DAYS (the backtest's
    store in memory, or DuckDB in a scratch data_dir), its growth per day over the second half
    (past the first days' warm-up), and a straight-line projection to `target_days` days."""
    data = dataclasses.replace(universe(symbols, days, seed, cache), store=store)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["FIN_AGENT_DATA_DIR"] = scratch
        found = run_child("project", data)
    by_day: list[float] = found["rss_by_day"]
    half = len(by_day) // 2
    per_day = (by_day[-1] - by_day[half - 1]) / (len(by_day) - half) if half else None
    projected = by_day[-1] + per_day * (target_days - len(by_day)) if per_day else None
    note(f"memory: {symbols} symbols x {days} days ({store} store): RSS after loading "
         f"{found['rss_after_load']:.0f} MB, after day 1 {by_day[0]:.0f} MB, after day "
         f"{len(by_day)} {by_day[-1]:.0f} MB, peak {found['rss_mb']:.0f} MB")  # fmt: skip
    emit("backtest", "rss_growth_per_day", per_day, "MB/day", symbols=symbols, days=days,
         store=store, rss_after_load_mb=found["rss_after_load"],
         rss_by_day=[round(v, 1) for v in by_day], peak_rss_mb=found["rss_mb"],
         load_s=found["load_s"], run_s=found["run_s"], target_days=target_days,
         projected_rss_mb=projected)  # fmt: skip


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def shared_data() -> DataSet | None:
    if not (SHARED / AV_MINUTES).exists():
        note(f"shared data not found at {SHARED}: skipping the shared data set")
        return None
    return DataSet(name="shared", daily=SHARED / AV_DAILY, minutes=SHARED / AV_MINUTES,
                   first=date(2019, 2, 11), last=date(2019, 2, 15), tz="America/New_York",
                   stamp="end", gap_min_pct="1")  # fmt: skip


def universe(symbols: int, days: int, seed: int, cache: Path) -> DataSet:
    """The synthetic universe's files, written on first use."""
    folder = cache / f"universe-{symbols}-{days}-{seed}"
    daily, minutes = folder / "daily.parquet", folder / "minutes.parquet"
    if not minutes.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shorter = _shorter_universe(symbols, days, seed, cache)
        note(f"writing the synthetic universe ({symbols} symbols, {days} days) to {folder}"
             + (f", its first days copied from {shorter.parent}" if shorter else ""))  # fmt: skip
        asyncio.run(write_universe(symbols, days, seed, daily, minutes, reuse=shorter))
    sessions = _sessions(days)
    return DataSet(name="universe", daily=daily, minutes=minutes, first=sessions[0],
                   last=sessions[-1], tz="UTC", stamp="start", gap_min_pct="4")  # fmt: skip


def _shorter_universe(symbols: int, days: int, seed: int, cache: Path) -> Path | None:
    """The minute file of the longest cached universe of these symbols and seed with fewer
    days: the simulator's bars depend only on (seed, symbol, day), so its days are ours."""
    found: list[tuple[int, Path]] = []
    for folder in cache.glob(f"universe-{symbols}-*-{seed}"):
        length = folder.name.split("-")[2]
        if length.isdigit() and int(length) < days and (folder / "minutes.parquet").exists():
            found.append((int(length), folder / "minutes.parquet"))
    return max(found)[1] if found else None


def _sessions(days: int) -> list[date]:
    from fin_agent.adapters.memory import FixedCalendar

    calendar = FixedCalendar()
    found = calendar.sessions(UNIVERSE_START, UNIVERSE_START + timedelta(days=3 * days + 10))
    return [s.day for s in found[:days]]


async def write_universe(
    symbols: int, days: int, seed: int, daily: Path, minutes: Path, *, reuse: Path | None = None
) -> None:
    """Daily bars of every symbol (history and the days), 1-minute bars of each day's gappers,
    one row group per day (the first days' row groups copied from `reuse` when given)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fin_agent.adapters.memory import FixedCalendar
    from fin_agent.adapters.simulator.market import SimulatedMarket

    market = SimulatedMarket(seed=seed, calendar=FixedCalendar(), universe_size=symbols)
    sessions = _sessions(days)
    history = 3 * 14 + 1 + 2
    columns: dict[str, list[Any]] = {k: [] for k in ("symbol", "datetime", "open", "high", "low",
                                                    "close", "volume")}  # fmt: skip
    for name in await market.symbols():
        after = sessions[-1] + timedelta(days=1)
        for day_bar in await market.daily_bars(name, after, history + days):
            for key, value in zip(columns, (name, day_bar.session, float(day_bar.open),
                                            float(day_bar.high), float(day_bar.low),
                                            float(day_bar.close), day_bar.volume),
                                  strict=True):  # fmt: skip
                columns[key].append(value)
    pq.write_table(pa.table(columns), daily)
    fields: list[Any] = [("symbol", pa.string()), ("datetime", pa.timestamp("us", tz="UTC"))]
    fields += [(name, pa.float64()) for name in ("open", "high", "low", "close")]
    schema = pa.schema([*fields, ("volume", pa.int64())])
    with pq.ParquetWriter(minutes, schema) as writer:
        done = 0
        if reuse is not None:
            source = pq.ParquetFile(reuse)
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group).cast(schema))
            done = source.num_row_groups
        for day in sessions[done:]:
            rows: dict[str, list[Any]] = {k: [] for k in schema.names}
            gappers = market.gappers(day)
            bars = [b for name in gappers for b in market.premarket_bars(name, day)]
            bars += await market.session_bars(day, gappers)
            for bar in bars:
                for key, value in zip(rows, (bar.symbol, bar.start, float(bar.open),
                                             float(bar.high), float(bar.low), float(bar.close),
                                             bar.volume), strict=True):  # fmt: skip
                    rows[key].append(value)
            writer.write_table(pa.table(rows, schema=schema))
            note(f"  {day}: {len(gappers)} gappers, {len(bars)} minute bars")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=7000, help="synthetic universe size")
    parser.add_argument("--days", type=int, default=3, help="sessions of the synthetic universe")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "fin_agent_bench_backtest"
    )
    parser.add_argument("--only", choices=("shared", "universe"), help="run one data set")
    parser.add_argument(
        "--linearity",
        type=int,
        nargs=2,
        metavar=("SYMBOLS", "DAYS"),
        help="instead of the comparison: the project alone on SYMBOLS x DAYS of the synthetic "
        "universe, then 2x and 4x the days and 2x and 4x the symbols, with the time ratios",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each contender (the comparison) or of each size (--linearity): best and "
        "median",
    )
    parser.add_argument(
        "--memory",
        type=int,
        nargs=2,
        metavar=("SYMBOLS", "DAYS"),
        help="instead of the comparison: the project alone on SYMBOLS x DAYS, its resident set "
        "after each day, the growth per day and a projection to --target-days",
    )
    parser.add_argument("--target-days", type=int, default=250, help="--memory's projection")
    parser.add_argument(
        "--store", choices=("memory", "duckdb"), default="memory", help="--memory's store"
    )
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_logs()
    if args.child:
        raw = json.loads(args.spec)
        data = DataSet(**{**raw, "daily": Path(raw["daily"]), "minutes": Path(raw["minutes"]),
                          "first": date.fromisoformat(raw["first"]),
                          "last": date.fromisoformat(raw["last"])})  # fmt: skip
        run = {"project": child_project, "backtrader": child_backtrader, "pyarrow": child_pyarrow}
        result = run[args.child](data)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result), flush=True)
        return 0
    if args.linearity:
        linearity(*args.linearity, seed=args.seed, cache=args.cache, repeats=args.repeats)
        return 0
    if args.memory:
        memory(*args.memory, seed=args.seed, cache=args.cache, target_days=args.target_days,
               store=args.store)  # fmt: skip
        return 0
    sets: list[DataSet] = []
    if args.only in (None, "shared") and (found := shared_data()) is not None:
        sets.append(found)
    if args.only in (None, "universe"):
        sets.append(universe(args.symbols, args.days, args.seed, args.cache))
    equal = [compare(data, args.repeats) for data in sets]
    return 0 if all(equal) else 1


if __name__ == "__main__":
    sys.exit(main())
