"""Notifiers that post to webhooks: `DiscordNotifier` and `JsonWebhookNotifier` (any JSON endpoint).

`notify` only puts the message on a bounded queue and returns; one background task per notifier
sends the queue at a limited rate (token bucket), waits out a 429 for as long as the server says,
and retries 5xx, timeouts and connection errors with jittered exponential backoff. A full queue
drops the message; every drop and every failure is counted and logged. The webhook URL is a secret:
logs and reprs name its host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import aiohttp
import structlog
import tenacity
from tenacity.asyncio import AsyncRetrying
from yarl import URL

from fin_agent.adapters.notify.payloads import discord_payload, json_payload
from fin_agent.adapters.notify.token_bucket import (
    DISCORD_RATE_LIMIT,
    WEBHOOK_RATE_LIMIT,
    RateLimit,
    TokenBucket,
)
from fin_agent.adapters.retrying import equal_jitter_backoff
from fin_agent.domain.errors import ConfigError
from fin_agent.ports.notifier import Notification

log = structlog.get_logger(__name__)

_BODY_LOG_MAX = 200
_BODY_READ_MAX = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    """How a webhook notifier delivers: timeouts, queue bound, retries; `rate` None: the default."""

    timeout_secs: float = 10.0
    queue_size: int = 1000
    max_attempts: int = 5
    backoff_base_secs: float = 0.5
    backoff_max_secs: float = 30.0
    max_retry_after_secs: float = 60.0
    drain_timeout_secs: float = 5.0
    rate: RateLimit | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryStats:
    """What a notifier did so far: every message ends up sent, dropped or failed."""

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Attempt:
    ok: bool = False
    retryable: bool = True
    status: int | None = None
    retry_after_secs: float | None = None
    error: str = ""


class _WebhookNotifier:
    """The queue, the background sender, retries and the rate limit shared by both webhooks."""

    name: ClassVar[str] = "webhook"
    default_rate: ClassVar[RateLimit] = WEBHOOK_RATE_LIMIT

    def __init__(
        self,
        url: str,
        *,
        config: WebhookConfig | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            # The URL is a secret: name its scheme only.
            raise ConfigError(
                f"the {self.name} URL (scheme {parsed.scheme or 'none'!r}) is not an http(s) URL:"
                " set it to the webhook's full https:// address"
            )
        self._url = parsed
        self.host: str = parsed.host
        self._secrets = _secret_parts(parsed)
        self._config = config or WebhookConfig()
        self._bucket = TokenBucket(self._config.rate or self.default_rate, clock=clock)
        self._headers = dict(headers or {})
        self._session = session
        self._owns_session = session is None
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(self._config.queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._stopping = False
        self._counts = {f.name: 0 for f in fields(DeliveryStats)}
        self._backoff = equal_jitter_backoff(
            initial_secs=self._config.backoff_base_secs, max_secs=self._config.backoff_max_secs
        )
        self._log = log.bind(notifier=self.name, host=self.host)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r})"

    @property
    def stats(self) -> DeliveryStats:
        """The counts so far (a snapshot)."""
        return DeliveryStats(**self._counts)

    def payload(self, message: Notification) -> dict[str, Any]:
        """The JSON body posted for `message`."""
        raise NotImplementedError

    def headers_for(self, message: Notification) -> dict[str, str]:
        """The HTTP headers sent with `message` (secret: never logged)."""
        return dict(self._headers)

    async def start(self) -> None:
        """Open the HTTP session (unless one was given) and start sending the queue."""
        if self._worker is not None or self._closed:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession()
        # A fresh context: the sender's logs must not carry whatever event was bound at start.
        self._worker = asyncio.create_task(
            self._run(), name=f"notifier-{self.name}", context=contextvars.Context()
        )
        self._log.info("notifier_started")

    async def notify(self, message: Notification) -> None:
        """Queue `message` for sending; returns at once and never raises (a full queue drops it)."""
        try:
            if self._closed:
                self._drop(message, "closed")
                return
            self._queue.put_nowait(message)
            self._count("queued")
        except asyncio.QueueFull:
            self._drop(message, "queue_full")
        except Exception as exc:  # notify must never reach into trading
            self._count("dropped")
            self._log.error("notification_dropped", reason="notify_failed", error=self._safe(exc))

    async def drain(self, timeout_secs: float = 30.0) -> bool:
        """Wait until every queued message was sent or given up; False when time ran out."""
        try:
            async with asyncio.timeout(timeout_secs):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop taking messages, send what is queued for up to `drain_timeout_secs`, disconnect."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            drained = await self.drain(self._config.drain_timeout_secs)
            if not drained:
                self._log.warning("notifier_drain_timeout", waiting=self._queue.qsize())
            self._stopping = True  # the sender ends after its delivery even if the cancel is lost
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while not self._queue.empty():
            self._drop(self._queue.get_nowait(), "closed")
            self._queue.task_done()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._log.info("notifier_closed", **self._counts)

    def _count(self, name: str) -> int:
        self._counts[name] += 1
        return self._counts[name]

    def _drop(self, message: Notification, reason: str) -> None:
        dropped = self._count("dropped")
        self._log.warning(
            "notification_dropped",
            reason=reason,
            kind=str(message.kind),
            event_id=message.event_id,
            dropped_total=dropped,
        )

    async def _run(self) -> None:
        # `close` cancels this task; a cancel that lands as an HTTP timeout fires can come out as
        # that timeout instead (seen with aiohttp under load), so `_stopping` ends the loop too:
        # otherwise the sender would go on and then wait on the empty queue, and `close` forever.
        while not self._stopping:
            message = await self._queue.get()
            try:
                await self._deliver(message)
            except asyncio.CancelledError:
                self._drop(message, "closed")
                raise
            except Exception as exc:  # a bug in one delivery must not stop the sender
                self._fail(message, error=self._safe(exc), attempts=0)
            finally:
                self._queue.task_done()

    async def _deliver(self, message: Notification) -> None:
        body, headers = self.payload(message), self.headers_for(message)
        config = self._config
        if config.max_attempts < 1:
            self._fail(message, _Attempt(retryable=False, error="no attempt allowed"), 0)
            return
        attempts = 0

        async def attempt() -> _Attempt:
            nonlocal attempts
            attempts += 1
            await self._bucket.acquire()
            return await self._post(body, headers)

        def wait(state: tenacity.RetryCallState) -> float:
            wait = _result(state).retry_after_secs
            return self._backoff(state.attempt_number) if wait is None else wait

        def stop(state: tenacity.RetryCallState) -> bool:
            too_long = (state.upcoming_sleep or 0.0) > config.max_retry_after_secs
            return state.attempt_number >= config.max_attempts or too_long or self._stopping

        def retrying(state: tenacity.RetryCallState) -> None:
            result = _result(state)
            self._count("retried")
            self._log.info(
                "notification_retrying",
                kind=str(message.kind),
                event_id=message.event_id,
                attempt=state.attempt_number,
                status=result.status,
                error=result.error,
                wait_secs=round(state.upcoming_sleep, 3),
            )

        def given_up(state: tenacity.RetryCallState) -> None:
            result, wait_secs = _result(state), state.upcoming_sleep
            if state.attempt_number >= config.max_attempts:
                self._fail(message, result, state.attempt_number)
            elif self._stopping:  # closing: no retry
                self._fail(message, result, state.attempt_number, why="closed")
            else:
                why = "retry_after_too_long"
                self._fail(message, result, state.attempt_number, why=why, wait_secs=wait_secs)

        result: _Attempt | None = await AsyncRetrying(
            retry=tenacity.retry_if_result(lambda r: not r.ok and r.retryable),
            wait=wait,
            stop=stop,
            before_sleep=retrying,
            retry_error_callback=given_up,
            sleep=asyncio.sleep,
        )(attempt)
        if result is None:  # given up: failed and logged
            return
        if result.ok:
            self._count("sent")
            self._log.debug("notification_sent", kind=str(message.kind), attempt=attempts)
            return
        self._fail(message, result, attempts)

    def _fail(
        self,
        message: Notification,
        result: _Attempt | None = None,
        attempts: int = 0,
        *,
        error: str = "",
        why: str = "gave_up",
        wait_secs: float | None = None,
    ) -> None:
        failed = self._count("failed")
        self._log.error(
            "notification_failed",
            why=why,
            kind=str(message.kind),
            event_id=message.event_id,
            attempts=attempts,
            status=result.status if result else None,
            error=result.error if result else error,
            wait_secs=wait_secs,
            failed_total=failed,
        )

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> _Attempt:
        if self._session is None:
            return _Attempt(retryable=False, error="notifier not started")
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_secs)
        try:
            async with self._session.post(
                self._url, json=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
                self._respect_rate_headers(response.headers)
                if 200 <= status < 300:
                    return _Attempt(ok=True, status=status)
                text = (await response.content.read(_BODY_READ_MAX)).decode("utf-8", "replace")
                if status == 429:
                    self._count("rate_limited")
                    wait = _retry_after(text, response.headers)
                    self._bucket.block_for(min(wait or 0.0, self._config.max_retry_after_secs))
                    return _Attempt(status=status, retry_after_secs=wait, error="rate limited")
                error = self._redact(text)[:_BODY_LOG_MAX]
                return _Attempt(
                    status=status, retryable=status >= 500 or status == 408, error=error
                )
        except TimeoutError:
            return _Attempt(error=f"no answer in {self._config.timeout_secs} s")
        except aiohttp.ClientError as exc:
            return _Attempt(error=self._safe(exc))

    def _respect_rate_headers(self, headers: Mapping[str, str]) -> None:
        """Discord says when a bucket is empty (`X-RateLimit-Remaining: 0`): wait before asking."""
        reset_after = _seconds(headers.get("X-RateLimit-Reset-After"))
        if headers.get("X-RateLimit-Remaining") == "0" and reset_after:
            self._bucket.block_for(min(reset_after, self._config.max_retry_after_secs))

    def _safe(self, exc: BaseException) -> str:
        return self._redact(f"{type(exc).__name__}: {exc}")

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


class DiscordNotifier(_WebhookNotifier):
    """Posts notifications to a Discord webhook as a title line and a coloured embed.

    Default rate: 5 messages per 2 s (Discord's per-webhook limit); mentions are disabled.
    """

    name: ClassVar[str] = "discord"
    default_rate: ClassVar[RateLimit] = DISCORD_RATE_LIMIT

    def __init__(
        self,
        url: str,
        *,
        config: WebhookConfig | None = None,
        session: aiohttp.ClientSession | None = None,
        username: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(url, config=config, session=session, clock=clock)
        self._username = username

    def payload(self, message: Notification) -> dict[str, Any]:
        """Discord's webhook JSON for `message`, within Discord's limits."""
        return discord_payload(message, username=self._username)


class JsonWebhookNotifier(_WebhookNotifier):
    """Posts notifications as a generic JSON document (see `json_payload`).

    `headers` (an Authorization header, say) are secret too: they are sent and never logged. The
    event id goes out as the `Idempotency-Key` header, so a receiver can drop redeliveries.
    """

    name: ClassVar[str] = "webhook"

    def payload(self, message: Notification) -> dict[str, Any]:
        """The generic JSON document for `message`."""
        return json_payload(message)

    def headers_for(self, message: Notification) -> dict[str, str]:
        """The configured headers plus `Idempotency-Key`: the event id."""
        return {**self._headers, "Idempotency-Key": message.event_id}


def _secret_parts(url: URL) -> tuple[str, ...]:
    """Every part of the URL that could give it away, longest first."""
    parts = {str(url), url.path_qs, url.raw_path_qs, url.query_string}
    parts.update(segment for segment in url.parts if len(segment) >= 16)
    return tuple(sorted((p for p in parts if len(p) > 1), key=len, reverse=True))


def _result(state: tenacity.RetryCallState) -> _Attempt:
    outcome = state.outcome
    if outcome is None:  # pragma: no cover - tenacity calls these after an attempt
        raise AssertionError("no attempt yet")
    result: _Attempt = outcome.result()
    return result


def _seconds(value: object) -> float | None:
    try:
        secs = float(str(value))
    except ValueError:
        return None
    return secs if math.isfinite(secs) and secs >= 0 else None


def _retry_after(body: str, headers: Mapping[str, str]) -> float | None:
    """Seconds to wait after a 429: Discord's `retry_after` in the body, else `Retry-After`."""
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict) and (secs := _seconds(data.get("retry_after"))) is not None:
            return secs
    header = headers.get("Retry-After")
    if header is None:
        return None
    if (secs := _seconds(header)) is not None:
        return secs
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    delta: float = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, delta)
