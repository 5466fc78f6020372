"""The live-market settings (market, finnhub, feed, yahoo, the scan's collection keys): defaults
equal to the adapters' own, bad values named with their fix, the mapping onto the adapters'
configs, and restart-only classification."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest

from fin_agent.adapters.finnhub.feed_config import FinnhubFeedConfig
from fin_agent.adapters.finnhub.rest import FINNHUB_BASE_URL, FinnhubRest, FinnhubTransport
from fin_agent.adapters.live.bar_aggregator import BarAggregator
from fin_agent.adapters.live.market import PREMARKET_OPENS, LiveMarket
from fin_agent.adapters.vendor_http.circuit_breaker import BreakerConfig
from fin_agent.adapters.vendor_http.json_client import HttpPolicy
from fin_agent.adapters.vendor_http.rate_budget import FINNHUB_FREE_WINDOWS, RateWindow
from fin_agent.adapters.yahoo.daily import (
    DEFAULT_USER_AGENT,
    YAHOO_BASE_URL,
    YAHOO_WINDOWS,
    YahooDailyBars,
)
from fin_agent.app.bootstrap.vendors import (
    bar_aggregator,
    finnhub_budget,
    finnhub_feed_config,
    finnhub_policy,
    market_feed_config,
    yahoo_budget,
    yahoo_policy,
)
from fin_agent.app.config.market import FinnhubTransportName
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.version import LIVE_SECTIONS, diff, effective, is_live
from fin_agent.app.live.market_feed import MarketFeedConfig
from fin_agent.app.live.scan import LiveScan
from fin_agent.domain.errors import ConfigError

NEW_SECTIONS = ("market", "finnhub", "feed", "yahoo")


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ=environ or {}, secrets_dir=tmp_path / "no-secrets")


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return str(caught.value).splitlines()


def defaults_of(function: Callable[..., object]) -> dict[str, object]:
    signature = inspect.signature(function)
    return {name: p.default for name, p in signature.parameters.items()}


# --- defaults equal the adapters' own ----------------------------------------------------------


def test_mapped_defaults_equal_the_adapters_defaults() -> None:
    settings = Settings()

    assert finnhub_feed_config(settings) == FinnhubFeedConfig()
    assert market_feed_config(settings) == MarketFeedConfig()
    assert finnhub_policy(settings) == HttpPolicy()
    assert yahoo_policy(settings) == HttpPolicy()
    assert finnhub_budget(settings).windows == FINNHUB_FREE_WINDOWS
    assert yahoo_budget(settings).windows == YAHOO_WINDOWS


def test_default_urls_user_agent_and_budget_margins_equal_the_adapters() -> None:
    settings = Settings()

    assert settings.finnhub.rest_base_url == FINNHUB_BASE_URL
    assert settings.feed.url == FinnhubFeedConfig().url
    assert settings.yahoo.base_url == defaults_of(YahooDailyBars)["base_url"] == YAHOO_BASE_URL
    assert settings.yahoo.user_agent == defaults_of(YahooDailyBars)["user_agent"]
    assert settings.yahoo.user_agent == DEFAULT_USER_AGENT
    assert settings.finnhub.budget_margin_secs == 0.25
    assert settings.yahoo.budget_margin_secs == 0.25


def test_default_bar_scan_and_market_keys_equal_the_adapters() -> None:
    settings = Settings()
    aggregator, scan, market = (
        defaults_of(BarAggregator),
        defaults_of(LiveScan),
        defaults_of(LiveMarket),
    )

    assert settings.feed.lateness_secs == aggregator["lateness_secs"]
    assert tuple(settings.feed.exclude_conditions) == aggregator["exclude_conditions"]
    assert settings.scan.collection_concurrency == scan["concurrency"]
    assert timedelta(seconds=settings.scan.collection_margin_secs) == scan["margin"]
    assert settings.scan.news_reserve_calls == scan["news_reserve_calls"]
    assert settings.scan.news_for_candidates == scan["news_for_candidates"]
    assert settings.market.premarket_opens == PREMARKET_OPENS == market["premarket_opens"]
    assert settings.market.daily_sources == [YahooDailyBars.name]
    # Deliberately not LiveMarket's default (True): the free feed's volume is IEX trades only.
    assert settings.market.feed_volume is False
    assert settings.feed.down_alert_secs == 60


# --- the mapping functions carry the configured values ------------------------------------------

CONFIGURED = """
finnhub:
  rest_base_url: https://finnhub.example/api/v2
  windows: [{max_calls: 300, per_secs: 60}]
  budget_margin_secs: 0.25
  http: {timeout_secs: 3, max_attempts: 2, backoff_base_secs: 0.1, backoff_max_secs: 2,
         max_rate_limited: 1, retry_after_default_secs: 4, max_retry_after_secs: 30,
         breaker: {failure_threshold: 2, cooldown_secs: 5}}
