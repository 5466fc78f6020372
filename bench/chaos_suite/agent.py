"""The agent under test, `fin-agent run --bus redis`, as a child process; and a watch on its store.

`Agent` starts, kills (-9) and waits for one agent "installation" (its data folder, store and
Redis): each start is a new process with its own log file, every exit is recorded. `StoreWatch`
polls the run database's event count as the superuser, to time recovery after a fault ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
LOUD_LEVELS = frozenset({"error", "critical"})


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """What one agent installation runs with."""

    name: str
    data_dir: Path
    store_dsn: str
    redis_url: str
    days: int
    seed: int


def fin_agent_command() -> list[str]:
    """`fin-agent` beside this interpreter, else the module through it."""
    script = Path(sys.executable).parent / "fin-agent"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fin_agent.app.cli.main"]


@dataclass(slots=True)
class Exit:
    """One process's end: its code (negative: the signal), and whether the harness killed it."""

    code: int
    killed: bool
    last_error: str = ""


@dataclass(slots=True)
class Agent:
    """One agent installation, started as many times as a fault needs."""

    config: AgentConfig
    exits: list[Exit] = field(default_factory=list)
    starts: int = 0
    _proc: asyncio.subprocess.Process | None = None
    _killed: bool = False

    @property
    def running(self) -> bool:
        """True while a process of this agent runs."""
        return self._proc is not None and self._proc.returncode is None

    def env(self) -> dict[str, str]:
        """The environment of the child: the repo's config, overridden for this run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIN_AGENT_")}
        env.update(
            FIN_AGENT_DATA_DIR=str(self.config.data_dir),
            FIN_AGENT_PROFILE="dev",
            FIN_AGENT_STORE__KIND="timescale",
            FIN_AGENT_STORE__URL=self.config.store_dsn,
            FIN_AGENT_BUS__KIND="redis",
            FIN_AGENT_BUS__REDIS_URL=self.config.redis_url,
            FIN_AGENT_HTTP__PORT="0",
            FIN_AGENT_SIMULATOR__SEED=str(self.config.seed),
            FIN_AGENT_LOGGING__FORMAT="json",
            FIN_AGENT_TRACING__EXPORTER="none",
        )
        return env

    def log_path(self, start: int) -> Path:
        """The stderr (logs) of the `start`th process."""
        return self.config.data_dir / f"agent-{self.config.name}-{start}.log"

    async def start(self) -> None:
        """Start a new process of this agent."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._killed = False
        command = [
            *fin_agent_command(), "--config", str(ROOT / "config.yaml"),
            "run", "--bus", "redis", "--days", str(self.config.days),
        ]  # fmt: skip
        with self.log_path(self.starts).open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                env=self.env(),
                cwd=self.config.data_dir,
            )

    def kill9(self) -> bool:
        """SIGKILL the running process; False when none ran."""
        if not self.running or self._proc is None:
            return False
        self._killed = True
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGKILL)
        return True

    async def wait(self, timeout_secs: float | None = None) -> Exit | None:
        """The process's exit (recorded), or None if it still runs after `timeout_secs`."""
        if self._proc is None:
            return None
        try:
            code = await asyncio.wait_for(self._proc.wait(), timeout_secs)
        except TimeoutError:
            return None
        self._proc = None
        end = Exit(
            code=code, killed=self._killed, last_error=last_error(self.log_path(self.starts))
        )
        self.exits.append(end)
        return end

    async def stop(self, grace_secs: float = 10.0) -> Exit | None:
        """SIGTERM, then SIGKILL after `grace_secs`: the run is over (timed out)."""
        if not self.running or self._proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGTERM)
        end = await self.wait(grace_secs)
        if end is None:
            self.kill9()
            end = await self.wait()
        return end

    def loud_logs(self) -> list[str]:
        """Distinct error-level log events of every process: `event: message`."""
        seen: dict[str, None] = {}
        for start in range(1, self.starts + 1):
            for line in _lines(self.log_path(start)):
                if line.get("level") in LOUD_LEVELS:
                    detail = line.get("detail") or line.get("error") or line.get("message") or ""
                    seen[f"{line.get('event')}: {str(detail)[:160]}"] = None
        return list(seen)


def _lines(path: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if not path.exists():
        return out
    for text in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(text)
            if isinstance(line, dict):
                out.append(line)
    return out


def last_error(path: Path) -> str:
    """The last error-level log line (or the last line) of a process's stderr."""
    if not path.exists():
        return ""
    lines = path.read_text(errors="replace").splitlines()
    for text in reversed(lines):
        with contextlib.suppress(ValueError):
            line = json.loads(text)
            if isinstance(line, dict) and line.get("level") in LOUD_LEVELS:
                return f"{line.get('event')}: {line.get('detail') or line.get('error') or ''}"[:300]
    return lines[-1][:300] if lines else ""


class StoreWatch:
    """Samples the run database's event count every `every_secs`, to time recovery (so a
    recovery time is good to about `every_secs`)."""

    def __init__(self, admin_dsn: str, every_secs: float = 0.2) -> None:
        self._dsn = admin_dsn
        self._every = every_secs
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StoreWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        con: asyncpg.Connection | None = None
        while True:
            try:
                if con is None or con.is_closed():
                    con = await asyncpg.connect(self._dsn, timeout=2)
                exists = await con.fetchval("SELECT to_regclass('events') IS NOT NULL")
                count = await con.fetchval("SELECT count(*) FROM events") if exists else 0
                self.samples.append((time.monotonic(), int(count)))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if con is not None:
                    with contextlib.suppress(Exception):
                        con.terminate()
                con = None
            await asyncio.sleep(self._every)

    def count(self) -> int:
        """The latest count seen (0 before the first)."""
        return self.samples[-1][1] if self.samples else 0

    async def sample_now(self) -> tuple[float, int]:
        """The event count right now (retried up to 30 s while the database comes back), with
        its time: where a fault's recovery is counted from."""
        deadline = time.monotonic() + 30
        while True:
            try:
                con = await asyncpg.connect(self._dsn, timeout=2)
                try:
                    count = int(await con.fetchval("SELECT count(*) FROM events"))
                finally:
                    await con.close()
                return time.monotonic(), count
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if time.monotonic() > deadline:
                    return time.monotonic(), self.count()
                await asyncio.sleep(0.1)

    def recovery_secs(self, fault_end: float, stored: int) -> float | None:
        """From `fault_end` (when `stored` events were) to the first sample above `stored`."""
        for t, n in self.samples:
            if t > fault_end and n > stored:
                return round(t - fault_end, 2)
        return None
