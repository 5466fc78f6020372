"""Settings: layering (file < profile < environment < secrets), mapping, every error kind."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from fin_agent.app.config.effective import SECRET_MASK, render_effective
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.sources import secret_fields
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.rules import Direction, Strategy

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"

WriteConfig = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    def write(text: str) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def no_secrets(tmp_path: Path) -> Path:
    return tmp_path / "no-secrets"


def load(
    path: Path,
    secrets_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> Settings:
    return load_settings(path, profile=profile, environ=environ or {}, secrets_dir=secrets_dir)


def exactly(*lines: str) -> str:
    return "^" + re.escape("\n".join(lines)) + "$"


# --- the repo's config and defaults -------------------------------------------------------------


def test_repo_config_yaml_maps_onto_the_domain_default_strategy(no_secrets: Path) -> None:
    settings = load(REPO_CONFIG, no_secrets)

    assert settings.strategy() == Strategy()
    assert settings.profile == "dev"
    assert settings.data_dir == REPO_CONFIG.parent / "var"


def test_repo_config_yaml_sets_every_default_of_the_settings(no_secrets: Path) -> None:
    from_file = load(REPO_CONFIG, no_secrets)

    defaults = Settings(data_dir=REPO_CONFIG.parent / "var", secrets_dir=no_secrets)

    assert from_file == defaults


def _dotted_keys(values: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        # A job is written with the one of cron/at it uses: its name is the key.
        if isinstance(value, Mapping) and prefix != "schedule.jobs.":
            keys |= _dotted_keys(value, f"{path}.")
        else:
            keys.add(path)
    return keys


def test_repo_config_yaml_names_every_key_of_the_settings(no_secrets: Path) -> None:
    written = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    written.pop("profiles")

    settings = Settings(secrets_dir=no_secrets).model_dump(exclude=set(secret_fields(Settings)))

    assert _dotted_keys(written) == _dotted_keys(settings)


def test_strategy_uses_decimals_and_a_clock_time(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config('plan: {entry_offset: 0.02, entry_deadline: "11:15"}\n')

    plan = load(path, no_secrets).strategy().plan

    assert plan.entry_offset == Decimal("0.02")
    assert str(plan.entry_offset) == "0.02"
    assert plan.entry_deadline == time(11, 15)


def test_the_atr_lookback_is_43_daily_bars_and_configurable(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    assert load(REPO_CONFIG, no_secrets).strategy().scan.atr_lookback_bars == 43  # DESIGN 2.1

    rules = load(write_config("scan: {atr_lookback_bars: 60}\n"), no_secrets).strategy().scan

    assert (rules.atr_lookback_bars, rules.history_bars) == (60, 60)


def test_an_atr_lookback_shorter_than_the_atr_needs_names_both_keys(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("scan: {atr_period: 20, atr_lookback_bars: 20, min_history_bars: 21}\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            "scan.atr_lookback_bars: scan.atr_lookback_bars (20) must be at least "
            "scan.atr_period + 1 (21), the daily bars ATR needs (set in config.yaml line 1); "
            "raise scan.atr_lookback_bars (default 43) or lower scan.atr_period",
        ),
    ):
        load(path, no_secrets)


def test_config_path_defaults_to_fin_agent_config_variable(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("scan: {top_n: 7}\n")

    settings = load_settings(environ={"FIN_AGENT_CONFIG": str(path)}, secrets_dir=no_secrets)

    assert settings.scan.top_n == 7


# --- environment ----------------------------------------------------------------------------------


def test_environment_overrides_a_nested_key(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("scan: {gap_min_pct: 5, top_n: 4}\n")

    settings = load(path, no_secrets, environ={"FIN_AGENT_SCAN__GAP_MIN_PCT": "3"})

    assert settings.scan.gap_min_pct == Decimal(3)
    assert settings.scan.top_n == 4


def test_environment_overrides_data_dir(
    write_config: WriteConfig, no_secrets: Path, tmp_path: Path
) -> None:
    path = write_config("data_dir: ./var\n")

    settings = load(path, no_secrets, environ={"FIN_AGENT_DATA_DIR": str(tmp_path / "elsewhere")})

    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.data_path("events", "x.parquet") == tmp_path / "elsewhere/events/x.parquet"


def test_environment_sets_a_deep_key_and_lists(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("replay: {files: [a.csv]}\n")
    environ = {
        "FIN_AGENT_SCHEDULE__JOBS__SCAN__AT": "open - 30m",
        "FIN_AGENT_SCAN__UNIVERSE": "aapl, MSFT",
        "FIN_AGENT_REPLAY__FILES": '["/data/b.csv"]',
        "FIN_AGENT_UNRELATED_TOOL_SETTING": "ignored",
    }

    settings = load(path, no_secrets, environ=environ)

    assert settings.schedule.jobs.scan.at == "open - 30m"
    assert settings.schedule.jobs.scan.cron is None
    assert settings.scan.universe == ["AAPL", "MSFT"]
    assert settings.replay.files == [Path("/data/b.csv")]


def test_relative_paths_in_the_file_are_from_its_folder(
    write_config: WriteConfig, no_secrets: Path, tmp_path: Path
) -> None:
    path = write_config("data_dir: state\nreplay: {files: [bars/a.csv], factors_dir: factors}\n")

    settings = load(path, no_secrets)

    assert settings.data_dir == tmp_path / "state"
    assert settings.replay.files == [tmp_path / "bars/a.csv"]
    assert settings.replay.factors_dir == tmp_path / "factors"


def test_data_path_refuses_to_leave_data_dir(write_config: WriteConfig, no_secrets: Path) -> None:
    settings = load(write_config("data_dir: /srv/fin\n"), no_secrets)

    with pytest.raises(ValueError, match=r"^/srv/other is outside data_dir /srv/fin; "):
        settings.data_path("..", "other")


# --- profiles -------------------------------------------------------------------------------------

PROFILED = """\
profile: paper
scan: {gap_min_pct: 5, top_n: 4}
logging: {format: console}
profiles:
  paper:
    scan: {top_n: 2}
    logging: {format: json}
  prod:
    scan: {top_n: 1}
