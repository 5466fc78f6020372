"""The servers a chaos run needs, all private: a PostgreSQL cluster and redis-servers on free ports.

The cluster is `tests/pg_cluster.py`'s `PostgresCluster` (initdb and pg_ctl into a folder under
/tmp, as the `postgres` OS user when root), the redis-servers `tests/support.py`'s `RedisServer`.
Every run gets a fresh database owned by a non-superuser role (`chaos_agent`), which is how the
agent connects: a superuser could not have its INSERT privilege revoked.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from fin_agent.adapters.redis.embedded import find_redis_server
from pg_cluster import PostgresCluster, find_pg_bin
from support import RedisServer, start_redis

AGENT_ROLE = "chaos_agent"


class MissingServer(RuntimeError):
    """A server binary (initdb/pg_ctl, redis-server) the suite needs is not installed."""


def missing_binaries() -> str | None:
    """What is missing to run the suite, or None."""
    bin_dir = find_pg_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        return "no PostgreSQL server binaries (initdb, pg_ctl): set FIN_AGENT_TEST_PG_BIN"
    try:
        find_redis_server()
    except Exception as exc:  # whatever it raises says what is missing
        return f"no redis-server: {exc}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` OS user to run initdb as"
    return None


def new_cluster(folder: Path | None = None) -> PostgresCluster:
    """A private cluster, initialised and started, in `folder` (a new one under /tmp if None;
    its parents must be open to the `postgres` user when root)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise MissingServer("no PostgreSQL server binaries (initdb, pg_ctl)")
    folder = folder or Path(tempfile.mkdtemp(prefix="fin-chaos-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o700)
    cluster = PostgresCluster(bin_dir, folder)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def admin_dsn(cluster: PostgresCluster, database: str = "postgres") -> str:
    """The superuser's DSN of `database` on `cluster`."""
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{database}"


def agent_dsn(cluster: PostgresCluster, database: str) -> str:
    """The agent role's DSN of `database` on `cluster`."""
    return f"postgresql://{AGENT_ROLE}@127.0.0.1:{cluster.port}/{database}"


async def create_database(cluster: PostgresCluster, database: str) -> str:
    """A fresh database owned by the agent's role (created once); the agent's DSN of it."""
    con = await asyncpg.connect(admin_dsn(cluster), timeout=10)
    try:
        if not await con.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", AGENT_ROLE):
            await con.execute(f"CREATE ROLE {AGENT_ROLE} LOGIN NOSUPERUSER")
        await con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await con.execute(f'CREATE DATABASE "{database}" OWNER {AGENT_ROLE}')
    finally:
        await con.close()
    return agent_dsn(cluster, database)


async def set_inserts(cluster: PostgresCluster, database: str, *, allowed: bool) -> None:
    """GRANT or REVOKE INSERT on every table of `database`'s public schema for the agent's role."""
    con = await asyncpg.connect(admin_dsn(cluster, database), timeout=10)
    try:
        tables = "ON ALL TABLES IN SCHEMA public"
        grant = f"GRANT INSERT {tables} TO" if allowed else f"REVOKE INSERT {tables} FROM"
        await con.execute(f"{grant} {AGENT_ROLE}")
    finally:
        await con.close()


def new_redis(folder: Path, *, appendonly: bool) -> RedisServer:
    """A started redis-server on a free port with its data in `folder`."""
    return start_redis(find_redis_server(), folder, appendonly=appendonly)


def restart_redis_empty(server: RedisServer) -> int:
    """Kill the server, delete its data, start it again on the same port: Redis lost its data.
    The number of keys it held (what was lost)."""
    client = server.client()
    try:
        keys = int(client.dbsize())
    finally:
        client.close()
    server.kill()
    for path in server.folder.iterdir():
        if path.name != server.log_path.name:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    server.start()
    return keys


@contextlib.contextmanager
def small_disk(size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` mounted on a new folder under /tmp (owned by `postgres` when root),
    unmounted and removed after. Raises MissingServer when it cannot be mounted (not root, or
    no CAP_SYS_ADMIN)."""
    folder = Path(tempfile.mkdtemp(prefix="fin-chaos-disk-", dir="/tmp"))
    options = f"size={size_mb}m,mode=700"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        options += f",uid={entry.pw_uid},gid={entry.pw_gid}"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        folder.rmdir()
        raise MissingServer(f"cannot mount a tmpfs for the disk-full fault: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)  # busy: detach it
        with contextlib.suppress(OSError):
            folder.rmdir()


def fill_disk(folder: Path, number: int) -> Path:
    """Fill the filesystem of `folder` to the last byte with ballast file `number`; its path."""
    ballast = folder / f"ballast-{number}"
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with ballast.open("wb") as handle:
        with contextlib.suppress(OSError):
            os.posix_fallocate(handle.fileno(), 0, free)
        block = b"\0" * (1 << 16)
        with contextlib.suppress(OSError):  # whatever fallocate left, written until ENOSPC
            while True:
                handle.write(block)
                handle.flush()
    return ballast
