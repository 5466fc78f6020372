"""The live agent's parts, wired from settings: Finnhub's REST and trade feed, Yahoo's daily bars
cached in the store, the live market ports, the market feed onto the bus, the schedule's slots and
the jobs that run each trading day (`LiveAgent`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import aiohttp

from fin_agent.adapters.alpaca_data.client import AlpacaDataConfig, AlpacaMarketData
from fin_agent.adapters.finnhub.feed import FinnhubTradeFeed
from fin_agent.adapters.finnhub.feed_news import FinnhubWebSocketNews
from fin_agent.adapters.finnhub.news_poll import FinnhubNewsPoller, NewsPollConfig
from fin_agent.adapters.finnhub.rest import FinnhubRest
from fin_agent.adapters.live.market import DailyBarSource, LiveMarket
from fin_agent.adapters.live.whole_market import DailyHistory, ListedUniverse, SnapshotPremarkets
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.adapters.yahoo.daily import YahooDailyBars
from fin_agent.app.bootstrap.broker import alpaca_budget
from fin_agent.app.bootstrap.bus import BusKind, slots
from fin_agent.app.bootstrap.core import build, exchange_calendar, wall_clock
from fin_agent.app.bootstrap.vendors import (
    bar_aggregator,
    finnhub_budget,
    finnhub_feed_config,
    finnhub_policy,
    market_feed_config,
    yahoo_budget,
    yahoo_policy,
)
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Container
from fin_agent.app.live.agent import LiveAgent, in_session
from fin_agent.app.live.days import LiveDays
from fin_agent.app.live.market_feed import MarketFeed
from fin_agent.app.live.news import LiveNews
from fin_agent.app.live.scan import LiveScan
from fin_agent.app.schedule.runs import Schedule
from fin_agent.app.schedule.scheduler import Scheduler, Waiter, wait_or_stop
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import BarsClosed, DomainEvent
from fin_agent.domain.universe_filter import UniverseFilter
from fin_agent.domain.values import Symbol, symbol
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.clock import Clock
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News
from fin_agent.ports.store import Store

SETTLE_SECS = 1.0  # after a minute's bars are published, time for the bus to hand them over


async def build_live(
    settings: Settings,
    *,
    bus: BusKind | None = None,
    clock: Clock | None = None,
    calendar: Calendar | None = None,
    waiter: Waiter = wait_or_stop,
    out: TextIO | None = None,
) -> LiveAgent:
    """Wire the live agent (`market.source: finnhub`): nothing connects until it runs."""
    if settings.finnhub_api_key is None:  # load_settings refuses this for market.source finnhub
        raise ConfigError("the live agent needs finnhub_api_key: `fin-agent config check` says how")
    whole_market = settings.market.universe_source == "alpaca"
    if not settings.scan.universe and not whole_market:
        raise ConfigError(
            "scan.universe is empty: the live market scans the symbols listed there (the "
            "free Finnhub plan allows 60 calls a minute: 300 symbols take five minutes); "
            "list them in config.yaml, or scan the whole market with market.universe_source: "
            "alpaca"
        )
    key = settings.finnhub_api_key.get_secret_value()
    clock = clock or wall_clock()
    calendar = calendar or exchange_calendar(settings)
    session = aiohttp.ClientSession()
    rest = FinnhubRest(
        settings.finnhub.rest_base_url,
        key,
        finnhub_budget(settings),
        session,
        policy=finnhub_policy(settings),
        transport=settings.finnhub.transport,
    )
    daily_budget = yahoo_budget(settings)
    yahoo = YahooDailyBars(
        daily_budget,
        settings.yahoo.base_url,
        session,
        policy=yahoo_policy(settings),
        user_agent=settings.yahoo.user_agent,
    )
    holder: list[LiveMarket] = []
    alpaca = _alpaca_data(settings, session) if whole_market else None

    def ports(store: Store) -> tuple[MarketData, News]:
        sources: dict[str, DailyBarSource] = {"yahoo": yahoo}
        whole: dict[str, Any] = {}
        if alpaca is not None:
            whole = whole_market_parts(
                settings, alpaca, store, calendar, lambda: holder[0].universe
            )
        market = LiveMarket(
            universe=[symbol(s) for s in settings.scan.universe],
            finnhub=rest,
            daily_sources=[sources[name] for name in settings.market.daily_sources],
            cache=store.daily_bar_cache(),
            calendar=calendar,
            clock=clock,
            tz=ZoneInfo(settings.timezone),
            premarket_opens=settings.market.premarket_opens,
            feed_volume=settings.market.feed_volume,
            refetch_sessions=settings.market.daily_refetch_sessions,
            **whole,
        )
        holder.append(market)
        return market, market

    try:
        container = await build(
            settings,
            market=ports,
            calendar=calendar,
            clock=clock,
            bus=bus,
            alpaca_budget=alpaca.budget if alpaca is not None else None,
        )
    except BaseException:
        await session.close()
        raise
    container.closers.append(session.close)
    market = holder[0]
    trades = FinnhubTradeFeed(
        finnhub_feed_config(settings),
        key,
        clock=clock,
        market_open=lambda: in_session(calendar, clock.now(), container.timezone),
    )
    feed = MarketFeed(
        trades,
        container.bus,
        clock=clock,
        timezone=settings.timezone,
        aggregator=bar_aggregator(settings),
        config=market_feed_config(settings),
    )

    async def keep_bars(event: DomainEvent) -> None:
        if isinstance(event, BarsClosed):
            market.buffer.add(event.bars)  # pre-market bars feed the scan's prices

    container.bus.subscribe("market-buffer", [BarsClosed.TYPE], keep_bars)
    schedule = Schedule(settings.schedule, calendar, exchange_timezone=settings.timezone)
    scheduler = Scheduler(
        schedule, slots=slots(container, clock), bus=container.bus, clock=clock, waiter=waiter
    )
    feed_settings = settings.feed
    settle = (feed_settings.flush_every_secs or 0.0) + feed_settings.flush_grace_secs + SETTLE_SECS
    days = LiveDays(
        container,
        market=market,
        scanner=lambda c: _scanner(c, market, rest.budget, daily_budget),
        watch=lambda symbols: feed.set_watchlist(symbols),
        settle_secs=settle,
        out=out,
    )
    days.register(scheduler)
    return LiveAgent(
        container=container,
        market=market,
        trades=trades,
        feed=feed,
        scheduler=scheduler,
        days=days,
        budgets=(rest.budget, daily_budget, *((alpaca.budget,) if alpaca else ())),
        news=_news(container, trades, rest),
    )


def _alpaca_data(settings: Settings, session: aiohttp.ClientSession) -> AlpacaMarketData:
    """Alpaca's assets, snapshots and daily bars, in the account's one budget."""
    config = settings.broker.alpaca
    if settings.alpaca_key_id is None or settings.alpaca_secret_key is None:
        raise ConfigError(
            "market.universe_source is alpaca: set alpaca_key_id and alpaca_secret_key"
        )
    return AlpacaMarketData(
        AlpacaDataConfig(
            trading_url=config.rest_url(),
            data_url=config.data_url.rstrip("/"),
            feed=config.feed,
            snapshot_symbols_per_call=config.snapshot_symbols_per_call,
            bar_symbols_per_call=config.bar_symbols_per_call,
        ),
        key_id=settings.alpaca_key_id.get_secret_value(),
        secret_key=settings.alpaca_secret_key.get_secret_value(),
        budget=alpaca_budget(settings),
        session=session,
    )


def whole_market_parts(
    settings: Settings,
    alpaca: AlpacaMarketData,
    store: Store,
    calendar: Calendar,
    universe: Callable[[], Sequence[Symbol]],
) -> dict[str, Any]:
    """`LiveMarket`'s whole-market parts: the listed universe, its history, its snapshots."""
    bounds = settings.market.universe_filter
    rules = settings.strategy().scan
    history = DailyHistory(
        store.daily_bar_cache(),
        alpaca,
        calendar,
        refetch_sessions=settings.market.daily_refetch_sessions,
        splits=alpaca,
    )
    listed = ListedUniverse(
        alpaca,
        history,
        UniverseFilter(
            price_min=bounds.price_min,
            price_max=bounds.price_max,
            adv_min=bounds.adv_min,
            adv_period=rules.adv_period,
        ),
        calendar,
        history_bars=rules.history_bars,
    )
    snapshots = SnapshotPremarkets(
        alpaca,
        universe,
        tz=ZoneInfo(settings.timezone),
        opens=settings.market.premarket_opens,
    )
    return {"universe_source": listed, "history": history, "snapshots": snapshots}


