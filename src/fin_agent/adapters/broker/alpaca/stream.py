"""`TradeUpdatesStream`: Alpaca's `trade_updates` WebSocket, kept open, parsed by alpaca-py.

Connect, `authenticate` with the key, `listen` to `trade_updates`, then hand each update (as
alpaca-py's `TradeUpdate` model) to the sink. A drop reconnects with jittered backoff, and
`on_connected` runs after every successful listen, so the broker resynchronises its orders over
REST for whatever happened while the socket was down (the stream does not replay).
alpaca-py's own `TradingStream` is not used: it has no hook after a reconnect, runs its own loop
and relies on the deprecated `websockets.legacy` client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
import websockets
from alpaca.trading.models import TradeUpdate
from pydantic import ValidationError

from fin_agent.domain.errors import ConfigError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPolicy:
    """Reconnect backoff bounds and the handshake timeout."""

    backoff_base_secs: float = 0.5
    backoff_max_secs: float = 30.0
    handshake_timeout_secs: float = 10.0


class TradeUpdatesStream:
    """One `trade_updates` connection, reconnected until `stop()`."""

    def __init__(
        self,
        url: str,
        key_id: str,
        secret_key: str,
        *,
        on_update: Callable[[TradeUpdate], Awaitable[None]],
        on_connected: Callable[[], Awaitable[None]],
        policy: StreamPolicy | None = None,
    ) -> None:
        self._url = url
        self._key_id = key_id
        self._secret = secret_key
        self._on_update = on_update
        self._on_connected = on_connected
        self._policy = policy or StreamPolicy()
        self._task: asyncio.Task[None] | None = None
        self.connects = 0
        self.drops = 0
        self.connected = asyncio.Event()

    def start(self) -> None:
        """Connect in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alpaca-trade-updates")

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async with websockets.connect(self._url, open_timeout=10) as ws:
                    await self._handshake(ws)
                    failures = 0
                    self.connects += 1
                    self.connected.set()
                    log.info("alpaca_stream_connected", connects=self.connects)
                    await self._on_connected()
                    async for raw in ws:
                        await self._dispatch(raw)
            except ConfigError as error:
                log.error("alpaca_stream_refused", reason=str(error))
                raise
            except (OSError, websockets.WebSocketException, TimeoutError) as error:
                log.warning("alpaca_stream_dropped", reason=type(error).__name__)
            self.connected.clear()
            self.drops += 1
            failures += 1
            cap = min(
                self._policy.backoff_max_secs,
                self._policy.backoff_base_secs * 2 ** min(failures - 1, 10),
            )
            await asyncio.sleep(cap / 2 + random.uniform(0, cap / 2))  # noqa: S311

    async def _handshake(self, ws: websockets.ClientConnection) -> None:
        timeout = self._policy.handshake_timeout_secs
        auth = {
            "action": "authenticate",
            "data": {"key_id": self._key_id, "secret_key": self._secret},
        }
        await ws.send(json.dumps(auth))
        answer = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if (answer.get("data") or {}).get("status") != "authorized":
            raise ConfigError(
                "Alpaca's trade_updates stream refused the key: check the alpaca_key_id and "
                "alpaca_secret_key secrets and broker.alpaca.stream_url"
            )
        await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if "trade_updates" not in ((answer.get("data") or {}).get("streams") or []):
            raise websockets.InvalidMessage(f"listen was not acknowledged: {answer}")

    async def _dispatch(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        if message.get("stream") != "trade_updates":
            return
        try:
            update = TradeUpdate(**message.get("data", {}))
        except ValidationError as error:
            log.error("alpaca_update_unreadable", errors=error.error_count())
            return
        await self._on_update(update)
