"""The webhook notifiers against a local receiver: content, 429 and 5xx retries, a hanging server,
the queue bound, the rate limit, and a secret URL that never reaches the logs."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import pytest
import pytest_asyncio
import structlog
from aiohttp import web
from structlog.typing import EventDict

from fin_agent.adapters.notify.payloads import (
    DISCORD_CONTENT_MAX,
    DISCORD_EMBED_TOTAL_MAX,
    DISCORD_FIELD_VALUE_MAX,
    DISCORD_FIELDS_MAX,
    discord_payload,
)
from fin_agent.adapters.notify.token_bucket import RateLimit, TokenBucket
from fin_agent.adapters.notify.webhooks import (
    DeliveryStats,
    DiscordNotifier,
    JsonWebhookNotifier,
    WebhookConfig,
)
from fin_agent.domain.errors import ConfigError
from fin_agent.ports.notifier import Notification, NotificationKind, NotificationSeverity

SECRET = "SECRET-TOKEN-123"
HOOK_PATH = f"/api/webhooks/123456789/{SECRET}"
FAST = WebhookConfig(
    timeout_secs=1.0,
    max_attempts=4,
    backoff_base_secs=0.01,
    backoff_max_secs=0.05,
    drain_timeout_secs=0.2,
    rate=RateLimit(max_requests=100, per_secs=1.0),
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """A local webhook endpoint: records every request and answers from a script (then 204)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: deque[str | tuple[str, float]] = field(default_factory=deque)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            Received(request.path, dict(request.headers), body, asyncio.get_running_loop().time())
        )
        step = self.script.popleft() if self.script else "ok"
        match step:
            case ("429-body", secs):
                # Discord's shape: seconds (a float) in the body, rounded up in the header.
                data = {"message": "You are being rate limited.", "retry_after": secs}
                return web.json_response(data, status=429, headers={"Retry-After": "1"})
            case ("429-header", secs):
                return web.Response(status=429, headers={"Retry-After": str(secs)})
            case "500":
                return web.Response(status=500, text="upstream broke")
            case "500-echo":  # a server that repeats the URL back: it must not reach the logs
                return web.Response(status=500, text=f"no route to {request.url}")
            case "redirect":
                return web.Response(status=307, headers={"Location": str(request.url)})
            case "400":
                return web.json_response({"message": "Invalid Form Body"}, status=400)
            case "hang":
                await self.release.wait()
                return web.Response(status=204)
        return web.Response(status=204)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recv.url = f"http://127.0.0.1:{port}{HOOK_PATH}"
    yield recv
    recv.release.set()
    await runner.cleanup()


def message(n: int = 1, **changes: Any) -> Notification:
    values: dict[str, Any] = {
        "kind": NotificationKind.PLAN_EXECUTED,
        "title": f"Entered LONG 100 ACME @ 12.34 (#{n})",
        "text": "Plan p-1 filled its entry.",
        "fields": (("Symbol", "ACME"), ("Qty", "100"), ("Price", "12.34")),
        "event_id": f"event-{n}",
        "occurred_at": datetime(2025, 3, 3, 14, 40, tzinfo=UTC),
    }
    return Notification(**(values | changes))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def accounted(stats: DeliveryStats) -> int:
    return stats.sent + stats.failed + stats.dropped


@pytest.mark.asyncio
async def test_discord_notifier_posts_the_title_as_content_and_an_embed(
    receiver: Receiver,
) -> None:
    notifier = DiscordNotifier(receiver.url, config=FAST, username="fin_agent")
    await notifier.start()

    await notifier.notify(message(severity=NotificationSeverity.WARNING))
    assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    [request] = receiver.requests
    assert request.path == HOOK_PATH
    body = request.body
    assert body["content"] == "Entered LONG 100 ACME @ 12.34 (#1)"
    assert body["username"] == "fin_agent"
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    assert embed["description"] == "Plan p-1 filled its entry."
    assert [(f["name"], f["value"]) for f in embed["fields"]] == [
        ("Symbol", "ACME"),
        ("Qty", "100"),
        ("Price", "12.34"),
    ]
    assert embed["timestamp"] == "2025-03-03T14:40:00+00:00"
    assert embed["color"] == 0xF39C12
    assert "event-1" in embed["footer"]["text"]
    assert notifier.stats == DeliveryStats(queued=1, sent=1)


