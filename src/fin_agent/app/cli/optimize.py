"""`fin-agent optimize`: tune the strategy's settings with Optuna over backtests of bar files,
walked forward, in worker processes; resumable; writes the best parameters as an overlay."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from fin_agent.app.bootstrap import load_bar_files
from fin_agent.app.bootstrap.store import database_url
from fin_agent.app.config.settings import Settings
from fin_agent.app.research.optimizer import counts_text, open_study, run_study
from fin_agent.app.research.storage import StudyError, StudyPlace, study_lock
from fin_agent.app.research.summary import summarize, summary_text, write_summary
from fin_agent.app.research.trials import RunSpec
from fin_agent.domain.walk_forward import WalkForwardError, folds

EXIT_INTERRUPTED = 130


def add_optimize_arguments(command: argparse.ArgumentParser) -> None:
    """The flags of `optimize` beyond the data flags it shares with `backtest`."""
    command.add_argument("--trials", type=int, required=True, help="trials in the study in all")
    command.add_argument(
        "--jobs", type=int, default=1, help="trials run at once, one worker process each"
    )


def optimize_command(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """Run (or resume) the study, then print and write its summary and overlay."""
    if args.trials < 1 or args.jobs < 1:
        raise StudyError("--trials and --jobs must be at least 1")
    if args.end < args.start:
        raise StudyError(f"--to {args.end} is before --from {args.start}: swap them")
    factors = args.factors or settings.replay.factors_dir
    timezone = args.tz or settings.replay.timezone
    bar_stamp = args.bar_stamp or settings.replay.bar_stamp
    loaded = load_bar_files(
        args.data,
        timezone=timezone,
        bar_stamp=bar_stamp,
        factors_dir=Path(factors) if factors else None,
    )
    err.writelines(f"warning: {warning}\n" for warning in loaded.warnings)
    sessions = tuple(d for d in loaded.market.sessions() if args.start <= d <= args.end)
    optimize = settings.optimize
    try:
        fold_list = folds(sessions, optimize.train_days, optimize.test_days)
    except WalkForwardError as exc:
        raise StudyError(str(exc)) from None
    spec = RunSpec(
        config_path=args.config,
        profile=args.profile,
        overlays=tuple(args.overlays),
        data=tuple(p.absolute() for p in args.data),
        timezone=timezone,
        bar_stamp=bar_stamp,
        factors_dir=Path(factors) if factors else None,
        sessions=sessions,
        folds=tuple(fold_list),
        place=StudyPlace(
            name=optimize.study,
            folder=settings.data_path("optimize", optimize.study),
            database_url=database_url(settings) if settings.store.kind == "timescale" else None,
        ),
    )
    with study_lock(spec.place):
        study = open_study(spec, settings)
        counts = run_study(study, spec, settings, trials=args.trials, jobs=args.jobs, err=err)
        summary = summarize(study, spec, settings)
        overlay = write_summary(summary, spec)
    out.write(counts_text(study, args.trials, counts) + "\n")
    out.write(summary_text(summary, overlay) + "\n")
    if counts.interrupted:
        err.write("interrupted: run the same command again to resume the study\n")
        return EXIT_INTERRUPTED
    return 0
