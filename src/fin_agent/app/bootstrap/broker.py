"""The broker of `broker.kind`: the paper broker, or `AlpacaBroker` on Alpaca (or the local
server), with its stream, its shared rate budget, its circuit breakers and its reconciliation,
started and stopped with the container. Its differences are published as `error.raised`.
`local_alpaca`: an in-process local Alpaca server and the settings of a broker on it (the demo).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC

from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.vendor_http.circuit_breaker import BreakerConfig, CircuitBreakers
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.app.config.broker import AlpacaMode, BrokerKind
from fin_agent.app.config.local_alpaca import on_local_alpaca
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Closer
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import ErrorRaised, Severity
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import EventBus
from fin_agent.ports.orders import Orders


def build_orders(
    settings: Settings,
    costs: ExecutionCosts,
    *,
    bus: EventBus,
    clock: Clock,
    starters: list[Closer],
    closers: list[Closer],
    budget: RateBudget | None = None,
) -> Orders:
    """The `Orders` port of `broker.kind` (`budget`: an Alpaca budget shared with market data)."""
    if settings.broker.kind is BrokerKind.PAPER:
        return PaperBroker(costs)
    # Imported here: alpaca-py takes about 1.5 s to import, which every start (and every restart
    # after a crash) of an agent on the paper broker would otherwise pay.
    from fin_agent.adapters.broker.alpaca.broker import AlpacaBroker, AlpacaBrokerConfig
    from fin_agent.adapters.broker.alpaca.rest import AlpacaRest, trading_client
    from fin_agent.adapters.broker.alpaca.stream import TradeUpdatesStream
    from fin_agent.adapters.broker.alpaca_local.relay import LocalMarketRelay

    config = settings.broker.alpaca
    if settings.alpaca_key_id is None or settings.alpaca_secret_key is None:
        raise ConfigError("broker.kind is alpaca: set the alpaca_key_id and alpaca_secret_key")
    key = settings.alpaca_key_id.get_secret_value()
    secret = settings.alpaca_secret_key.get_secret_value()
    client = trading_client(
        key_id=key,
        secret_key=secret,
        paper=config.mode is AlpacaMode.PAPER,
        base_url=config.rest_url(),
    )
    budget = budget or alpaca_budget(settings)
    breakers = CircuitBreakers(
        "alpaca",
        BreakerConfig(
            failure_threshold=config.breaker_failures, cooldown_secs=config.breaker_cooldown_secs
        ),
    )

    async def problems(code: str, message: str) -> None:
        at = clock.now().astimezone(UTC)
        await bus.publish(
            [
                ErrorRaised(
                    id=ErrorRaised.id_for(f"broker.{code}:{at.isoformat()}:{message}"),
                    occurred_at=at,
                    trading_day=at.date(),
                    source="broker",
                    code=f"broker.{code}",
                    message=message,
                    severity=Severity.ERROR,
                )
            ]
        )

    relay = LocalMarketRelay(config.rest_url()) if config.local_relay else None
    broker = AlpacaBroker(
        AlpacaRest(client, budget, breakers),
        costs=costs,
        problems=problems,
        now=clock.now,
        config=AlpacaBrokerConfig(reconcile_interval_secs=config.reconcile_interval_secs),
        relay=relay,
    )
    broker.attach(
        TradeUpdatesStream(
            config.trade_stream_url(),
            key,
            secret,
            on_update=broker.on_update,
            on_connected=broker.on_connected,
        )
    )
    starters.append(broker.start)
    closers.append(broker.stop)
    if relay is not None:
        closers.append(relay.close)
    return broker


def alpaca_budget(settings: Settings) -> RateBudget:
    """The one budget of an Alpaca account's calls (`broker.alpaca.calls_per_minute`)."""
    config = settings.broker.alpaca
    return RateBudget(
        [RateWindow(max_calls=config.calls_per_minute, per_secs=60.0)],
        name="alpaca",
        margin_secs=config.budget_margin_secs,
    )


@contextlib.asynccontextmanager
async def local_alpaca(settings: Settings) -> AsyncIterator[Settings]:
    """A local Alpaca server in this process, holding `account.starting_equity` in cash, and
    the settings of an Alpaca broker trading on it (the demo's `--broker alpaca`): the agent
    hands it its bars (`local_relay`), so it fills by the paper broker's rules."""
    from fin_agent.adapters.broker.alpaca_local.book import LocalBook
    from fin_agent.adapters.broker.alpaca_local.server import LocalAlpacaServer

    server = LocalAlpacaServer(
        LocalBook(cash=settings.strategy_equity(), slippage_bps=settings.execution.slippage_bps)
    )
    await server.start()
    try:
        yield on_local_alpaca(settings, base_url=server.base_url, stream_url=server.stream_url)
    finally:
        await server.stop()
