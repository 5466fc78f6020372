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
