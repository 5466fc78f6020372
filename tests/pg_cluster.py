"""Throwaway PostgreSQL clusters for the tests that stop, restart or reconfigure their server.

Such a test never touches the machine's servers (5432, 5433): `PostgresCluster` runs `initdb` into
a fresh folder under /tmp and `pg_ctl start/stop` on a free port of 127.0.0.1, with the binaries of
`/usr/lib/postgresql/<version>/bin` (or `FIN_AGENT_TEST_PG_BIN`), as the `postgres` OS user when
the tests run as root (initdb refuses root). `preload=True` starts it with
`shared_preload_libraries=timescaledb`: TimescaleDB, when the extension is installed for those
binaries (`../shared/tools/timescaledb install`). `make_cluster` skips, or fails under CI, when
a cluster cannot be made.

Tests import it by name (`from pg_cluster import ...`): `pyproject.toml` puts `tests/` on the path.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from support import in_ci

TIMESCALEDB_LIBRARY = "timescaledb"


def _version_of(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def find_pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl: FIN_AGENT_TEST_PG_BIN, the newest Debian one, or on PATH."""
    configured = os.environ.get("FIN_AGENT_TEST_PG_BIN")
    if configured:
        return Path(configured)
    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").exists()]
    if found:
        return max(found, key=_version_of)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def timescaledb_installed(bin_dir: Path) -> bool:
    """Whether the timescaledb library is installed for the PostgreSQL of `bin_dir`."""
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        done = subprocess.run(
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False
        )
        libdir = Path(done.stdout.strip())
    else:
        libdir = bin_dir.parent / "lib"
    return (libdir / f"{TIMESCALEDB_LIBRARY}.so").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresCluster:
    """A PostgreSQL cluster of our own in `folder`, on a fixed port of 127.0.0.1 once started.

    As root, every server tool runs as the `postgres` OS user (initdb and postgres refuse root),
    and `folder` belongs to that user. `preload` is whether the next start preloads timescaledb.
    """

    def __init__(self, bin_dir: Path, folder: Path, *, preload: bool = False) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.log_path = folder / "postgres.log"
        self.port = 0
        self.preload = preload

    @property
    def dsn(self) -> str:
        """DSN of the `postgres` database as the `postgres` superuser (trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(
        self, tool: str, *args: str, timeout_secs: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_secs, check=False
        )

    def init(self) -> None:
        """initdb with trust auth for the `postgres` superuser."""
        done = self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stdout}{done.stderr}")

    @property
    def running(self) -> bool:
        """True while the postmaster of this data folder runs."""
        return (
            self.data.exists()
            and self._run("pg_ctl", "status", "-D", str(self.data)).returncode == 0
        )

    def start(self) -> None:
        """Start on the same port as before (a free one the first time); wait until it accepts."""
        if self.running:
            return
        for _attempt in range(5):  # a free port may be taken before the server binds it
            port = self.port or _free_port()
            options = (
                f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off -c max_connections=50"
            )
            if self.preload:
                options += (
                    f" -c shared_preload_libraries={TIMESCALEDB_LIBRARY}"
                    " -c timescaledb.telemetry_level=off"
                )
            done = self._run(
                "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path), "-w",
                "-t", "60", "-o", options,
            )  # fmt: skip
            if done.returncode == 0:
                self.port = port
                return
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if "could not bind" not in log or self.port:
                raise RuntimeError(
                    f"pg_ctl start failed: {done.stdout}{done.stderr}\n{log[-2000:]}"
                )
        raise RuntimeError("no free port for PostgreSQL after 5 attempts")

    def stop(self) -> None:
        """Fast shutdown (clients are disconnected); immediate, then SIGKILL, if that hangs."""
        if not self.running:
            return
        done = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")
        if done.returncode == 0:
            return
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "10")
        pid_file = self.data / "postmaster.pid"
        if self.running and pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def destroy(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def skip_or_fail(reason: str) -> None:
    """Fail under CI (it must be able to run the cluster), skip elsewhere."""
    if in_ci():
        pytest.fail(f"CI must be able to run a throwaway PostgreSQL: {reason}")
    pytest.skip(reason)


def make_cluster(*, preload: bool = False) -> PostgresCluster:
    """A new cluster, initialised and started; the caller destroys it. Skips (fails under CI)
    without server binaries, a `postgres` OS user when root, or timescaledb when `preload`."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        skip_or_fail("no PostgreSQL server binaries (initdb, pg_ctl): set FIN_AGENT_TEST_PG_BIN")
    assert bin_dir is not None
    if preload and not timescaledb_installed(bin_dir):
        skip_or_fail(
            f"timescaledb is not installed for {bin_dir.parent}: run "
            "`../shared/tools/timescaledb install`"
        )
    folder = Path(tempfile.mkdtemp(prefix="fin-pg-", dir="/tmp"))  # short: the socket lives here
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            skip_or_fail("running as root without a `postgres` OS user to run initdb as")
        shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o700)
    cluster = PostgresCluster(bin_dir, folder, preload=preload)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster
