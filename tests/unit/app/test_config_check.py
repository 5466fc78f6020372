"""`config check`: prints the effective config (exit 0) or every problem (exit 2)."""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from fin_agent.app.cli import config_check


def test_run_prints_the_effective_config_and_returns_0(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("profiles:\n  paper:\n    scan: {top_n: 2}\n", encoding="utf-8")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "finnhub_api_key").write_text("sk-live-1", encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()

    code = config_check.run(
        path,
        "paper",
        stdout=stdout,
        stderr=stderr,
        environ={"FIN_AGENT_SECRETS_DIR": str(secrets), "FIN_AGENT_LOGGING__FORMAT": "json"},
    )

    assert code == 0
    assert stderr.getvalue() == ""
    output = stdout.getvalue()
    assert output.startswith("# effective configuration, profile paper\n")
    assert "sk-live-1" not in output
    effective = yaml.safe_load(output)
    assert effective["profile"] == "paper"
    assert effective["scan"]["top_n"] == 2
    assert effective["logging"] == {"level": "INFO", "format": "json"}
    assert effective["finnhub_api_key"] == "**********"
    assert effective["secrets_dir"] == str(secrets)


def test_run_lists_every_problem_and_returns_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("scan: {top_n: 0}\nrisk: {max_open_position: 2}\n", encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()

    code = config_check.run(
        path, None, stdout=stdout, stderr=stderr, environ={}, secrets_dir=tmp_path / "no-secrets"
    )

    assert code == 2
    assert stdout.getvalue() == ""
    assert stderr.getvalue() == (
        "config.yaml is invalid:\n"
        "  scan.top_n: 0 is below the minimum of 1 (set in config.yaml line 1); "
        "use a number from 1 to 100\n"
        "  risk.max_open_position: unknown key (set in config.yaml line 2); did you mean "
        "max_open_positions? allowed keys in risk: daily_loss_limit_pct, error_breaker, "
        "loss_limit_action, loss_limit_basis, max_drawdown_pct, max_gross_exposure_pct, "
        "max_open_positions, max_orders_per_minute, max_var_pct, var_confidence_pct\n"
    )


def test_run_reports_a_missing_file_and_returns_2(tmp_path: Path) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    missing = tmp_path / "config.yaml"

    code = config_check.run(missing, None, stdout=stdout, stderr=stderr, environ={})

    assert code == 2
    assert stderr.getvalue().splitlines() == [
        "config.yaml is invalid:",
        f"  {missing}: file not found; create it (the repo's config.yaml is a complete example) "
        "or point FIN_AGENT_CONFIG or --config at the right file",
    ]