def _scanner(
    container: Container, market: LiveMarket, quotes: RateBudget, daily: RateBudget
) -> LiveScan:
    """The live scan with the config in force (`scan` settings are live)."""
    settings = container.live.current.settings
    scan = settings.scan
    return LiveScan(
        market=market,
        news=market,
        rules=container.live.strategy.scan,
        clock=container.clock,
        quote_calls_per_minute=quotes.calls_per_minute,
        daily_calls_per_minute=daily.calls_per_minute,
        news_lookback=timedelta(hours=scan.news_lookback_hours),
        news_for_candidates=scan.news_for_candidates,
        news_reserve_calls=scan.news_reserve_calls,
        concurrency=scan.collection_concurrency,
        margin=timedelta(seconds=scan.collection_margin_secs),
    )


def _news(container: Container, trades: FinnhubTradeFeed, rest: FinnhubRest) -> LiveNews | None:
    """The live news stream of `news.source`: the feed's WebSocket news, REST polling, or none."""
    news = container.settings.news
    if news.source == "off":
        return None
    if news.source == "websocket":
        return LiveNews(container, FinnhubWebSocketNews(trades))
    config = NewsPollConfig(
        every_secs=news.poll_every_secs,
        symbols_per_round=news.poll_symbols_per_round,
        general=news.poll_general,
    )
    return LiveNews(container, FinnhubNewsPoller(rest, container.clock, config))
