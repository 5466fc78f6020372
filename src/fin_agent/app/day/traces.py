"""One trace per traded symbol: its signal's span is the parent of its plan, risk, order and fills.

The events about a symbol are published inside that context, so the bus carries the signal's
trace to every consumer: one trace id runs from `signal.generated` to `plan.executed` and on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import context, trace
from opentelemetry.context import Context

from fin_agent.domain.events import (
    DomainEvent,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    SignalGenerated,
)
from fin_agent.domain.values import Symbol
from fin_agent.ports.event_bus import EventBus

_tracer = trace.get_tracer("fin_agent.trading")


def symbol_of(event: DomainEvent) -> Symbol | None:
    """The symbol an event is about, when it is about one."""
    match event:
        case SignalGenerated():
            return event.candidate.symbol
        case PlanCreated():
            return event.plan.symbol
        case OrderPlaced():
            return event.order.symbol
        case PlanExecuted() | PositionClosed():
            return event.fill.symbol
        case PlanRejected() | PlanExpired():
            return event.symbol
        case _:
            return None


class SymbolTraces:
    """The trace context of each symbol's signal, continued by everything about that symbol."""

    def __init__(self) -> None:
        self._contexts: dict[Symbol, Context] = {}

    def day(self, name: str, **attributes: str) -> AbstractContextManager[trace.Span]:
        """A span of the day itself (the scan)."""
        return _tracer.start_as_current_span(name, attributes=attributes)

    @contextmanager
    def signal(self, symbol: Symbol) -> Iterator[None]:
        """Open the symbol's own trace, `signal <SYMBOL>` (linked to the scan), for later spans."""
        scan = trace.get_current_span().get_span_context()
        with _tracer.start_as_current_span(
            f"signal {symbol}",
            context=Context(),  # a new trace: one per traded symbol
            links=[trace.Link(scan)] if scan.is_valid else [],
            attributes={"symbol": symbol},
        ):
            self._contexts[symbol] = context.get_current()
            yield

    def span(self, name: str, symbol: Symbol) -> AbstractContextManager[trace.Span]:
        """A step about `symbol` (plan, risk, order, fill, close) in the symbol's trace."""
        return _tracer.start_as_current_span(
            f"{name} {symbol}", context=self._contexts.get(symbol), attributes={"symbol": symbol}
        )

    async def publish(self, bus: EventBus, events: Sequence[DomainEvent]) -> None:
        """Publish in order, each run of one symbol's events inside that symbol's trace."""
        for symbol, run in itertools.groupby(events, key=symbol_of):
            ctx = self._contexts.get(symbol) if symbol is not None else None
            token = context.attach(ctx) if ctx is not None else None
            try:
                await bus.publish(list(run))
            finally:
                if token is not None:
                    context.detach(token)
