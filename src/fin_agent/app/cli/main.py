"""The `fin-agent` command line: demo, backtest, scan and config check.

Bad input (a broken config, a bad bar file, a date range without data) prints one clear error and
exits 2; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from opentelemetry.sdk.trace import TracerProvider

from fin_agent.app.bootstrap import (
    backtest_settings,
    build_live,
    build_replay,
    build_simulation,
    load_bar_files,
    local_alpaca,
    running,
    session_replay,
    wall_clock,
)
from fin_agent.app.cli import config_check
from fin_agent.app.cli.config_diff import config_diff_command
from fin_agent.app.cli.ctl import add_ctl_parser, ctl_command
from fin_agent.app.cli.dashboard import dashboard_command
from fin_agent.app.cli.demo_dashboard import demo_with_dashboard
from fin_agent.app.cli.dlq import dlq_command
from fin_agent.app.cli.optimize import add_optimize_arguments, optimize_command
from fin_agent.app.cli.outline_view import backtest_report
from fin_agent.app.cli.report_view import report_json, report_text
from fin_agent.app.cli.scan_view import scan_json, scan_text
from fin_agent.app.cli.schedule import schedule_command
from fin_agent.app.cli.store import db_command, replay_command
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.sources import CONFIG_ENV_VAR
from fin_agent.app.container import Container
from fin_agent.app.day.outline import DayOutline, outline_days
from fin_agent.app.heap import loaded_out_of_gc
from fin_agent.app.live.runner import run_live
from fin_agent.app.live.session_replay import replay_session
from fin_agent.app.observability.logs import configure_logging
from fin_agent.app.observability.tracing import configure_tracing
from fin_agent.app.report import gather, write_report
from fin_agent.app.runner import run_agent, run_sessions, scan_session
from fin_agent.domain.errors import FinAgentError, PermanentError
from fin_agent.domain.gap_scanner import ScanResult
from fin_agent.domain.report import DailyReport, summarize
from fin_agent.domain.values import Session
from fin_agent.ports.market_data import RecordedMarketData

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fin-agent", description=__doc__)
    parser.add_argument("--config", type=Path, help="config file (default: ./config.yaml)")
    parser.add_argument("--profile", choices=["dev", "paper", "prod"], help="config profile")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run simulated trading days end to end")
    demo.add_argument("--seed", type=int, help="simulator seed (default: simulator.seed)")
    demo.add_argument("--days", type=_positive, default=1, help="sessions to run (default 1)")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--bus", choices=["memory", "redis"], default="memory", help="event bus")
    demo.add_argument(
        "--broker",
        choices=["paper", "alpaca"],
        default="paper",
        help="paper broker, or AlpacaBroker on a local Alpaca server started in this process",
    )
    demo.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the dashboard beside the day (paced, and kept up until Ctrl-C, in a terminal)",
    )
    demo.add_argument(
        "--store", choices=["memory", "duckdb", "timescale"], default="memory", help="event store"
    )

    run = commands.add_parser("run", help="run the agent on the bus until stopped")
    run.add_argument("--bus", choices=["memory", "redis"], help="event bus (default: bus.kind)")
    run.add_argument("--days", type=_positive, help="stop after this many sessions")
    run.add_argument(
        "--keep-serving",
        action="store_true",
        help="after the sessions, keep serving HTTP until SIGINT/SIGTERM",
    )
    run.add_argument(
        "--pace-secs",
        type=float,
        default=0.0,
        help="simulator: wait this long after each minute of bars (to watch, or steer, a day)",
    )
    run.add_argument(
        "--session-replay",
        type=_date,
        metavar="DAY",
        help="run DAY of the --data bar files through the live wiring against local servers",
    )
    run.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="--session-replay: simulated seconds per second (default 60; 0 = as fast as possible)",
    )
    run.add_argument("--data", type=Path, nargs="+", help="--session-replay: the bar files")
    run.add_argument("--bar-stamp", choices=["start", "end", "auto"], help="as for backtest")
    run.add_argument("--tz", help="as for backtest: time zone of naive timestamps")
    run.add_argument("--factors", type=Path, help="as for backtest: folder of split factor files")
    run.add_argument(
        "--start-at",
        type=_instant,
        help="live: the agent's clock starts at this instant (ISO 8601 with its offset, such as "
        "2026-12-04T08:59:20-05:00) and runs at wall speed: try a pre-market scan now, against "
        "local servers",
    )

    dlq = commands.add_parser("dlq", help="inspect and replay the dead-letter stream")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_commands.add_parser("list", help="list dead letters, oldest first")
    dlq_list.add_argument("--limit", type=_positive, default=100)
    dlq_list.add_argument("--json", action="store_true")
    dlq_show = dlq_commands.add_parser("show", help="show one dead letter in full")
    dlq_show.add_argument("id")
    dlq_replay = dlq_commands.add_parser("replay", help="put dead letters back on their stream")
    dlq_replay.add_argument("ids", nargs="+", metavar="ID")
    dlq_commands.add_parser("purge", help="delete every dead letter")

    backtest = commands.add_parser("backtest", help="replay bar files day by day")
    _add_data_arguments(backtest)
    backtest.add_argument(
        "--from", dest="start", type=_date, required=True, help="first day, YYYY-MM-DD"
    )
    backtest.add_argument(
        "--to", dest="end", type=_date, required=True, help="last day, YYYY-MM-DD"
    )
    backtest.add_argument("--json", action="store_true", help="print the report as JSON")
    backtest.add_argument(
        "--store",
        choices=("memory", "duckdb"),
        default="memory",
        help="where the run's events are kept: memory (default, fastest; grows with the days) or "
        "duckdb (a scratch DuckDB file, deleted at the end: bounded memory for long universe runs)",
    )
    backtest.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write report.html (self-contained) and report.json into DIR",
    )

    scan = commands.add_parser(
        "scan", help="one day's pre-market scan of bar files: candidates and rejections"
    )
    _add_data_arguments(scan)
    scan.add_argument("--date", type=_date, required=True, help="the day to scan, YYYY-MM-DD")
    scan.add_argument("--json", action="store_true", help="print the scan as JSON")

    optimize = commands.add_parser(
        "optimize", help="tune the strategy with Optuna over walk-forward backtests of bar files"
    )
    _add_data_arguments(optimize)
    optimize.add_argument(
        "--from", dest="start", type=_date, required=True, help="first day, YYYY-MM-DD"
    )
    optimize.add_argument(
        "--to", dest="end", type=_date, required=True, help="last day, YYYY-MM-DD"
    )
    add_optimize_arguments(optimize)

    dashboard = commands.add_parser("dashboard", help="serve the Streamlit dashboard")
    dashboard.add_argument(
        "--agent-url", help="the agent's URL (default: FIN_AGENT_DASHBOARD_AGENT_URL, else http)"
    )

    schedule = commands.add_parser("schedule", help="the next runs of every job, with reasons")
    schedule.add_argument("--from", dest="start", type=_date, help="first day (default: now)")
    schedule.add_argument("--count", type=_positive, default=10, help="runs to print (default 10)")
    schedule.add_argument("--json", action="store_true", help="print a JSON list")

    db = commands.add_parser("db", help="the event store")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("migrate", help="bring the store's schema to the latest version")

    replay = commands.add_parser("replay", help="re-run a stored day and compare its decisions")
    replay.add_argument("--day", type=_date, required=True, help="trading day, YYYY-MM-DD")
    replay.add_argument("--json", action="store_true", help="print the differences as JSON")

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate and print the effective config")
    check.add_argument("--config", dest="check_config", type=Path, help="config file to check")
    config_diff = config_commands.add_parser("diff", help="show what changed between versions")
    config_diff.add_argument(
        "--from", dest="from_version", help="older version (default: the last one recorded)"
    )
    config_diff.add_argument("--to", help="newer version (default: config.yaml as it is now)")
    add_ctl_parser(commands)
    return parser


def _add_data_arguments(command: argparse.ArgumentParser) -> None:
    """The bar files and their conventions, read alike by `backtest` and `scan`."""
    command.add_argument(
        "--data", type=Path, nargs="+", required=True, help="daily and/or intraday bar files"
    )
    command.add_argument(
        "--bar-stamp", choices=["start", "end", "auto"], help="naive stamps mark bar start or end"
    )
    command.add_argument("--tz", help="time zone of naive timestamps (default: replay.timezone)")
    command.add_argument("--factors", type=Path, help="folder of split factor files")
    add_overlay_argument(command)


def add_overlay_argument(command: argparse.ArgumentParser) -> None:
    """`--config FILE` after a command: an overlay over the base config (repeatable)."""
    command.add_argument(
        "--config",
        dest="overlays",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="overlay FILE over the base config: only the keys it sets change (repeatable; "
        "`fin-agent optimize` writes one); unknown keys are refused",
    )


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 instant") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset: add one, such as -05:00")
    return at


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _print_report(
    reports: Sequence[DailyReport], settings: Settings, as_json: bool, out: TextIO
) -> None:
    start = reports[0].performance.start_equity if reports else settings.strategy_equity()
    summary = summarize(start, reports)
    out.write((report_json(reports, summary) if as_json else report_text(reports, summary)) + "\n")


def _demo(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    # A demo through Redis gets streams of its own, deleted at the end: the same seed twice must
    # not look like a redelivery to the consumers' dedupe.
    prefix = f"demo-{uuid.uuid4().hex[:12]}" if args.bus == "redis" else None
    first = settings.simulator.start_date

    async def go() -> list[DailyReport]:
        if args.broker == "alpaca":
            async with local_alpaca(settings) as on_local:
                return await trade(on_local)
        return await trade(settings)

    async def trade(settings: Settings) -> list[DailyReport]:
        container = await build_simulation(
            settings,
            seed=args.seed,
            bus=args.bus,
            store=args.store,
            stream_prefix=prefix,
            delete_streams=True,  # after the consumers stop
        )
        sessions = container.calendar.sessions(first, first + timedelta(days=7 * args.days + 14))
        if args.dashboard:
            return await demo_with_dashboard(
                container,
                sessions[: args.days],
                settings.strategy_equity(),
                args,
                out,
                interactive=sys.stdin.isatty() and sys.stdout.isatty(),
            )
        async with running(container):
            return await run_sessions(container, sessions[: args.days], settings.strategy_equity())

    reports = asyncio.run(go())
    _print_report(reports, settings, args.json, out)
    return 0


def _run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """The running agent on the configured market, until stopped: live (finnhub) on the
    schedule's jobs, or simulated sessions back to back."""
    if args.session_replay is not None:  # whatever market.source says: the day's own servers
        return _session_replay(args, settings, out)
    source = settings.market.source
    if source == "replay":
        raise UsageError(
            "market.source replay is for `fin-agent backtest` (recorded files): "
            "`fin-agent run` takes market.source simulator or finnhub"
        )
    if args.start_at is not None and (source != "finnhub" or args.session_replay is not None):
        raise UsageError(
            "--start-at moves a live agent's clock: use it with market.source finnhub, "
            "without --session-replay (which has its own clock)"
        )
    config_path = args.config or Path(os.environ.get(CONFIG_ENV_VAR) or "config.yaml")
    if args.data:
        raise UsageError("--data is for --session-replay DAY (or `fin-agent backtest`)")

    async def go() -> int:
        if source == "finnhub":
            clock = wall_clock(args.start_at) if args.start_at else None
            live = await build_live(settings, bus=args.bus, out=out, clock=clock)
            return await run_live(
                live,
                days=args.days,
                out=out,
                keep_serving=args.keep_serving,
                config_path=config_path,
            )
        container = await build_simulation(settings, bus=args.bus)
        return await run_agent(
            container,
            days=args.days,
            out=out,
            keep_serving=args.keep_serving,
            config_path=config_path,
            pace_secs=args.pace_secs,
        )

    return asyncio.run(go())


