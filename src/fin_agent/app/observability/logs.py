"""Logging set-up: structlog to standard error (standard output carries reports and JSON).

Every line carries its bound context (trading day, symbol, plan, event, consumer group) and the
active trace and span ids; secrets are masked whatever is logged: the values of the configured
secrets anywhere in a line, passwords inside URLs (`redis://:pw@host`), any `token=`/`key=`/
`password=` query parameter, and fields named like a secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

import structlog
from opentelemetry import trace

from fin_agent.app.config.urls import mask_url_secrets

MASK = "**********"
EventDict = MutableMapping[str, Any]
_SECRET_FIELD = re.compile(r"(password|secret|token|api_key|apikey|webhook_url)", re.IGNORECASE)
_MIN_SECRET_LEN = 4


def add_trace_ids(_: Any, __: str, event: EventDict) -> EventDict:
    """Add the active span's trace and span ids (W3C hex) to the line."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class SecretMasker:
    """A structlog processor that masks secret values, secret-looking fields and URL tokens."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True
        )

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if _SECRET_FIELD.search(key) and value not in (None, ""):
                event[key] = MASK
            else:
                event[key] = self._clean(value)
        return event

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, MASK)
            return mask_url_secrets(value)
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, BaseException):
            return self._clean(repr(value))
        return value


def configure_logging(
    level: str = "INFO",
    fmt: Literal["console", "json"] = "console",
    *,
    secrets: Iterable[str] = (),
) -> None:
    """Send structlog's output to stderr as console lines or JSON, at `level` and above."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_ids,
            structlog.processors.format_exc_info,
            SecretMasker(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
