"""The live market's settings as the vendor adapters' own configs (Finnhub's feed and REST,
Yahoo's daily bars, their rate budgets and HTTP policies, the bar aggregator).

Kept apart from `config.market` so that loading the settings never imports the network
libraries. The settings already hold every check the adapters make, so none of these raises.
"""

from __future__ import annotations

from fin_agent.adapters.finnhub.feed_config import FinnhubFeedConfig
from fin_agent.adapters.live.bar_aggregator import BarAggregator
from fin_agent.adapters.vendor_http.circuit_breaker import BreakerConfig
from fin_agent.adapters.vendor_http.json_client import HttpPolicy
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.app.config.market import HttpPolicySettings, RateWindowSettings
from fin_agent.app.config.settings import Settings
from fin_agent.app.live.market_feed import MarketFeedConfig


def finnhub_feed_config(settings: Settings) -> FinnhubFeedConfig:
    """`feed:` as the trade feed's config (the token is added by the feed, from the secret)."""
    feed = settings.feed
    return FinnhubFeedConfig(
        url=feed.url,
        max_symbols=feed.max_symbols,
        open_timeout_secs=feed.open_timeout_secs,
        ping_interval_secs=feed.ping_interval_secs,
        ping_timeout_secs=feed.ping_timeout_secs,
        backoff_initial_secs=feed.backoff_initial_secs,
        backoff_max_secs=feed.backoff_max_secs,
        backoff_factor=feed.backoff_factor,
        healthy_after_secs=feed.healthy_after_secs,
        stale_after_secs=feed.stale_after_secs,
        max_queued_frames=feed.max_queued_frames,
        connect_when_idle=feed.connect_when_idle,
    )


def market_feed_config(settings: Settings) -> MarketFeedConfig:
    """`feed:`'s flushing and back-pressure keys as the `MarketFeed`'s config."""
    feed = settings.feed
    return MarketFeedConfig(
        flush_every_secs=feed.flush_every_secs,
        flush_grace_secs=feed.flush_grace_secs,
        max_pending_events=feed.max_pending_events,
    )


def bar_aggregator(settings: Settings) -> BarAggregator:
    """A new `BarAggregator` with `feed:`'s lateness and excluded trade conditions."""
    feed = settings.feed
    return BarAggregator(
        lateness_secs=feed.lateness_secs, exclude_conditions=tuple(feed.exclude_conditions)
    )


def finnhub_budget(settings: Settings) -> RateBudget:
    """The one rate budget every Finnhub REST call shares (`finnhub.windows`)."""
    finnhub = settings.finnhub
    return RateBudget(
        _windows(finnhub.windows), name="finnhub", margin_secs=finnhub.budget_margin_secs
    )


def yahoo_budget(settings: Settings) -> RateBudget:
    """The rate budget of Yahoo's daily bar calls (`yahoo.windows`)."""
    yahoo = settings.yahoo
    return RateBudget(_windows(yahoo.windows), name="yahoo", margin_secs=yahoo.budget_margin_secs)


def finnhub_policy(settings: Settings) -> HttpPolicy:
    """`finnhub.http` as the Finnhub REST client's policy."""
    return _policy(settings.finnhub.http)


def yahoo_policy(settings: Settings) -> HttpPolicy:
    """`yahoo.http` as the Yahoo client's policy."""
    return _policy(settings.yahoo.http)


def _windows(windows: list[RateWindowSettings]) -> tuple[RateWindow, ...]:
    return tuple(RateWindow(max_calls=w.max_calls, per_secs=w.per_secs) for w in windows)


def _policy(http: HttpPolicySettings) -> HttpPolicy:
    return HttpPolicy(
        timeout_secs=http.timeout_secs,
        max_attempts=http.max_attempts,
        backoff_base_secs=http.backoff_base_secs,
        backoff_max_secs=http.backoff_max_secs,
        max_rate_limited=http.max_rate_limited,
        retry_after_default_secs=http.retry_after_default_secs,
        max_retry_after_secs=http.max_retry_after_secs,
        breaker=BreakerConfig(
            failure_threshold=http.breaker.failure_threshold,
            cooldown_secs=http.breaker.cooldown_secs,
        ),
    )