feed:
  url: ws://127.0.0.1:9100/feed
  max_symbols: 10
  open_timeout_secs: 3
  ping_interval_secs: null
  ping_timeout_secs: 7
  backoff_initial_secs: 1
  backoff_max_secs: 8
  backoff_factor: 3
  healthy_after_secs: 4
  stale_after_secs: null
  max_queued_frames: 8
  connect_when_idle: true
  lateness_secs: 5
  exclude_conditions: [12, "37"]
  flush_every_secs: null
  flush_grace_secs: 0.5
  max_pending_events: 20
  down_alert_secs: 90
yahoo:
  base_url: http://127.0.0.1:9200
  user_agent: "Mozilla/5.0 (X11; Linux x86_64)"
  windows: [{max_calls: 10, per_secs: 10}, {max_calls: 1, per_secs: 0.5}]
  budget_margin_secs: 0.1
  http: {timeout_secs: 20, max_attempts: 6, breaker: {failure_threshold: 9, cooldown_secs: 60}}
market: {daily_sources: [yahoo], feed_volume: true, premarket_opens: "07:00"}
scan: {collection_concurrency: 4, collection_margin_secs: 45, news_reserve_calls: 0,
       news_for_candidates: false}
"""


def test_finnhub_feed_config_carries_the_feed_section(tmp_path: Path) -> None:
    settings = load(tmp_path, CONFIGURED)

    assert finnhub_feed_config(settings) == FinnhubFeedConfig(
        url="ws://127.0.0.1:9100/feed",
        max_symbols=10,
        open_timeout_secs=3.0,
        ping_interval_secs=None,
        ping_timeout_secs=7.0,
        backoff_initial_secs=1.0,
        backoff_max_secs=8.0,
        backoff_factor=3.0,
        healthy_after_secs=4.0,
        stale_after_secs=None,
        max_queued_frames=8,
        connect_when_idle=True,
    )
    assert settings.feed.down_alert_secs == 90


def test_market_feed_config_carries_the_flush_and_back_pressure_keys(tmp_path: Path) -> None:
    settings = load(tmp_path, CONFIGURED)

    assert market_feed_config(settings) == MarketFeedConfig(
        flush_every_secs=None, flush_grace_secs=0.5, max_pending_events=20
    )


def test_bar_aggregator_uses_the_configured_lateness_and_excluded_conditions(
    tmp_path: Path,
) -> None:
    aggregator = bar_aggregator(load(tmp_path, CONFIGURED))

    first = aggregator.add([("A", 10.0, 1_000, 5, ["12"]), ("A", 10.1, 2_000, 1, ["1"])])
    within_lateness = aggregator.add([("A", 10.2, 62_000, 1, [])])  # 62 s - 5 s: minute 0 open
    past_lateness = aggregator.add([("A", 10.3, 65_500, 1, [])])

    assert (list(first), list(within_lateness)) == ([], [])
    assert aggregator.stats.excluded == 1
    [minute] = past_lateness
    assert [(bar.open, bar.volume) for bar in minute.bars] == [(Decimal("10.1"), 1)]


def test_finnhub_budget_and_policy_carry_the_finnhub_section(tmp_path: Path) -> None:
    settings = load(tmp_path, CONFIGURED)

    budget = finnhub_budget(settings)

    assert budget.name == "finnhub"
    assert budget.windows == (RateWindow(max_calls=300, per_secs=60.0),)
    assert finnhub_policy(settings) == HttpPolicy(
        timeout_secs=3.0,
        max_attempts=2,
        backoff_base_secs=0.1,
        backoff_max_secs=2.0,
        max_rate_limited=1,
        retry_after_default_secs=4.0,
        max_retry_after_secs=30.0,
        breaker=BreakerConfig(failure_threshold=2, cooldown_secs=5.0),
    )
    assert settings.finnhub.rest_base_url == "https://finnhub.example/api/v2"


def test_yahoo_budget_and_policy_carry_the_yahoo_section(tmp_path: Path) -> None:
    settings = load(tmp_path, CONFIGURED)

    budget = yahoo_budget(settings)

    assert budget.name == "yahoo"
    assert budget.windows == (
        RateWindow(max_calls=10, per_secs=10.0),
        RateWindow(max_calls=1, per_secs=0.5),
    )
    assert yahoo_policy(settings) == HttpPolicy(
        timeout_secs=20.0,
        max_attempts=6,
        breaker=BreakerConfig(failure_threshold=9, cooldown_secs=60.0),
    )
    assert (settings.yahoo.base_url, settings.yahoo.user_agent) == (
        "http://127.0.0.1:9200",
        "Mozilla/5.0 (X11; Linux x86_64)",
    )


def test_market_and_scan_collection_keys_are_read(tmp_path: Path) -> None:
    settings = load(tmp_path, CONFIGURED)

    assert settings.market.daily_sources == ["yahoo"]
    assert settings.market.feed_volume is True
    assert settings.market.premarket_opens == time(7, 0)
    assert settings.feed.exclude_conditions == ["12", "37"]  # YAML's 12 is the code "12"
    scan = settings.scan
    assert (scan.collection_concurrency, scan.collection_margin_secs) == (4, 45.0)
    assert (scan.news_reserve_calls, scan.news_for_candidates) == (0, False)
    assert settings.strategy() == Settings().strategy()  # not rules of the domain


def test_environment_sets_nested_market_keys_beside_the_finnhub_secret(tmp_path: Path) -> None:
    environ = {
        "FIN_AGENT_FINNHUB_API_KEY": "sk-test",
        "FIN_AGENT_FINNHUB__HTTP__BREAKER__COOLDOWN_SECS": "12",
        "FIN_AGENT_FINNHUB__WINDOWS": '[{"max_calls": 5, "per_secs": 1}]',
        "FIN_AGENT_FEED__EXCLUDE_CONDITIONS": "12,37",
    }

    settings = load(tmp_path, "{}\n", environ)

    assert settings.finnhub_api_key is not None
    assert settings.finnhub_api_key.get_secret_value() == "sk-test"
    assert settings.finnhub.http.breaker.cooldown_secs == 12.0
    assert finnhub_budget(settings).windows == (RateWindow(max_calls=5, per_secs=1.0),)
    assert settings.feed.exclude_conditions == ["12", "37"]


# --- bad values name the field and the fix ------------------------------------------------------


def test_a_token_in_a_finnhub_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    text = (
        'feed: {url: "wss://ws.finnhub.io?token=sk-leak-1"}\n'
        'finnhub: {rest_base_url: "https://finnhub.io/api/v1?TOKEN=sk-leak-2"}\n'
    )
    fix = (
        "give the bare URL and the key as the finnhub_api_key secret (FIN_AGENT_FINNHUB_API_KEY "
        "or the file finnhub_api_key in secrets_dir), e.g. "
    )

    lines = problems(tmp_path, text)

    assert lines == [
        "finnhub.rest_base_url: the URL carries the API key (a token= parameter; its value is not "
        f"shown) (set in config.yaml line 2); {fix}https://finnhub.io/api/v1",
        "feed.url: the URL carries the API key (a token= parameter; its value is not shown) (set "
        f"in config.yaml line 1); {fix}wss://ws.finnhub.io",
    ]
    assert "sk-leak" not in "\n".join(lines)


def test_a_token_set_by_a_variable_names_the_variable_and_hides_the_token(tmp_path: Path) -> None:
    environ = {"FIN_AGENT_FEED__URL": "wss://ws.finnhub.io/?x=1&token=sk-leak-3"}

    lines = problems(tmp_path, "{}\n", environ)

    assert len(lines) == 1
    assert lines[0].startswith(
        "feed.url: the URL carries the API key (a token= parameter; its value is not shown) "
        "(set by FIN_AGENT_FEED__URL); give the bare URL"
    )
    assert "sk-leak" not in lines[0]


def test_urls_need_their_scheme_and_a_host_and_no_credentials(tmp_path: Path) -> None:
    text = (
        'feed: {url: "https://ws.finnhub.io"}\n'
        'finnhub: {rest_base_url: "finnhub.io/api/v1"}\n'
        'yahoo: {base_url: "https://me:pw@query1.finance.yahoo.com"}\n'
    )

    assert problems(tmp_path, text) == [
        "finnhub.rest_base_url: finnhub.io/api/v1 is not a https:// or http:// URL with a host "
        "(set in config.yaml line 2); write it as, e.g., https://finnhub.io/api/v1",
        "feed.url: https://ws.finnhub.io is not a wss:// or ws:// URL with a host (set in "
        "config.yaml line 1); write it as, e.g., wss://ws.finnhub.io",
        "yahoo.base_url: https://query1.finance.yahoo.com carries credentials before its host "
        "(set in config.yaml line 3); remove them, e.g. https://query1.finance.yahoo.com",
    ]


def test_rate_windows_must_exist_and_be_in_bounds(tmp_path: Path) -> None:
    text = (
        "finnhub: {windows: []}\n"
        "yahoo: {windows: [{max_calls: 0, per_secs: 1}, {max_calls: 5, per_secs: 0}]}\n"
    )

    assert problems(tmp_path, text) == [
        "finnhub.windows: has no window (set in config.yaml line 1); list at least one, e.g. "
        "[{max_calls: 60, per_secs: 60}]",
        "yahoo.windows[0].max_calls: 0 is below the minimum of 1 (set in config.yaml line 2); "
        "use a number from 1 to 1000000",
        "yahoo.windows[1].per_secs: 0 must be greater than 0 (set in config.yaml line 2); "
        "use a number above 0 and up to 86400",
    ]


def test_inconsistent_backoffs_and_retry_after_name_both_keys(tmp_path: Path) -> None:
    text = (
        "feed: {backoff_initial_secs: 40}\n"
        "yahoo: {http: {backoff_base_secs: 20, retry_after_default_secs: 200, "
        "max_retry_after_secs: 100}}\n"
    )

    assert problems(tmp_path, text) == [
        "feed.backoff_initial_secs: feed.backoff_initial_secs (40) must not exceed "
        "feed.backoff_max_secs (30) (set in config.yaml line 1); lower feed.backoff_initial_secs "
        "or raise feed.backoff_max_secs",
        "yahoo.http.backoff_base_secs: yahoo.http.backoff_base_secs (20) must not exceed "
        "yahoo.http.backoff_max_secs (10) (set in config.yaml line 2); lower "
        "yahoo.http.backoff_base_secs or raise yahoo.http.backoff_max_secs",
        "yahoo.http.retry_after_default_secs: yahoo.http.retry_after_default_secs (200) must not "
        "exceed yahoo.http.max_retry_after_secs (100) (set in config.yaml line 2); lower "
        "yahoo.http.retry_after_default_secs or raise yahoo.http.max_retry_after_secs",
    ]


def test_market_daily_sources_and_premarket_opens(tmp_path: Path) -> None:
    assert problems(tmp_path, 'market: {daily_sources: [], premarket_opens: "09:45"}\n') == [
        "market.daily_sources: lists no daily bar source (set in config.yaml line 1); list at "
        "least one, e.g. [yahoo]",
        "market.premarket_opens: 09:45 is not before the session opens (09:30) (set in "
        'config.yaml line 1); use a time before 09:30, e.g. "04:00"',
    ]
    assert problems(tmp_path, "market: {daily_sources: [yahoo, yahoo]}\n") == [
        "market.daily_sources[1]: yahoo is listed twice (set in config.yaml line 1); delete the "
        "repeat"
    ]
    assert problems(tmp_path, "market: {daily_sources: [stooq]}\n") == [
        "market.daily_sources[0]: 'stooq' is not an allowed value (set in config.yaml line 1); "
        "use one of: 'yahoo'"
    ]


def test_finnhub_transport_defaults_to_the_adapters_and_names_the_choices(tmp_path: Path) -> None:
    assert Settings().finnhub.transport == defaults_of(FinnhubRest)["transport"] == "aiohttp"
    assert set(get_args(FinnhubTransportName)) == set(get_args(FinnhubTransport))
    assert load(tmp_path, "finnhub: {transport: finnhub-python}\n").finnhub.transport == (
        "finnhub-python"
    )
    assert problems(tmp_path, "finnhub: {transport: requests}\n") == [
        "finnhub.transport: 'requests' is not an allowed value (set in config.yaml line 1); use "
        "one of: aiohttp, finnhub-python"
    ]


def test_feed_keys_out_of_range_or_of_the_wrong_kind(tmp_path: Path) -> None:
    text = (
        "feed: {max_symbols: 0, backoff_factor: 0.5, stale_after_secs: 0, "
        'exclude_conditions: ["12", "a b"], down_alert_secs: 0}\n'
        'yahoo: {user_agent: "  "}\n'
        "scan: {collection_concurrency: 0}\n"
    )

    assert problems(tmp_path, text) == [
        "scan.collection_concurrency: 0 is below the minimum of 1 (set in config.yaml line 3); "
        "use a number from 1 to 256",
        "feed.max_symbols: 0 is below the minimum of 1 (set in config.yaml line 1); use a number "
        "from 1 to 10000",
        "feed.backoff_factor: 0.5 is below the minimum of 1.0 (set in config.yaml line 1); use a "
        "number from 1 to 10",
        "feed.stale_after_secs: 0 must be greater than 0.0 (set in config.yaml line 1); use a "
        "number above 0 and up to 3600",
        "feed.exclude_conditions[1]: 'a b' is not a trade condition code (set in config.yaml "
        "line 1); write the code as the feed sends it, e.g. '12' (1-16 letters, digits, '.', "
        "'_', '-')",
        "feed.down_alert_secs: 0 is below the minimum of 1.0 (set in config.yaml line 1); use a "
        "number from 1 to 3600",
        "yahoo.user_agent: must be one line of text (an HTTP header value) (set in config.yaml "
        "line 2); write a browser's user agent on one line, e.g. "
        "'Mozilla/5.0 (compatible; fin-agent/0.1)'",
    ]


# --- restart-only -------------------------------------------------------------------------------


@pytest.mark.parametrize("section", NEW_SECTIONS)
def test_the_market_sections_are_restart_only(section: str) -> None:
    assert section not in LIVE_SECTIONS
    assert not is_live(f"{section}.anything")


def test_an_edit_of_the_market_sections_is_a_restart_change(tmp_path: Path) -> None:
    old = load(tmp_path, "{}\n")
    new = load(
        tmp_path,
        "feed: {max_symbols: 30}\nfinnhub: {windows: [{max_calls: 300, per_secs: 60}]}\n"
        "yahoo: {http: {breaker: {cooldown_secs: 9}}}\nmarket: {feed_volume: true}\n",
    )

    changes = diff(effective(old), effective(new), "old", "new")

    assert changes.live == ()
    assert changes.restart == (
        "feed.max_symbols",
        "finnhub.windows",
        "market.feed_volume",
        "yahoo.http.breaker.cooldown_secs",
    )
