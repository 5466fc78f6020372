"""W3C trace context for stream entries: the producer's traceparent in, the consumer's span out."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
bus_tracer = trace.get_tracer("fin_agent.bus")


def current_traceparent() -> str:
    """The traceparent of the active span, or "" when nothing is being traced."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def context_of(traceparent: str) -> Context:
    """The context a consumer continues: the producer's span as the parent, or an empty one."""
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else Context()


def link_to(traceparent: str) -> trace.Link | None:
    """A span link to the producer's span (for a batch that handles many traces at once)."""
    span_context = trace.get_current_span(context_of(traceparent)).get_span_context()
    return trace.Link(span_context) if span_context.is_valid else None