"""


def test_profile_overlay_is_deep_merged_over_the_base(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    settings = load(write_config(PROFILED), no_secrets)

    assert settings.profile == "paper"
    assert settings.scan.top_n == 2
    assert settings.scan.gap_min_pct == Decimal(5)
    assert settings.logging.format == "json"


def test_profile_argument_beats_variable_beats_file_key(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config(PROFILED)
    environ = {"FIN_AGENT_PROFILE": "prod"}

    from_variable = load(path, no_secrets, environ=environ)
    from_argument = load(path, no_secrets, environ=environ, profile="dev")

    assert (from_variable.profile, from_variable.scan.top_n) == ("prod", 1)
    assert (from_argument.profile, from_argument.scan.top_n) == ("dev", 4)


def test_environment_beats_the_profile_overlay(write_config: WriteConfig, no_secrets: Path) -> None:
    settings = load(write_config(PROFILED), no_secrets, environ={"FIN_AGENT_SCAN__TOP_N": "9"})

    assert settings.scan.top_n == 9


def test_overlay_at_replaces_the_base_cron_of_a_job(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("profiles:\n  dev:\n    schedule: {jobs: {scan: {at: open - 1h}}}\n")

    job = load(path, no_secrets).schedule.jobs.scan

    assert (job.cron, job.at) == (None, "open - 1h")


# --- secrets --------------------------------------------------------------------------------------


def test_secret_file_is_read_and_masked_when_rendered(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "finnhub_api_key").write_text("sk-123\n", encoding="utf-8")
    environ = {"FIN_AGENT_FINNHUB_API_KEY": "from-env", "FIN_AGENT_DATABASE_PASSWORD": "pw"}

    settings = load(write_config("market: {source: finnhub}\n"), secrets, environ=environ)
    rendered = render_effective(settings)

    assert settings.finnhub_api_key is not None
    assert settings.finnhub_api_key.get_secret_value() == "sk-123"
    assert "sk-123" not in rendered
    assert "pw" not in rendered.split()
    effective = yaml.safe_load(rendered)
    assert effective["finnhub_api_key"] == SECRET_MASK
    assert effective["database_password"] == SECRET_MASK
    assert effective["dashboard_password"] is None
    assert effective["discord_webhook_url"] is None


def test_secrets_dir_comes_from_the_variable_and_may_be_missing(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    secrets = tmp_path / "from-env"
    secrets.mkdir()
    (secrets / "dashboard_password").write_text("s3cret", encoding="utf-8")
    path = write_config("secrets_dir: ./not-there\n")

    without = load_settings(path, environ={})
    with_dir = load_settings(path, environ={"FIN_AGENT_SECRETS_DIR": str(secrets)})

    assert without.dashboard_password is None
    assert without.secrets_dir == path.parent / "not-there"
    assert with_dir.dashboard_password is not None
    assert with_dir.dashboard_password.get_secret_value() == "s3cret"


def test_secret_in_config_yaml_is_refused(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("scan: {top_n: 3}\nfinnhub_api_key: abc123\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            "finnhub_api_key: secrets are not accepted in config.yaml (set in config.yaml line 2); "
            "delete it and set the environment variable FIN_AGENT_FINNHUB_API_KEY or write the "
            "value to a file named finnhub_api_key in secrets_dir (default /run/secrets)"
        ),
    ):
        load(path, no_secrets)


def test_secret_in_a_profile_overlay_is_refused(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("profiles:\n  prod:\n    database_password: hunter2\n")

    with pytest.raises(ConfigError, match=r"^profiles\.prod\.database_password: secrets are not"):
        load(path, no_secrets)


def test_empty_secret_file_is_refused(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "discord_webhook_url").write_text("\n", encoding="utf-8")

    with pytest.raises(
        ConfigError,
        match=exactly(
            f"discord_webhook_url: secret file {tmp_path / 'discord_webhook_url'} is empty; "
            "write the value into it or delete the file"
        ),
    ):
        load(write_config("{}\n"), tmp_path)


def test_no_secret_value_appears_in_an_error(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("market: {source: finnhub}\nscan: {top_n: 0}\n")

    with pytest.raises(ConfigError) as caught:
        load(path, no_secrets, environ={"FIN_AGENT_DASHBOARD_PASSWORD": "topsecret"})

    assert "topsecret" not in str(caught.value)


# --- each error kind ------------------------------------------------------------------------------


def test_missing_file(no_secrets: Path, tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(
        ConfigError,
        match=exactly(
            f"{path}: file not found; create it (the repo's config.yaml is a complete example) "
            "or point FIN_AGENT_CONFIG or --config at the right file"
        ),
    ):
        load(path, no_secrets)


def test_broken_yaml_names_line_and_column(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("scan:\n  gap_min_pct: 4\n   top_n: 3\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            f"{path}: broken YAML at line 3, column 9: mapping values are not allowed here; "
            "check the indentation and quoting around that line"
        ),
    ):
        load(path, no_secrets)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("- a\n- b\n", "expected a mapping of keys, got a list"),
        ("just text\n", "expected a mapping of keys, got 'just text'"),
        ("# only a comment\n", "the file is empty"),
    ],
)
def test_file_that_is_not_a_mapping(
    write_config: WriteConfig, no_secrets: Path, text: str, what: str
) -> None:
    path = write_config(text)

    with pytest.raises(ConfigError, match=f"^{re.escape(f'{path}: {what}; ')}"):
        load(path, no_secrets)


def test_unknown_key_suggests_the_closest_and_lists_the_allowed(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("risk:\n  max_open_position: 2\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            "risk.max_open_position: unknown key (set in config.yaml line 2); did you mean "
            "max_open_positions? allowed keys in risk: daily_loss_limit_pct, error_breaker, "
            "loss_limit_action, loss_limit_basis, max_drawdown_pct, max_gross_exposure_pct, "
            "max_open_positions, max_orders_per_minute, max_var_pct, var_confidence_pct"
        ),
    ):
        load(path, no_secrets)


def test_unknown_top_level_key_lists_sections_but_not_secrets(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    with pytest.raises(ConfigError, match=r"^sacn: unknown key \(set in config\.yaml line 1\); "):
        load(write_config("sacn: {}\n"), no_secrets)

    with pytest.raises(ConfigError) as caught:
        load(write_config("sacn: {}\n"), no_secrets)
    assert "did you mean scan? allowed keys at the top level: account, broker, bus," in str(
        caught.value
    )
    assert "finnhub_api_key" not in str(caught.value)
    assert "alpaca_secret_key" not in str(caught.value)
    assert "profiles" in str(caught.value)


def test_out_of_range_number_states_the_bounds(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("risk: {daily_loss_limit_pct: 0}\nhttp: {port: 70000}\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            "risk.daily_loss_limit_pct: 0 must be greater than 0 (set in config.yaml line 1); "
            "use a number above 0 and up to 100",
            "http.port: 70000 is above the maximum of 65535 (set in config.yaml line 2); "
            "use a number from 0 to 65535",
        ),
    ):
        load(path, no_secrets)


def test_wrong_types(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config(
        "scan: {top_n: many, catalyst_required: maybe, direction: lon, gap_min_pct: abc}\n"
        "simulator: {start_date: yesterday}\n"
        "plan: 5\n"
    )

    with pytest.raises(
        ConfigError,
        match=exactly(
            "scan.gap_min_pct: expected a number, got 'abc' (set in config.yaml line 1); "
            "write a number such as 4",
            "scan.catalyst_required: expected true or false, got 'maybe' (set in config.yaml "
            "line 1); write true or false",
            "scan.direction: 'lon' is not an allowed value (set in config.yaml line 1); "
            "did you mean long? use one of: long, short, both",
            "scan.top_n: expected a whole number, got 'many' (set in config.yaml line 1); "
            "write a whole number such as 5",
            "plan: expected a section of keys, got 5 (set in config.yaml line 3); "
            "write its keys indented below `plan:`",
            "simulator.start_date: expected a date, got 'yesterday' (set in config.yaml line 2); "
            "write it as YYYY-MM-DD, e.g. 2025-03-03",
        ),
    ):
        load(path, no_secrets)


def test_unquoted_clock_time_is_explained(write_config: WriteConfig, no_secrets: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=exactly(
            "plan.entry_deadline: got 630, which is how YAML reads an unquoted 10:30 "
            '(set in config.yaml line 1); quote it: "10:30"'
        ),
    ):
        load(write_config("plan: {entry_deadline: 10:30}\n"), no_secrets)


def test_bad_time_zone_suggests_the_closest(write_config: WriteConfig, no_secrets: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=exactly(
            "timezone: 'America/New_Yrok' is not a known time zone (set in config.yaml line 1); "
            "did you mean America/New_York? use an IANA name such as America/New_York"
        ),
    ):
        load(write_config("timezone: America/New_Yrok\n"), no_secrets)


def test_bad_cron_expression_names_the_field(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config(
        "schedule:\n  jobs:\n    scan: {cron: '0 25 * * 1-5'}\n    housekeeping: {cron: '0 9 *'}\n"
    )

    with pytest.raises(
        ConfigError,
        match=exactly(
            "schedule.jobs.scan.cron: '0 25 * * 1-5' is not a valid cron expression: the hour "
            "field '25' is invalid (set in config.yaml line 3); write five fields: minute hour "
            "day-of-month month day-of-week, e.g. '0 9 * * 1-5'",
            "schedule.jobs.housekeeping.cron: '0 9 *' has 3 fields instead of 5 (set in "
            "config.yaml line 4); write five fields: minute hour day-of-month month "
            "day-of-week, e.g. '0 9 * * 1-5'",
        ),
    ):
        load(path, no_secrets)


def test_bad_at_expression_and_a_job_with_both(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config(
        "schedule:\n  jobs:\n    plan: {at: open plus 5}\n"
        "    report: {at: close + 15m, cron: '0 17 * * *'}\n"
        "    flatten: {at: close - 7h}\n"
    )

    with pytest.raises(
        ConfigError,
        match=exactly(
            "schedule.jobs.plan.at: 'open plus 5' is not a session time (set in config.yaml "
            "line 3); write open or close, + or -, and a number of minutes (m) or hours (h), "
            "e.g. 'open + 5m' or 'close - 5m'",
            "schedule.jobs.flatten.at: 'close - 7h' is more than 6h away from the close (set in "
            "config.yaml line 5); keep the offset within 6h so the job stays on its trading day",
            "schedule.jobs.report: sets both cron and at (set in config.yaml line 4); give "
            "exactly one of them, e.g. `at: open + 5m` or `cron: '0 9 * * 1-5'`",
        ),
    ):
        load(path, no_secrets)


def test_inconsistent_pairs_name_both_keys(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config(
        "scan: {gap_min_pct: 45, price_min: 600}\n"
        'plan: {entry_deadline: "09:33", risk_per_trade_pct: 30}\n'
    )

    with pytest.raises(
        ConfigError,
        match=exactly(
            "scan.gap_min_pct: scan.gap_min_pct (45) must be below scan.gap_max_pct (40) "
            "(set in config.yaml line 1); lower scan.gap_min_pct or raise scan.gap_max_pct",
            "scan.price_min: scan.price_min (600) must be below scan.price_max (500) "
            "(set in config.yaml line 1); lower scan.price_min or raise scan.price_max",
            "plan.entry_deadline: plan.entry_deadline (09:33) must be after the opening range "
            "ends at 09:35 (09:30 + plan.opening_range_minutes 5) (set in config.yaml line 2); "
            "move plan.entry_deadline later or shorten plan.opening_range_minutes",
            "plan.risk_per_trade_pct: plan.risk_per_trade_pct (30) must not exceed "
            "plan.max_position_pct (25) (set in config.yaml line 2); lower "
            "plan.risk_per_trade_pct or raise plan.max_position_pct",
        ),
    ):
        load(path, no_secrets)


def test_inconsistencies_across_sections(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config(
        "plan: {risk_per_trade_pct: 3}\n"
        "http: {port: 8501}\n"
        "schedule: {jobs: {plan: {at: open + 2m}, flatten: {at: close - 10m}}}\n"
        "market: {source: finnhub}\n"
    )

    with pytest.raises(
        ConfigError,
        match=exactly(
            "plan.risk_per_trade_pct: plan.risk_per_trade_pct (3) must not exceed "
            "risk.daily_loss_limit_pct (2) (set in config.yaml line 1); lower "
            "plan.risk_per_trade_pct or raise risk.daily_loss_limit_pct",
            "schedule.jobs.plan: schedule.jobs.plan (at: open + 2m) must run at or after open + "
            "plan.opening_range_minutes (5m), when the range is complete (set in config.yaml "
            "line 3); make it `plan: {at: open + 5m}`",
            "schedule.jobs.flatten: schedule.jobs.flatten (at: close - 10m) must be close - "
            "plan.flatten_before_close_minutes (5m) (set in config.yaml line 3); make it "
            "`flatten: {at: close - 5m}` or change plan.flatten_before_close_minutes",
            "finnhub_api_key: market.source is finnhub but finnhub_api_key is not set; set "
            "FIN_AGENT_FINNHUB_API_KEY or write the key to a file named finnhub_api_key in "
            f"secrets_dir ({no_secrets})",
            "dashboard.port: dashboard.port (8501) must differ from http.port (8501); "
            "change one of them",
        ),
    ):
        load(path, no_secrets)


def test_duplicate_key_is_refused(write_config: WriteConfig, no_secrets: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=exactly("scan.top_n: set twice (lines 2 and 3); keep only one of them"),
    ):
        load(write_config("scan:\n  top_n: 3\n  top_n: 4\n"), no_secrets)


def test_bad_universe_symbols(write_config: WriteConfig, no_secrets: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=exactly(
            "scan.universe[1]: '1x' is not a ticker (set in config.yaml line 1); use 1-15 "
            "letters, digits, '.' or '-', starting with a letter (e.g. BRK.B)",
            "scan.universe[2]: AAPL is listed twice (set in config.yaml line 1); delete the repeat",
        ),
    ):
        load(write_config("scan: {universe: [aapl, 1x, AAPL]}\n"), no_secrets)


def test_profile_problems_name_the_overlay(write_config: WriteConfig, no_secrets: Path) -> None:
    path = write_config("profiles:\n  staging: {}\n  prod:\n    profile: dev\n    scan: {top: 3}\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            "profiles.staging: unknown profile; remove it; allowed keys in profiles: dev, "
            "paper, prod",
            "profiles.prod.profile: a profile overlay cannot choose a profile; delete it; "
            "choose the profile with --profile, FIN_AGENT_PROFILE or the top-level profile key",
            "profiles.prod.scan.top: unknown key; did you mean top_n? allowed keys in "
            "profiles.prod.scan: adv_min, adv_period, atr_lookback_bars, atr_period, "
            "cancel_on_keywords, "
            "catalyst_required, catalyst_window, "
            "collection_concurrency, collection_margin_secs, direction, filters, gap_max_pct, "
            "gap_min_pct, min_history_bars, news_for_candidates, news_lookback_hours, "
            "news_reserve_calls, pm_volume_min, price_max, price_min, rank_by, split_guard, "
            "split_guard_heavy_volume_pct, top_n, universe",
        ),
    ):
        load(path, no_secrets)


def test_bad_profile_name_from_the_argument(write_config: WriteConfig, no_secrets: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=exactly(
            "profile: 'staging' is not an allowed value (set by the profile argument); "
            "use one of: dev, paper, prod"
        ),
    ):
        load(write_config("{}\n"), no_secrets, profile="staging")


def test_overlay_value_error_points_at_the_overlay(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("profiles:\n  prod:\n    scan: {top_n: 0}\n")

    with pytest.raises(
        ConfigError,
        match=exactly(
            "scan.top_n: 0 is below the minimum of 1 (set in profiles.prod, config.yaml line 3); "
            "use a number from 1 to 100"
        ),
    ):
        load(path, no_secrets, profile="prod")


def test_environment_problems_name_the_variable(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    environ = {
        "FIN_AGENT_SCAN__ATR_PERIOD": "zero",
        "FIN_AGENT_SCNA__TOP_N": "1",
        "FIN_AGENT_HTTP": "8080",
        "FIN_AGENT_REPLAY__FILES": '["a.csv",',
    }

    with pytest.raises(
        ConfigError,
        match=exactly(
            "http: FIN_AGENT_HTTP sets a whole section; set its keys one by one as "
            "FIN_AGENT_HTTP__<KEY>",
            "FIN_AGENT_REPLAY__FILES: is not a valid JSON list (Expecting value at character 9); "
            'write a JSON list such as ["AAPL", "MSFT"] or a comma-separated AAPL,MSFT',
            "scna: unknown section in FIN_AGENT_SCNA__TOP_N; did you mean scan? allowed keys at "
            "the top level: account, broker, bus, dashboard, execution, feed, finnhub, http, "
            "logging, market, news, notifications, optimize, plan, replay, report, risk, scan, "
            "schedule, simulator, store, tracing, yahoo",
            "scan.atr_period: expected a whole number, got 'zero' (set by "
            "FIN_AGENT_SCAN__ATR_PERIOD); write a whole number such as 14",
        ),
    ):
        load(write_config("{}\n"), no_secrets, environ=environ)


def test_several_bad_fields_are_reported_together(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config(
        "timezone: Mars/Olympus\n"
        "scan: {top_n: 0, gap_mn_pct: 3}\n"
        "risk: {max_open_positions: lots}\n"
        "logging: {level: loud}\n"
        "dashboard_password: x\n"
    )

    with pytest.raises(ConfigError) as caught:
        load(path, no_secrets)

    assert [line.split(":")[0] for line in str(caught.value).splitlines()] == [
        "dashboard_password",
        "timezone",
        "scan.top_n",
        "scan.gap_mn_pct",
        "risk.max_open_positions",
        "logging.level",
    ]


def test_render_effective_round_trips_through_yaml(no_secrets: Path) -> None:
    settings = load(REPO_CONFIG, no_secrets)

    effective = yaml.safe_load(render_effective(settings))

    assert effective["scan"]["gap_min_pct"] == 4
    assert effective["scan"]["direction"] == Direction.LONG.value
    assert effective["plan"]["entry_offset"] == 0.01
    assert effective["plan"]["entry_deadline"] == "10:30"
    assert effective["schedule"]["jobs"]["plan"] == {"at": "open + 5m"}
    assert effective["simulator"]["start_date"] == date(2025, 3, 3)
    assert effective["data_dir"] == str(REPO_CONFIG.parent / "var")
    assert "profiles" not in effective


def test_a_duckdb_memory_limit_without_a_unit_is_refused_naming_the_key(
    write_config: WriteConfig, no_secrets: Path
) -> None:
    path = write_config("store: {duckdb_memory_limit: '512'}\n")

    with pytest.raises(ConfigError, match=r"store\.duckdb_memory_limit"):
        load(path, no_secrets)
    assert load(write_config("{}\n"), no_secrets).store.duckdb_memory_limit == "512MB"
