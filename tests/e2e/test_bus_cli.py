"""The agent through Redis from the command line: embedded redis-server, demo, run and dlq."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from fin_agent.adapters.redis.embedded import EmbeddedRedis
from fin_agent.adapters.redis.streams import dead_letter_fields, text
from support import stream_entry

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIN_AGENT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [str(FIN_AGENT), "--config", str(REPO / "config.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def redis_children() -> set[int]:
    """Pids of redis-server processes whose parent is a fin-agent this test ran (none may stay)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"redis-server" in cmd and b"fin-agent-test" in cmd:
                found.add(int(entry.name))
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    # the folder name marks this test's embedded servers in /proc/*/cmdline
    folder = tmp_path / "fin-agent-test"
    folder.mkdir()
    return folder


def test_demo_through_embedded_redis_gives_the_same_trades_as_in_memory(data_dir: Path) -> None:
    redis = cli(data_dir, "demo", "--seed", "7", "--days", "2", "--json", "--bus", "redis")
    memory = cli(data_dir, "demo", "--seed", "7", "--days", "2", "--json", "--bus", "memory")

    assert redis.returncode == 0, redis.stderr
    assert memory.returncode == 0, memory.stderr
    assert json.loads(redis.stdout)["trade_count"] > 0
    assert redis.stdout == memory.stdout
    assert "embedded_redis_started" in redis.stderr
    assert (data_dir / "redis").is_dir()
    assert redis_children() == set()


def test_run_on_redis_trades_the_requested_sessions_and_stops(data_dir: Path) -> None:
    result = cli(data_dir, "run", "--bus", "redis", "--days", "2")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["2025-03-03", "2025-03-04"]
    assert all(" trades " in line and " equity " in line for line in lines)
    assert redis_children() == set()


def test_dlq_lists_shows_replays_and_purges_dead_letters(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir / "redis")
    server.start()
    try:
        client = Redis.from_url(server.url)
        original = {"type": "error.raised", "v": "9", "id": "e-1", "ts": "x", "data": "{}"}
        letter = dead_letter_fields(
            stream="fin:events",
            entry_id="1-0",
            group="store",
            reason="unknown_version",
            detail="error.raised v9 is newer than this agent knows (v1)",
            deliveries=1,
            fields=original,
        )
        dlq_id = text(client.xadd("fin:dlq", stream_entry(letter)))

        listed = cli(data_dir, "dlq", "list")
        shown = cli(data_dir, "dlq", "show", dlq_id)
        replayed = cli(data_dir, "dlq", "replay", dlq_id)
        after_replay = cli(data_dir, "dlq", "list", "--json")

        assert listed.returncode == 0, listed.stderr
        assert dlq_id in listed.stdout
        assert "unknown_version" in listed.stdout
        assert json.loads(shown.stdout)["fields"] == original
        assert replayed.stdout.startswith(f"replayed {dlq_id} as ")
        assert json.loads(after_replay.stdout) == []
        entries = client.xrange("fin:events")
        assert entries is not None
        [(_, fields)] = entries
        assert fields is not None
        assert {text(k): text(v) for k, v in fields.items()} == original
        client.xadd("fin:dlq", stream_entry(letter))
        client.close()
    finally:
        server.stop()

    purged = cli(data_dir, "dlq", "purge")  # no agent running: starts the embedded server
    missing = cli(data_dir, "dlq", "show", "99-0")

    assert purged.stdout == "purged 1 dead letters\n"
    assert missing.returncode == 2
    assert "no dead letter '99-0'" in missing.stderr
    assert redis_children() == set()
