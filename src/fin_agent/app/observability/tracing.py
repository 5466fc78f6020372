"""OpenTelemetry set-up: a tracer provider per agent, exporting to nothing, stderr, or OTLP.

Spans: `scan`, one `signal <SYMBOL>` per candidate, and under it `plan`, `risk`, `order`, `fill` and
`close` of that symbol, so one trace runs from a signal to its fill and exit; `store.write` for
persistence. The bus carries the W3C traceparent in every entry, so a consumer's span continues
the producer's trace across the stream hop.
"""

from __future__ import annotations

import sys
from typing import TextIO

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from fin_agent.app.config.runtime import TracingSettings

TRACER_NAME = "fin_agent"


def configure_tracing(
    settings: TracingSettings, *, out: TextIO | None = None
) -> TracerProvider | None:
    """Install the global tracer provider for `settings.exporter`; None when tracing is off."""
    if settings.exporter == "none":
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter: SpanExporter
    if settings.exporter == "console":
        stream = out or sys.stderr
        exporter = ConsoleSpanExporter(
            out=stream, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    """The agent's tracer (a no-op until a provider is configured)."""
    return trace.get_tracer(TRACER_NAME)