@pytest.mark.asyncio
async def test_json_webhook_posts_every_part_with_its_headers_and_idempotency_key(
    receiver: Receiver,
) -> None:
    notifier = JsonWebhookNotifier(
        receiver.url, config=FAST, headers={"Authorization": "Bearer hunter2"}
    )
    await notifier.start()

    await notifier.notify(message(7))
    await notifier.close()

    [request] = receiver.requests
    assert request.body == {
        "schema": "fin_agent.notification",
        "version": 1,
        "kind": "plan.executed",
        "severity": "info",
        "title": "Entered LONG 100 ACME @ 12.34 (#7)",
        "text": "Plan p-1 filled its entry.",
        "fields": [
            {"name": "Symbol", "value": "ACME"},
            {"name": "Qty", "value": "100"},
            {"name": "Price", "value": "12.34"},
        ],
        "event_id": "event-7",
        "occurred_at": "2025-03-03T14:40:00+00:00",
    }
    assert request.headers["Authorization"] == "Bearer hunter2"
    assert request.headers["Idempotency-Key"] == "event-7"
    assert notifier.stats.sent == 1


@pytest.mark.asyncio
async def test_discord_429_waits_out_retry_after_from_the_body_then_sends(
    receiver: Receiver,
) -> None:
    receiver.script.extend([("429-body", 0.3)])
    notifier = DiscordNotifier(receiver.url, config=FAST)
    await notifier.start()

    await notifier.notify(message())
    assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    first, second = receiver.requests
    assert second.body == first.body
    assert second.at - first.at >= 0.25  # the body's 0.3 s, not the header's rounded 1 s
    assert second.at - first.at < 0.9
    stats = notifier.stats
    assert (stats.sent, stats.retried, stats.rate_limited, stats.failed) == (1, 1, 1, 0)


@pytest.mark.asyncio
async def test_429_with_only_a_retry_after_header_is_waited_out_then_sent(
    receiver: Receiver,
) -> None:
    receiver.script.extend([("429-header", 0.3), ("429-header", 0.3)])
    notifier = JsonWebhookNotifier(receiver.url, config=FAST)
    await notifier.start()

    await notifier.notify(message())
    assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    assert len(receiver.requests) == 3
    assert receiver.requests[2].at - receiver.requests[0].at >= 0.5
    assert (notifier.stats.sent, notifier.stats.rate_limited) == (1, 2)


@pytest.mark.asyncio
async def test_5xx_is_retried_with_backoff_then_sent(receiver: Receiver) -> None:
    receiver.script.extend(["500", "500"])
    notifier = DiscordNotifier(receiver.url, config=FAST)
    await notifier.start()

    with structlog.testing.capture_logs() as logs:
        await notifier.notify(message())
        assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    assert len(receiver.requests) == 3
    assert (notifier.stats.sent, notifier.stats.retried, notifier.stats.failed) == (1, 2, 0)
    retries = [e for e in logs if e["event"] == "notification_retrying"]
    assert [(e["status"], e["attempt"]) for e in retries] == [(500, 1), (500, 2)]


@pytest.mark.asyncio
async def test_gives_up_after_max_attempts_and_counts_the_failure(receiver: Receiver) -> None:
    receiver.script.extend(["500"] * 10)
    notifier = JsonWebhookNotifier(receiver.url, config=FAST)
    await notifier.start()

    with structlog.testing.capture_logs() as logs:
        await notifier.notify(message())
        assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    assert len(receiver.requests) == FAST.max_attempts
    assert (notifier.stats.sent, notifier.stats.failed) == (0, 1)
    [failed] = [e for e in logs if e["event"] == "notification_failed"]
    assert (failed["status"], failed["attempts"], failed["error"]) == (500, 4, "upstream broke")


@pytest.mark.asyncio
async def test_a_4xx_other_than_429_is_not_retried(receiver: Receiver) -> None:
    receiver.script.append("400")
    notifier = DiscordNotifier(receiver.url, config=FAST)
    await notifier.start()

    await notifier.notify(message())
    assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    assert len(receiver.requests) == 1
    assert (notifier.stats.failed, notifier.stats.retried) == (1, 0)


