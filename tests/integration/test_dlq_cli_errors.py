"""`fin-agent dlq` given an id it cannot use, or no Redis, says so in one line and exits 2."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from fin_agent.adapters.redis.streams import dead_letter_fields
from fin_agent.app.cli.main import main
from support import free_port

REPO = Path(__file__).resolve().parents[2]
HINT = "`fin-agent dlq list` shows the ids"


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def dlq(redis_url: str, data_dir: Path, *args: str) -> Result:
    """`fin-agent dlq ARGS` in this process (an exception escaping `main` fails the test)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIN_AGENT_DATA_DIR", str(data_dir))
        patch.setenv("FIN_AGENT_BUS__REDIS_URL", redis_url)
        code = main(["--config", str(REPO / "config.yaml"), "dlq", *args], out=out, err=err)
    return Result(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def one_line_error(result: Result) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ("show", "garbage"),
            f"'garbage' is not a dead-letter id (they look like 1733312345678-0): {HINT}",
        ),
        (
            ("replay", "garbage"),
            f"'garbage' is not a dead-letter id (they look like 1733312345678-0): {HINT}",
        ),
        (
            ("show", "99999999999999999999-0"),
            "'99999999999999999999-0' is not a dead-letter id (Invalid stream ID specified as "
            f"stream command argument): {HINT}",
        ),
        (("replay", "1-0"), f"no dead letter '1-0' in fin:dlq: {HINT}"),
    ],
    ids=["show garbage", "replay garbage", "show beyond 64 bits", "replay unknown"],
)
def test_an_id_that_is_malformed_or_unknown_is_one_line_and_exit_2(
    redis_url: str, tmp_path: Path, args: tuple[str, ...], error: str
) -> None:
    result = dlq(redis_url, tmp_path, *args)

    assert one_line_error(result) == f"fin-agent: error: {error}"


LETTER = dead_letter_fields(
    stream="fin:events",
    entry_id="1-0",
    group="store",
    reason="decode_failed",
    detail="not JSON",
    deliveries=1,
    fields={"type": "x", "v": "1", "id": "e-1", "ts": "t", "data": "{"},
)


def add_letter(client: Redis) -> str:
    entry = client.xadd("fin:dlq", LETTER)  # type: ignore[arg-type]
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def test_replay_with_one_bad_id_replays_none_of_them(redis_url: str, tmp_path: Path) -> None:
    client = Redis.from_url(redis_url)
    good = add_letter(client)

    result = dlq(redis_url, tmp_path, "replay", good, "nonsense")

    assert one_line_error(result).startswith("fin-agent: error: 'nonsense' is not a dead-letter id")
    assert client.xlen("fin:dlq") == 1
    assert client.exists("fin:events") == 0
    client.close()


def test_no_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"

    result = dlq(nobody, tmp_path, "list")

    line = one_line_error(result)
    assert line.startswith("fin-agent: error: the dead-letter stream fin:dlq cannot be used (")
    assert line.endswith(
        "check that Redis runs, bus.redis_url points at it and redis_password is its password"
    )


def test_an_id_given_twice_is_replayed_once(redis_url: str, tmp_path: Path) -> None:
    client = Redis.from_url(redis_url)
    letter = add_letter(client)

    result = dlq(redis_url, tmp_path, "replay", letter, letter)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"replayed {letter} as ")
    assert len(result.stdout.splitlines()) == 1
    assert client.xlen("fin:events") == 1
    assert client.xlen("fin:dlq") == 0
    client.close()
