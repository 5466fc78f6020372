"""Shared helpers of the benchmarks in `bench/`: arguments, a throwaway Redis, JSON result lines.

Each benchmark prints one JSON object per line on stdout (DESIGN.md section 8) and its progress and
a human summary on stderr, so `bench/NAME.py > results.jsonl` keeps only the results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from fin_agent.adapters.redis.embedded import EmbeddedRedis, find_redis_server

DEFAULT_SECONDS = 20.0
MAX_SECONDS = 60.0


def parse_args(description: str, *, min_seconds: float = 2.0) -> argparse.Namespace:
    """`--seconds N` (measuring time in total, at most 60 s) and `--redis plain|embedded`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"measuring time in total, split across the phases (default {DEFAULT_SECONDS:g}, "
        f"{min_seconds:g} to {MAX_SECONDS:g}); warm-up and drains come on top",
    )
    parser.add_argument(
        "--redis",
        choices=("plain", "embedded"),
        default="plain",
        help="plain: redis-server on a free TCP port without persistence (default); "
        "embedded: the agent's EmbeddedRedis (AOF everysec, Unix socket) in a temp folder",
    )
    args = parser.parse_args()
    if not min_seconds <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between {min_seconds:g} and {MAX_SECONDS:g}")
    return args


def quiet_logs() -> None:
    """Send structlog and logging output to stderr: stdout carries only the JSON results."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)


def note(message: str) -> None:
    """A progress or summary line on stderr."""
    print(message, file=sys.stderr, flush=True)


def emit(
    bench: str,
    metric: str,
    value: float | int | None,
    unit: str | None,
    *,
    reference: float | int | None = None,
    reference_name: str | None = None,
    **extra: Any,
) -> None:
    """Print one result line: `{"bench", "metric", "value", "unit", "reference", ...}`."""
    line: dict[str, Any] = {
        "bench": bench,
        "metric": metric,
        "value": _rounded(value),
        "unit": unit,
        "reference": _rounded(reference),
        "reference_name": reference_name,
        **extra,
    }
    print(json.dumps(line), flush=True)


def _rounded(value: float | int | None) -> float | int | None:
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` percentile (0 < q <= 100) of ascending values; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


@dataclass(frozen=True, slots=True)
class RedisInfo:
    """The server a benchmark runs against."""

    url: str
    version: str
    description: str


@contextlib.contextmanager
def throwaway_redis(kind: str = "plain") -> Iterator[RedisInfo]:
    """A redis-server of this run only, in a temp folder, stopped (and its data gone) at the end.

    `plain`: `redis-server --port <free> --save "" --appendonly no` on 127.0.0.1 (never 6379);
    `embedded`: the agent's `EmbeddedRedis` (AOF everysec, Unix socket when the path fits).
    """
    with _exit_on_sigterm(), tempfile.TemporaryDirectory(prefix="fin-bench-redis-") as folder:
        if kind == "embedded":
            server = EmbeddedRedis(Path(folder) / "redis")
            server.start()
            try:
                version = _server_version(server.url)
                yield RedisInfo(
                    url=server.url,
                    version=version,
                    description=f"EmbeddedRedis (AOF everysec) at {server.url}, redis {version}",
                )
            finally:
                server.stop()
            return
        binary = find_redis_server()
        proc, url = _start_plain(binary, Path(folder))
        try:
            version = _server_version(url)
            yield RedisInfo(
                url=url,
                version=version,
                description=(
                    f'{binary} --port {url.rsplit(":", 1)[1].split("/")[0]} --save "" '
                    f"--appendonly no (redis {version}, TCP 127.0.0.1)"
                ),
            )
        finally:
            _stop_plain(proc, url)


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """SIGTERM (`timeout`, `kill`) raises SystemExit, so the server is stopped on the way out."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_plain(binary: Path, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    log_path = folder / "redis.log"
    for _attempt in range(5):  # the free port may be taken before the server binds it
        port = _free_port()
        args = [
            str(binary),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)),
            *("--save", "", "--appendonly", "no", "--logfile", str(log_path)),
        ]
        with log_path.open("ab") as output:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                cwd=folder,
                start_new_session=True,  # a Ctrl-C of the benchmark must not kill it mid-run
            )
        url = f"redis://127.0.0.1:{port}/0"
        if _wait_ready(proc, url):
            return proc, url
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if "already in use" not in log_path.read_text(errors="replace"):
            break
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-10:])
    raise RuntimeError(f"redis-server {binary} did not start:\n{tail}")


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_secs: float = 10.0) -> bool:
    client = _sync_client(url)
    deadline = time.monotonic() + timeout_secs
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if client.info("server").get("process_id") == proc.pid:
                    return True
            time.sleep(0.01)
        return False
    finally:
        client.close()


def _stop_plain(proc: subprocess.Popen[bytes], url: str) -> None:
    if proc.poll() is not None:
        return
    client = _sync_client(url)
    with contextlib.suppress(redis.RedisError):
        client.shutdown(nosave=True)
    client.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _server_version(url: str) -> str:
    client = _sync_client(url)
    try:
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()


def _sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(redis_server: RedisInfo, **extra: Any) -> dict[str, Any]:
    """Machine facts for the final `environment` line: CPUs, Python, Redis, load, date."""
    try:
        usable_cpus: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cpus = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus,
        "cpu_model": _cpu_model(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "platform": platform.platform(),
        "redis_version": redis_server.version,
        "redis_server": redis_server.description,
        "redis_py": redis.__version__,
        "hiredis": _hiredis(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or None


def _hiredis() -> bool:
    from redis.utils import HIREDIS_AVAILABLE

    return bool(HIREDIS_AVAILABLE)


SERVER = Path(__file__).resolve().parent / "finnhub_local.py"


@contextlib.contextmanager
def finnhub_local_process(
    token: str,
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """bench/finnhub_local.py in a process of its own; yields it and where it listens (its first
    stdout line); stopped with SIGTERM (then killed) at the end."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "finnhub_local.py"),
            "--port",
            "0",
            "--token",
            token,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("bench/finnhub_local.py exited before it said where it listens")
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
