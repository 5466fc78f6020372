"""The Alpaca broker on a fresh local Alpaca server, and the orders and bars the tests trade."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fin_agent.adapters.broker.alpaca.broker import AlpacaBroker
from fin_agent.adapters.broker.alpaca.rest import AlpacaRest, trading_client
from fin_agent.adapters.broker.alpaca.stream import StreamPolicy, TradeUpdatesStream
from fin_agent.adapters.broker.alpaca_local.book import LocalBook
from fin_agent.adapters.broker.alpaca_local.relay import LocalMarketRelay
from fin_agent.adapters.broker.alpaca_local.server import LocalAlpacaServer
from fin_agent.adapters.vendor_http.circuit_breaker import CircuitBreakers
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.domain.orders import BracketOrder, Fill
from fin_agent.domain.rules import ExecutionCosts
from fin_agent.domain.values import Bar, Side, Symbol
from fin_agent.ports.orders import Orders

T0 = datetime(2026, 3, 2, 14, 35, tzinfo=UTC)
SYM = Symbol("GAPX")


def bar(minute: int, o: str, h: str, low: str, c: str, symbol: Symbol = SYM) -> Bar:
    """A one-minute bar `minute` minutes after 09:35 ET."""
    return Bar(
        symbol=symbol,
        start=T0 + timedelta(minutes=minute),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(low),
        close=Decimal(c),
        volume=1000,
    )


def bracket(
    plan_id: str = "2026-03-02:GAPX:gap", qty: int = 100, symbol: Symbol = SYM
) -> BracketOrder:
    """A long bracket: trigger 10.50, stop 10.00, target 11.50."""
    return BracketOrder(
        client_order_id=plan_id,
        symbol=symbol,
        side=Side.LONG,
        qty=qty,
        trigger=Decimal("10.50"),
        stop=Decimal("10.00"),
        target=Decimal("11.50"),
        placed_at=T0,
    )


@dataclass
class Harness:
    """A broker under test and, for Alpaca, the local server behind it."""

    broker: Orders
    server: LocalAlpacaServer | None = None
    alpaca: AlpacaBroker | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    async def fills(self, bars: Sequence[Bar]) -> list[Fill]:
        """Hand the bars to the broker and take the fills they made."""
        await self.broker.on_market(bars)
        return list(await self.broker.take_fills())


def summary(fills: Sequence[Fill]) -> list[tuple[str, int, Decimal, datetime]]:
    """What a fill must agree on across brokers."""
    return [(str(f.kind), f.qty, f.price, f.at) for f in fills]


async def alpaca_harness(
    book: LocalBook | None = None,
) -> tuple[Harness, Callable[[], Awaitable[None]]]:
    """An `AlpacaBroker` on a fresh local server, its stream connected."""
    server = LocalAlpacaServer(book or LocalBook(cash=Decimal(100_000)))
    await server.start()
    relay = LocalMarketRelay(server.base_url)
    problems: list[tuple[str, str]] = []

    async def problem(code: str, message: str) -> None:
        problems.append((code, message))

    client = trading_client(
        key_id="local-key", secret_key="local-secret", paper=True, base_url=server.base_url
    )
    rest = AlpacaRest(
        client, RateBudget([RateWindow(max_calls=200, per_secs=60.0)], name="alpaca"),
        CircuitBreakers("alpaca"),
    )  # fmt: skip
    broker = AlpacaBroker(
        rest, costs=ExecutionCosts(), problems=problem, now=lambda: T0, relay=relay
    )
    stream = TradeUpdatesStream(
        server.stream_url, "local-key", "local-secret",
        on_update=broker.on_update, on_connected=broker.on_connected,
        policy=StreamPolicy(backoff_base_secs=0.01, backoff_max_secs=0.05),
    )  # fmt: skip
    broker.attach(stream)
    await broker.start()
    await stream.connected.wait()

    async def close() -> None:
        await broker.stop()
        await relay.close()
        await server.stop()

    return Harness(broker=broker, server=server, alpaca=broker, problems=problems), close
