"""`fin-agent run` refuses what cannot work before it starts anything, saying what to change."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from fin_agent.app.cli.main import main


def run(tmp_path: Path, config: dict[str, object], env: dict[str, str] | None = None) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var"), **config}))
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        code = main(["--config", str(path), "run", "--days", "1"], out=io.StringIO(), err=err)
    assert code == 2
    return err.getvalue()


def test_run_refuses_the_replay_source_and_names_backtest(tmp_path: Path) -> None:
    message = run(tmp_path, {"market": {"source": "replay"}})
    assert "market.source replay is for `fin-agent backtest`" in message


def test_run_on_finnhub_refuses_an_empty_universe(tmp_path: Path) -> None:
    message = run(
        tmp_path,
        {"market": {"source": "finnhub"}, "scan": {"universe": []}},
        env={"FIN_AGENT_FINNHUB_API_KEY": "fk-unit-test"},
    )
    assert "scan.universe is empty" in message
    assert "fk-unit-test" not in message


def test_run_on_finnhub_without_a_key_says_where_to_put_it(tmp_path: Path) -> None:
    message = run(
        tmp_path,
        {"market": {"source": "finnhub"}, "secrets_dir": str(tmp_path / "none")},
        env={"FIN_AGENT_FINNHUB_API_KEY": ""},
    )
    assert "finnhub_api_key" in message


def replay(tmp_path: Path, *args: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    err = io.StringIO()
    code = main(["--config", str(path), "run", *args], out=io.StringIO(), err=err)
    assert code == 2
    return err.getvalue()


def test_session_replay_without_bar_files_names_the_flag(tmp_path: Path) -> None:
    message = replay(tmp_path, "--session-replay", "2019-02-15")
    assert "--session-replay needs the day's bar files: add --data" in message


def test_session_replay_refuses_a_negative_speed(tmp_path: Path) -> None:
    message = replay(tmp_path, "--session-replay", "2019-02-15", "--speed", "-1", "--data", "x.csv")
    assert "--speed must be 0 (as fast as possible) or more, got -1.0" in message


def test_run_refuses_bar_files_without_session_replay(tmp_path: Path) -> None:
    message = replay(tmp_path, "--data", "x.csv")
    assert "--data is for --session-replay DAY" in message


def test_start_at_is_for_a_live_agent(tmp_path: Path) -> None:
    message = replay(tmp_path, "--start-at", "2026-12-04T08:59:20-05:00")
    assert "--start-at moves a live agent's clock: use it with market.source finnhub" in message


def test_start_at_needs_an_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    with pytest.raises(SystemExit) as stopped:
        main(["--config", str(path), "run", "--start-at", "2026-12-04T08:59:20"], out=io.StringIO())
    assert stopped.value.code == 2
    assert "has no UTC offset: add one, such as -05:00" in capsys.readouterr().err
