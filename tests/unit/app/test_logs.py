"""Log lines carry their context and trace ids, and never a secret."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from fin_agent.app.observability.logs import MASK, configure_logging

SECRET = "fk-SECRET-TOKEN-123-abcdef"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with redirect_stderr(out):
        configure_logging("INFO", "json", secrets=[SECRET, "pw"])
        yield out
    structlog.reset_defaults()


def logged(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_secret_is_masked_wherever_it_appears_in_a_line(lines: io.StringIO) -> None:
    log = structlog.get_logger("t")

    log.info("connecting", url=f"wss://ws.finnhub.io?token={SECRET}", note=f"key is {SECRET}")
    log.error("failed", error=RuntimeError(f"403 for {SECRET}"), args=[SECRET, {"k": SECRET}])
    log.info("config", finnhub_api_key="anything", database_password="x", detail="?apikey=abc&x=1")

    text = lines.getvalue()
    assert SECRET not in text
    first, second, third = logged(lines)
    assert first["url"] == f"wss://ws.finnhub.io?token={MASK}"
    assert first["note"] == f"key is {MASK}"
    assert MASK in str(second["error"])
    assert second["args"] == [MASK, {"k": MASK}]
    assert third["finnhub_api_key"] == third["database_password"] == MASK
    assert third["detail"] == f"?apikey={MASK}&x=1"


def test_short_secrets_are_not_used_to_mask_everything(lines: io.StringIO) -> None:
    structlog.get_logger("t").info("plan_created", symbol="PWR")

    assert logged(lines)[0]["symbol"] == "PWR"


def test_lines_carry_bound_context_and_the_active_trace_id(lines: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("t")
    log = structlog.get_logger("t")

    with (
        structlog.contextvars.bound_contextvars(trading_day="2025-03-03"),
        tracer.start_as_current_span("s") as span,
    ):
        log.info("order_placed", symbol="ABC", plan_id="gap_and_go-2025-03-03-ABC")

    [line] = logged(lines)
    assert line["trading_day"] == "2025-03-03"
    assert line["symbol"] == "ABC"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