@pytest.mark.asyncio
async def test_a_hanging_receiver_never_blocks_notify_and_close_is_bounded(
    receiver: Receiver,
) -> None:
    receiver.script.extend(["hang"] * 100)
    config = WebhookConfig(
        timeout_secs=0.3, max_attempts=2, backoff_base_secs=0.01, drain_timeout_secs=0.2
    )
    notifier = DiscordNotifier(receiver.url, config=config)
    await notifier.start()

    started = time.perf_counter()
    for n in range(50):
        await notifier.notify(message(n))
        await asyncio.sleep(0)  # let the sender start and stall on the receiver
    notify_secs = time.perf_counter() - started
    await asyncio.sleep(0.4)  # one request times out meanwhile
    closing = time.perf_counter()
    await notifier.close()
    close_secs = time.perf_counter() - closing

    assert notify_secs < 0.5
    assert close_secs < 2.0
    stats = notifier.stats
    assert stats.queued == 50
    assert stats.sent == 0
    assert stats.retried >= 1
    assert accounted(stats) == 50  # every message is sent, failed or dropped: none lost silently


@pytest.mark.asyncio
async def test_a_full_queue_drops_new_messages_and_counts_and_logs_them(
    receiver: Receiver,
) -> None:
    receiver.script.extend(["hang"] * 10)
    config = WebhookConfig(queue_size=3, timeout_secs=5.0, drain_timeout_secs=0.1)
    notifier = JsonWebhookNotifier(receiver.url, config=config)
    await notifier.start()

    with structlog.testing.capture_logs() as logs:
        started = time.perf_counter()
        for n in range(10):
            await notifier.notify(message(n))
        notify_secs = time.perf_counter() - started
    await notifier.close()

    assert notify_secs < 0.5
    assert notifier.stats.queued == 3
    drops = [e for e in logs if e["event"] == "notification_dropped"]
    assert [e["event_id"] for e in drops] == [f"event-{n}" for n in range(3, 10)]
    assert {e["reason"] for e in drops} == {"queue_full"}
    assert drops[-1]["dropped_total"] == 7
    assert accounted(notifier.stats) == 10


@pytest.mark.asyncio
async def test_the_rate_limit_spaces_requests_out(receiver: Receiver) -> None:
    config = WebhookConfig(rate=RateLimit(max_requests=2, per_secs=0.5))
    notifier = DiscordNotifier(receiver.url, config=config)
    await notifier.start()

    for n in range(4):
        await notifier.notify(message(n))
    assert await notifier.drain(timeout_secs=5)
    await notifier.close()

    times = [r.at for r in receiver.requests]
    assert len(times) == 4
    assert times[3] - times[0] >= 0.45  # two beyond the burst of 2, at one per 0.25 s


@pytest.mark.asyncio
async def test_the_secret_url_never_appears_in_logs_or_reprs(receiver: Receiver) -> None:
    receiver.script.extend(["500-echo", ("429-body", 0.05), "400", "redirect", "hang"])
    config = WebhookConfig(
        timeout_secs=0.3,
        queue_size=2,
        max_attempts=3,
        backoff_base_secs=0.01,
        drain_timeout_secs=0.1,
    )
    dead_url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"
    with structlog.testing.capture_logs() as logs:
        live = DiscordNotifier(receiver.url, config=config)
        dead = JsonWebhookNotifier(dead_url, config=config)
        for notifier in (live, dead):
            await notifier.start()
        for n in range(4):
            await live.notify(message(n))
            await dead.notify(message(n))
        await live.drain(timeout_secs=5)
        await dead.drain(timeout_secs=5)
        await live.notify(message(9))
        await live.close()
        await dead.close()
        await live.notify(message(10))  # after close: dropped and logged

    events = {e["event"] for e in logs}
    assert {"notification_retrying", "notification_failed", "notification_dropped"} <= events
    assert any(e.get("host") == "127.0.0.1" for e in logs)
    assert all(SECRET not in _text(e) for e in logs), [e for e in logs if SECRET in _text(e)]
    assert SECRET not in repr(live)
    assert SECRET not in repr(dead)
    assert dead.stats.failed >= 1


