"""`fin-agent config check`: validate the configuration and print it as the agent would use it.

Exit code 0 prints the effective config (secrets masked); 2 lists every problem with its fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from fin_agent.app.config.effective import render_effective
from fin_agent.app.config.settings import load_settings
from fin_agent.domain.errors import ConfigError

EXIT_OK = 0
EXIT_INVALID = 2


def run(
    config_path: Path | None,
    profile: str | None,
    *,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
) -> int:
    """Print the effective config to `stdout` and return 0, or the problems to `stderr` and 2.

    `environ` (default: the process environment) and `secrets_dir` are as for `load_settings`.
    """
    try:
        settings = load_settings(
            config_path, profile=profile, environ=environ, secrets_dir=secrets_dir
        )
    except ConfigError as exc:
        stderr.write("config.yaml is invalid:\n")
        for line in str(exc).splitlines():
            stderr.write(f"  {line}\n")
        return EXIT_INVALID
    stdout.write(f"# effective configuration, profile {settings.profile}\n")
    stdout.write(render_effective(settings))
    return EXIT_OK
