"""`BusLink`: what the bus and its consumers share: the client, codec, settings, counters, alerts,
retries, and the check that Redis still holds the bus's data.

Redis that restarts with its data (AOF) keeps the bus's epoch key; Redis that restarts empty (or
is flushed) loses it, and with it every stream entry not yet handled. `check_epoch` tells the two
apart: the run id changed and the epoch is gone means data was lost, and the bus says so.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.redis.streams import EVENTS, BusCounters, StreamsSettings, text
from fin_agent.domain.errors import AdapterError
from fin_agent.domain.events import ErrorRaised, Severity
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import Observer

log = structlog.get_logger(__name__)
T = TypeVar("T")
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
DataLost = Callable[[str], Awaitable[None]]
"""Told, with a description, when Redis has lost the bus's data."""


class BusLink:
    """The parts of one bus that its consumers and its producer share."""

    def __init__(
        self,
        redis: Redis,
        codec: EventCodec,
        settings: StreamsSettings,
        clock: Clock,
        observer: Observer,
    ) -> None:
        self.redis = redis
        self.codec = codec
        self.settings = settings
        self.clock = clock
        self.observe = observer
        self.counters = BusCounters()
        self.stopping = asyncio.Event()
        self.connected = False
        self.on_data_lost: list[DataLost] = []
        self._epoch: str | None = None
        self._run_id: str | None = None
        self._epoch_lock = asyncio.Lock()

    # -- the epoch: does Redis still hold our data? ---------------------------------------------

    async def claim_epoch(self) -> bool:
        """At start: adopt the bus's epoch, or mark a new one; True when Redis held no data of
        this bus (a first start, or a Redis that lost it while the agent was down)."""
        key = self.settings.key("epoch")
        created = bool(await self.redis.set(key, uuid.uuid4().hex, nx=True))
        self._epoch = text(await self.redis.get(key) or b"")
        self._run_id = await self._server_run_id()
        return created

    async def check_epoch(self) -> bool:
        """True when Redis still holds the bus's data; on a loss, says so once and tells the
        listeners (who republish what they still hold)."""
        if self._epoch is None:
            return True
        async with self._epoch_lock:
            key = self.settings.key("epoch")
            current = await self.redis.get(key)
            if current is not None and text(current) == self._epoch:
                self._run_id = await self._server_run_id()
                return True
            run_id = await self._server_run_id()
            detail = (
                f"Redis at {self._where()} lost the bus's data (the epoch key {key} is gone; "
                f"server run id {self._run_id} -> {run_id}): it restarted without persistence "
                "or was flushed. Stream entries not yet handled were lost; the agent republishes "
                "what it still holds and the groups are recreated. Turn on AOF "
                "(appendonly yes) on that Redis so a restart keeps the streams."
            )
            self.counters.data_losses += 1
            log.error("bus_redis_data_lost", detail=detail)
            await self.redis.set(key, uuid.uuid4().hex)
            self._epoch = text(await self.redis.get(key) or b"")
            self._run_id = run_id
        await self.alert(
            "bus.redis_data_lost", detail, Severity.CRITICAL, key=f"data_lost:{run_id}"
        )
        for listener in list(self.on_data_lost):
            await listener(detail)
        return False

    async def _server_run_id(self) -> str:
        info: dict[str, Any] = await self.redis.info("server")
        return str(info.get("run_id", "?"))

    def _where(self) -> str:
        kwargs = self.redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    # -- alerts and retries ---------------------------------------------------------------------

    async def alert(
        self,
        code: str,
        message: str,
        severity: Severity,
        *,
        source: str = "bus",
        key: str | None = None,
    ) -> None:
        """XADD an `error.raised` straight to the events stream (never through back-pressure)."""
        now = self.clock.now()
        error = ErrorRaised(
            id=ErrorRaised.id_for(key or f"{code}:{now.isoformat()}"),
            occurred_at=now,
            trading_day=now.date(),
            source=source,
            code=code,
            message=message,
            severity=severity,
        )
        entry: dict[Any, Any] = self.codec.encode(error)
        await self.redis.xadd(self.settings.key(EVENTS), entry)

    async def with_retry(
        self, what: str, call: Callable[[], Awaitable[T]], *, deadline_secs: float | None = 30.0
    ) -> T:
        """Run `call()`, retrying connection errors with jittered backoff; give up after
        `deadline_secs` (None: until the bus stops) with an `AdapterError` naming the fix."""
        deadline = None if deadline_secs is None else time.monotonic() + deadline_secs
        backoff = 0.05
        while True:
            try:
                result = await call()
            except TRANSIENT as exc:
                self.connected = False
                self.counters.reconnects += 1
                late = deadline is not None and time.monotonic() + backoff > deadline
                if late or (deadline is None and self.stopping.is_set()):
                    raise AdapterError(
                        f"Redis unreachable during {what} ({exc!r}): check that Redis is running "
                        "and bus.redis_url points at it"
                    ) from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0) * random.uniform(0.8, 1.2)  # noqa: S311
                continue
            self.connected = True
            return result

    async def sleep(self, secs: float) -> None:
        """Sleep `secs`, or less when the bus is stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=secs)
        except TimeoutError:
            return
