"""One attempt to open the feed's WebSocket: abandoned when stopping, its failure logged with the
API key masked and the host named (never the URL), then left to the feed's backoff."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from fin_agent.adapters.finnhub.feed_config import FinnhubFeedConfig
from fin_agent.adapters.finnhub.feed_secrets import MaskingLogger, mask_secret

log = structlog.get_logger(
    "fin_agent.adapters.finnhub.feed"
)  # the feed's lines, as before the split


async def connect_once(
    url: str,
    config: FinnhubFeedConfig,
    stop: asyncio.Event,
    *,
    logger: MaskingLogger,
    secret: str,
) -> ClientConnection | None:
    """One attempt, abandoned when `stop` is set; None (logged) when it fails."""
    attempt = asyncio.ensure_future(
        connect(
            url,
            open_timeout=config.open_timeout_secs,
            close_timeout=config.close_timeout_secs,
            ping_interval=config.ping_interval_secs,
            ping_timeout=config.ping_timeout_secs,
            max_size=config.max_frame_bytes,
            max_queue=config.max_queued_frames,
            compression="deflate" if config.compression else None,
            logger=logger,
        )
    )
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([attempt, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not attempt.done():
        attempt.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await attempt
        return None
    try:
        return attempt.result()
    except (OSError, TimeoutError, EOFError, WebSocketException) as exc:
        hint = (
            "check finnhub_api_key"
            if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403)
            else "retrying"
        )
        error = mask_secret(str(exc), secret)
        log.warning("feed_connect_failed", host=config.host, error=error, hint=hint)
    except Exception as exc:  # an unforeseen failure must not end the feed: retried too
        error = mask_secret(repr(exc), secret)
        log.error("feed_connect_failed", host=config.host, error=error, hint="retrying")
    return None


async def wait_or_stop(stop: asyncio.Event, secs: float) -> bool:
    """Sleep `secs` unless `stop` is set first; True when stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), secs)
    return stop.is_set()
