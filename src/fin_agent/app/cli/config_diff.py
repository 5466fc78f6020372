"""`fin-agent config diff [--from VERSION] [--to VERSION]`: what changed between config versions."""

from __future__ import annotations

import argparse
from typing import TextIO

from fin_agent.app.config.settings import Settings
from fin_agent.app.config.version import ConfigHistory, config_version, diff, effective, render_diff


def config_diff_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Compare two recorded versions; by default the last one the agent ran with and config.yaml."""
    history = ConfigHistory(settings.data_path("config"))
    current, current_version = effective(settings), config_version(settings)
    if args.to:
        new, new_version = history.load(args.to), args.to
    else:
        new, new_version = current, current_version
    if args.from_version:
        old, old_version = history.load(args.from_version), args.from_version
    else:
        earlier = [v for v in history.versions() if v != new_version]
        if not earlier:
            out.write(
                f"{new_version}: no other version recorded under {settings.data_path('config')} "
                "(the agent records each version it runs with)\n"
            )
            return 0
        old_version = earlier[-1]
        old = history.load(old_version)
    out.writelines(line + "\n" for line in render_diff(diff(old, new, old_version, new_version)))
    return 0