def _text(entry: EventDict) -> str:
    return json.dumps(entry, default=repr)


def test_a_url_that_is_not_http_is_refused_without_showing_it() -> None:
    with pytest.raises(
        ConfigError, match=r"scheme 'ftp'.*set it to the webhook's full https://"
    ) as exc:
        DiscordNotifier(f"ftp://example.com/{SECRET}")

    assert SECRET not in str(exc.value)


def test_discord_payload_keeps_within_discords_limits() -> None:
    huge = message(
        title="T" * 3000,
        text="D" * 9000,
        fields=(*((f"name {n}", "V" * 2000) for n in range(40)), ("", "")),
    )

    body = discord_payload(huge)

    assert len(body["content"]) == DISCORD_CONTENT_MAX
    assert body["content"].endswith("…")
    [embed] = body["embeds"]
    assert len(embed["fields"]) <= DISCORD_FIELDS_MAX
    assert all(len(f["value"]) <= DISCORD_FIELD_VALUE_MAX for f in embed["fields"])
    total = len(embed.get("description", "")) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= DISCORD_EMBED_TOTAL_MAX


def test_discord_payload_fills_blank_field_names_and_values() -> None:
    body = discord_payload(message(fields=(("", ""),)))

    [field_] = body["embeds"][0]["fields"]
    assert field_["name"] == field_["value"] == "\u200b"


def test_token_bucket_allows_a_burst_then_one_per_interval() -> None:
    now = [100.0]
    bucket = TokenBucket(RateLimit(max_requests=5, per_secs=2.0), clock=lambda: now[0])

    burst = [bucket.take() for _ in range(5)]
    wait = bucket.take()
    now[0] += 0.4
    after = bucket.take()

    assert burst == [0.0] * 5
    assert wait == pytest.approx(0.4)
    assert after == 0.0


def test_token_bucket_blocked_by_a_429_waits_the_whole_retry_after() -> None:
    now = [100.0]
    bucket = TokenBucket(RateLimit(max_requests=5, per_secs=2.0), clock=lambda: now[0])

    bucket.block_for(3.0)
    during = bucket.take()
    now[0] += 3.0
    after_block = bucket.take()
    now[0] += 0.4
    one_interval_later = bucket.take()

    assert during == pytest.approx(3.0)
    assert after_block == pytest.approx(0.4)  # the bucket restarts empty
    assert one_interval_later == 0.0


class _LostCancelSession:
    """A session whose request turns the cancel that reaches it into a timeout, as aiohttp's
    request can when the cancel lands as its timeout fires: the sender sees a timeout, not the
    cancel, and must still stop."""

    def __init__(self) -> None:
        self.posts = 0
        self.lose_cancels = True

    def post(self, *args: Any, **kwargs: Any) -> _LostCancelSession:
        self.posts += 1
        return self

    async def __aenter__(self) -> None:
        try:
            await asyncio.sleep(3600)  # a receiver that never answers
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self.lose_cancels or task is None:
                raise
            task.uncancel()
            raise TimeoutError from None

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.mark.asyncio
async def test_close_ends_the_sender_even_when_its_request_loses_the_cancel() -> None:
    session = _LostCancelSession()
    config = WebhookConfig(timeout_secs=3600, max_attempts=5, drain_timeout_secs=0.1)
    notifier = JsonWebhookNotifier(
        "http://127.0.0.1:9/hook", config=config, session=cast(aiohttp.ClientSession, session)
    )
    await notifier.start()
    for n in range(3):
        await notifier.notify(message(n))
    await asyncio.sleep(0)  # the sender takes the first and waits on its request

    closing = asyncio.create_task(notifier.close())
    done, _ = await asyncio.wait({closing}, timeout=30)  # a hang fails, not stalls the suite
    session.lose_cancels = False  # so that a failure here can still be cleaned up
    assert closing in done, "close() did not end: the sender went on after losing the cancel"

    assert session.posts == 1  # no retry once closing
    stats = notifier.stats
    assert (stats.failed, stats.dropped) == (1, 2)
    assert accounted(stats) == 3