def _session_replay(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`run --session-replay DAY`: the recorded day through the live wiring (local servers)."""
    if not args.data:
        raise UsageError(
            "--session-replay needs the day's bar files: add --data DAILY_FILE MINUTE_FILE"
        )
    if args.speed < 0:
        raise UsageError(f"--speed must be 0 (as fast as possible) or more, got {args.speed}")
    market = _load(args, settings, sys.stderr)
    if args.bus is not None:
        settings = settings.model_copy(
            update={"bus": settings.bus.model_copy(update={"kind": args.bus})}
        )

    async def go() -> int:
        async with session_replay(
            settings, args.session_replay, market, speed=args.speed, out=out
        ) as replay:
            return await replay_session(
                replay.agent,
                replay.driver,
                replay.tape,
                start=replay.start,
                end=replay.end,
                out=out,
                keep_serving=args.keep_serving,
            )

    return asyncio.run(go())


def _load(args: argparse.Namespace, settings: Settings, err: TextIO) -> RecordedMarketData:
    """The bar files of `--data` under the flags' or replay's conventions; warnings to `err`."""
    factors = args.factors or settings.replay.factors_dir
    loaded = load_bar_files(
        args.data,
        timezone=args.tz or settings.replay.timezone,
        bar_stamp=args.bar_stamp or settings.replay.bar_stamp,
        factors_dir=Path(factors) if factors else None,
    )
    err.writelines(f"warning: {warning}\n" for warning in loaded.warnings)
    return loaded.market


def _days_between(market: RecordedMarketData, start: date, end: date, fix: str) -> list[date]:
    """The data's sessions from `start` to `end`; a `UsageError` naming the span if none."""
    days = [d for d in market.sessions() if start <= d <= end]
    if not days:
        covered = market.sessions()
        span = f"{covered[0]}..{covered[-1]}" if covered else "no sessions at all"
        between = f"on {start}" if start == end else f"between {start} and {end}"
        raise UsageError(f"no data {between}: the files cover {span}; {fix}")
    return days


def _backtest(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    if args.end < args.start:
        raise UsageError(f"--to {args.end} is before --from {args.start}: swap them")
    market = _load(args, settings, err)
    days = _days_between(market, args.start, args.end, "choose --from/--to inside that span")

    async def go(settings: Settings) -> tuple[list[DailyReport], list[DayOutline]]:
        container = await build_replay(settings, market, store=args.store)
        sessions = [s for d in days if (s := container.calendar.session(d)) is not None]
        async with running(container):
            reports = await run_sessions(container, sessions, settings.strategy_equity())
            if args.report is not None:
                await _write_report(args.report, container, sessions, reports, err)
            return reports, await outline_days(container.store, [r.day for r in reports])

    with loaded_out_of_gc(), backtest_settings(settings, args.store) as run_settings:
        reports, outlines = asyncio.run(go(run_settings))
    start = reports[0].performance.start_equity if reports else settings.strategy_equity()
    summary = summarize(start, reports)
    out.write(backtest_report(reports, summary, outlines, as_json=args.json) + "\n")
    return 0


def _scan(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`fin-agent scan`: the day's scan exactly as the backtest makes it, without trading."""
    market = _load(args, settings, err)
    _days_between(market, args.date, args.date, "choose a --date inside that span")

    async def go() -> ScanResult:
        container = await build_replay(settings, market)
        session = container.calendar.session(args.date)
        if session is None:
            raise UsageError(f"{args.date} is not a trading session: choose a weekday session")
        async with running(container):
            return await scan_session(container, session)

    result = asyncio.run(go())
    zone = ZoneInfo(settings.timezone)
    out.write((scan_json(result) if args.json else scan_text(result, zone)) + "\n")
    return 0


async def _write_report(
    directory: Path,
    container: Container,
    sessions: Sequence[Session],
    reports: Sequence[DailyReport],
    err: TextIO,
) -> None:
    """`--report DIR`: report.json and report.html of the run, said on stderr."""
    settings = container.settings
    result = await gather(
        container, sessions, reports, settings.strategy_equity(), settings.report.benchmark_symbol
    )
    try:
        data, page = write_report(directory, result)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report into {directory}: {exc}; choose another --report DIR"
        ) from None
    err.write(f"report: {page} and {data}\n")


class UsageError(PermanentError):
    """A command-line argument that cannot work; the message says which and why."""


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Entry point of the `fin-agent` console script; returns the process exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    if args.command == "config" and args.config_command == "check":
        path = args.check_config or args.config
        return config_check.run(path, args.profile, stdout=out, stderr=err)
    provider: TracerProvider | None = None
    try:
        overlays = getattr(args, "overlays", ())
        settings = load_settings(args.config, profile=args.profile, overlays=overlays)
        configure_logging(
            settings.logging.level, settings.logging.format, secrets=settings.secret_values()
        )
        provider = configure_tracing(settings.tracing)
        if args.command == "demo":
            return _demo(args, settings, out)
        if args.command == "run":
            return _run(args, settings, out)
        if args.command == "dlq":
            return asyncio.run(dlq_command(args, settings, out))
        if args.command == "dashboard":
            return dashboard_command(args, settings, out)
        if args.command == "schedule":
            return schedule_command(args, settings, out)
        if args.command == "db":
            return asyncio.run(db_command(args, settings, out))
        if args.command == "replay":
            return asyncio.run(replay_command(args, settings, out))
        if args.command == "config":
            return config_diff_command(args, settings, out)
        if args.command == "ctl":
            return ctl_command(args, settings, out, err)
        if args.command == "scan":
            return _scan(args, settings, out, err)
        if args.command == "optimize":
            return optimize_command(args, settings, out, err)
        return _backtest(args, settings, out, err)
    except FinAgentError as exc:
        err.write(f"fin-agent: error: {exc}\n")
        return EXIT_USAGE
    finally:
        if provider is not None:
            provider.shutdown()  # flush spans still batched for export


if __name__ == "__main__":
    raise SystemExit(main())
