"""`RedisStreamsEventBus`: the event-bus port on Redis Streams consumer groups, at least once.

Each subscribed group runs a `GroupConsumer` (consumer.py: pending first, reclaim, dead letters,
and acks that carry their handler's outbox in the same transaction). Publishing is bounded
(in-flight events) and slows down while a group lags: back-pressure, counted, never a silent drop.
What this process published is journaled until its local groups acknowledged it, so a Redis that
loses its data (`BusLink.check_epoch`) gets it again. `drain` waits for groups to catch up for as
long as it takes (a store outage is waited out, not a reason to give up), and a group missing on
a stream counts as behind, never as caught up.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.redis.consumer import GroupConsumer, in_handler
from fin_agent.adapters.redis.dead_letters import RedisDeadLetters
from fin_agent.adapters.redis.handling import outbox
from fin_agent.adapters.redis.journal import Journal
from fin_agent.adapters.redis.link import TRANSIENT, BusLink, DataLost
from fin_agent.adapters.redis.streams import (
    DLQ,
    EVENTS,
    MARKET,
    BusCounters,
    StreamsSettings,
    text,
    topic_of,
)
from fin_agent.adapters.redis.trace_context import current_traceparent
from fin_agent.adapters.system_clock import SystemClock
from fin_agent.domain.errors import AdapterError, DeadlineError
from fin_agent.domain.events import DomainEvent, Severity
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import ALL_EVENTS, BatchHandler, Handler, Observer

log = structlog.get_logger(__name__)
LAG_CHECK_SECS = 0.25
DRAIN_REPORT_SECS = 10.0


class RedisStreamsEventBus:
    """Publishes events to Redis streams and runs one consumer per subscribed group."""

    def __init__(
        self,
        redis: Redis,
        codec: EventCodec,
        settings: StreamsSettings | None = None,
        clock: Clock | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._link = BusLink(
            redis, codec, settings or StreamsSettings(), clock or SystemClock(), observer or _ignore
        )
        self._journal = Journal()
        self._handlers: dict[str, dict[str, list[Handler]]] = {}
        self._batch_handlers: dict[str, BatchHandler] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._room = asyncio.Semaphore(self.settings.max_in_flight)
        self._lag_checked_at = 0.0
        self._lagging = False
        self._link.on_data_lost.append(self._republish)
        self.fresh_redis = False

    @property
    def started_empty(self) -> bool:
        """True when Redis held none of this bus's entries at start (new, or lost its data)."""
        return self.fresh_redis

    @property
    def redis(self) -> Redis:
        """The bus's Redis client (the scheduler's slots share its connection)."""
        return self._link.redis

    @property
    def settings(self) -> StreamsSettings:
        """The bus's stream layout and tuning."""
        return self._link.settings

    @property
    def counters(self) -> BusCounters:
        """What the bus has done, for metrics and tests."""
        return self._link.counters

    @property
    def connected(self) -> bool:
        """Whether the last call to Redis succeeded."""
        return self._link.connected

    def on_data_lost(self, listener: DataLost) -> None:
        """Be told when Redis has lost the bus's data (after the bus republished its journal)."""
        self._link.on_data_lost.append(listener)

    # -- the port -------------------------------------------------------------------------------

    def subscribe(self, group: str, event_types: Collection[str], handler: Handler) -> None:
        """Have consumer group `group` call `handler` for `event_types` ("*" for all)."""
        if group in self._batch_handlers:
            raise ValueError(f"group {group!r} is a batch group: a group is batch or not")
        by_type = self._handlers.setdefault(group, {})
        for event_type in event_types:
            by_type.setdefault(event_type, []).append(handler)

    def subscribe_batch(
        self, group: str, event_types: Collection[str], handler: BatchHandler
    ) -> None:
        """Have group `group` call `handler` once per read; entries are acked after it returns."""
        if group in self._handlers:
            raise ValueError(f"group {group!r} already has handlers: a group is batch or not")
        self._batch_handlers[group] = handler
        self._handlers[group] = {t: [] for t in event_types}

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """XADD the events in one pipeline; waits while too many are in flight or a group lags.

        Inside a handler the events join the handled entry's acknowledgement instead (one
        transaction: the effects and the ack happen together or not at all).
        """
        if not events:
            return
        traceparent = current_traceparent()
        payload = [
            (self._stream_for(e.TYPE), self._link.codec.encode(e, trace=traceparent))
            for e in events
        ]
        box = outbox.get()
        if box is not None:
            box.extend(payload)
            return
        if not in_handler.get():
            await self._respect_lag()
        step = self.settings.max_in_flight  # a publish larger than the bound goes in chunks
        for first in range(0, len(payload), step):
            await self._publish_chunk(payload[first : first + step])

    async def _publish_chunk(self, chunk: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        acquired = 0
        try:
            for _ in chunk:
                if self._room.locked():
                    self.counters.backpressure_waits += 1
                await self._room.acquire()
                acquired += 1
            await self._link.with_retry("publish", lambda: self._xadd_all(chunk))
            self.counters.published += len(chunk)
            for stream, fields in chunk:
                self._journal.record(stream, fields, self._readers(stream))
        finally:
            for _ in range(acquired):
                self._room.release()

    async def start(self) -> None:
        """Create every group's streams and groups, then start one consumer task per group."""
        link = self._link
        link.stopping.clear()
        self.fresh_redis = await link.with_retry("start", link.claim_epoch)
        for group in self._handlers:
            consumer = GroupConsumer(
                link,
                self._journal,
                group,
                self._streams_of(group),
                self._handlers[group],
                self._batch_handlers.get(group),
                self._readers,
            )
            await link.with_retry("create groups", consumer.ensure_groups)
            if self.settings.take_over_on_start:  # the one active instance: all pending is ours
                await link.with_retry("take over", functools.partial(consumer.reclaim, 0))
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"bus:{group}"))
        link.connected = True

    async def drain(
        self, timeout_secs: float | None = None, groups: Collection[str] | None = None
    ) -> None:
        """Wait until every group (or those named) has handled every entry of its streams."""
        started = time.monotonic()
        reported = started
        clean_at: dict[str, str] | None = None
        wanted = list(self._handlers) if groups is None else [g for g in groups]
        while True:
            waiting, last_ids = await self._link.with_retry(
                "drain", lambda: self._unfinished(wanted), deadline_secs=None
            )
            if not waiting:
                # A handler checked late in the pass may have published to a stream checked
                # early: done only when a second clean pass sees the same last ids.
                if clean_at == last_ids:
                    return
                clean_at = last_ids
                continue
            clean_at = None
            now = time.monotonic()
            if timeout_secs is not None and now - started >= timeout_secs:
                raise DeadlineError(
                    f"the bus did not drain in {timeout_secs:.0f} s: {', '.join(waiting)}; "
                    "a handler may be failing (see the dead-letter stream and the logs)"
                )
            if now - reported >= DRAIN_REPORT_SECS:
                reported = now
                log.warning("bus_draining", waited_secs=round(now - started), waiting=waiting)
                await self._link.check_epoch()
            await asyncio.sleep(0.005 if now - started < 1.0 else 0.05)

    async def ping(self) -> None:
        """Raise `AdapterError` unless Redis answers PING within 2 s."""
        try:
            await asyncio.wait_for(self.redis.ping(), 2.0)
        except (*TRANSIENT, TimeoutError) as exc:
            raise AdapterError(
                f"Redis does not answer ({exc!r}): check that it runs and bus.redis_url"
            ) from exc

    async def stop(self) -> None:
        """Stop the consumers after their current batch and close the connection."""
        self._link.stopping.set()
        if self._tasks:
            done, pending = await asyncio.wait(
                self._tasks, timeout=self.settings.block_ms / 1000 + 2.0
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("bus_consumer_crashed", error=repr(task.exception()))
        self._tasks.clear()
        self._link.connected = False

    # -- streams, groups, the journal -----------------------------------------------------------

    def _stream_for(self, event_type: str) -> str:
        return self.settings.key(topic_of(event_type))

    def _streams_of(self, group: str) -> list[str]:
        types = self._handlers.get(group, {})
        topics = {EVENTS, MARKET} if ALL_EVENTS in types else {topic_of(t) for t in types}
        return sorted(self.settings.key(t) for t in topics)

    def _readers(self, stream: str) -> frozenset[str]:
        """The local groups that read `stream` (each must ack what this process publishes)."""
        if not self._tasks:
            return frozenset()
        return frozenset(g for g in self._handlers if stream in self._streams_of(g))

    async def _xadd_all(self, payload: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        # One MULTI/EXEC: a blocked consumer wakes to the whole batch, not to its first entry.
        pipe = self.redis.pipeline(transaction=True)
        for stream, fields in payload:
            entry: dict[Any, Any] = dict(fields)
            pipe.xadd(stream, entry)
        await pipe.execute()

    async def _republish(self, detail: str) -> None:
        """Redis lost its data: publish again what this process published and its groups had
        not all acknowledged (consumers dedupe, stores upsert on the event id)."""
        entries = self._journal.unacknowledged()
        for first in range(0, len(entries), 500):
            chunk = entries[first : first + 500]
            await self._link.with_retry("republish", functools.partial(self._xadd_all, chunk))
        self.counters.republished += len(entries)
        log.warning("bus_republished", entries=len(entries))
        await self._link.alert(
            "bus.republished",
            f"{len(entries)} entries this agent had published and not yet seen handled were "
            "published again after Redis lost its data; entries other processes published and "
            "not yet handled cannot be recovered",
            Severity.WARNING,
        )

    # -- housekeeping ---------------------------------------------------------------------------

    async def trim(self, retain_secs: float = 0.0) -> dict[str, int]:
        """Trim each stream below the oldest entry any group still needs, keeping `retain_secs`.

        Never below a group's oldest pending entry nor past its last delivered one: on Redis 7 a
        trim silently drops entries still pending in a group. Returns the entries removed.
        """
        removed: dict[str, int] = {}
        retain_ms = int(self._link.clock.now().timestamp() * 1000 - retain_secs * 1000)
        for topic in (EVENTS, MARKET):
            stream = self.settings.key(topic)
            groups = await self._group_info(stream)
            if not groups:
                continue
            floor = (retain_ms, 0)
            for info in groups:
                ms, seq = _id_key(text(info["last-delivered-id"]))
                floor = min(floor, (ms, seq + 1))
                if int(info["pending"]):
                    summary = await self.redis.xpending(stream, text(info["name"]))
                    floor = min(floor, _id_key(text(summary["min"])))
            removed[stream] = int(
                await self.redis.xtrim(stream, minid=f"{floor[0]}-{floor[1]}", approximate=False)
            )
        cutoff = self._link.clock.now().timestamp() - max(
            retain_secs, self.settings.dedupe_retention_secs
        )
        for group in self._handlers:
            await self.redis.zremrangebyscore(self.settings.key(f"seen:{group}"), "-inf", cutoff)
        return removed

    def dead_letters(self) -> RedisDeadLetters:
        """This bus's dead-letter stream, for operators and the dashboard."""
        return RedisDeadLetters(self.redis, self.settings)

    async def delete_streams(self) -> None:
        """Delete this bus's streams, dead letters and dedupe sets (a throwaway demo's prefix)."""
        keys = [self.settings.key(t) for t in (EVENTS, MARKET, DLQ, "epoch")]
        keys += [self.settings.key(f"seen:{group}") for group in self._handlers]
        await self.redis.delete(*keys)

    # -- back-pressure and statistics -----------------------------------------------------------

    async def _respect_lag(self) -> None:
        """Wait while some group is further behind than `max_lag` entries."""
        while True:
            now = time.monotonic()
            if now - self._lag_checked_at >= LAG_CHECK_SECS:
                self._lag_checked_at = now
                lag = await self._link.with_retry("lag", self._max_lag)
                was_lagging, self._lagging = self._lagging, lag > self.settings.max_lag
                if self._lagging and not was_lagging:
                    await self._link.alert(
                        "bus.backpressure",
                        f"a consumer group is {lag} entries behind (bus.max_lag "
                        f"{self.settings.max_lag}): producers wait until it catches up",
                        Severity.WARNING,
                    )
            if not self._lagging:
                return
            self.counters.backpressure_waits += 1
            await asyncio.sleep(LAG_CHECK_SECS)

    async def group_stats(self) -> list[tuple[str, str, int, int]]:
        """(group, stream, lag, pending) of every group on this bus's streams, for metrics."""
        stats: list[tuple[str, str, int, int]] = []
        for topic in (EVENTS, MARKET):
            stream = self.settings.key(topic)
            for info in await self._group_info(stream):
                lag = int(info.get("lag") or 0)
                stats.append((text(info["name"]), stream, lag, int(info["pending"])))
        return stats

    async def dead_letter_count(self) -> int:
        """Entries waiting in the dead-letter stream."""
        return int(await self.redis.xlen(self.settings.key(DLQ)))

    async def _max_lag(self) -> int:
        worst = 0
        for group in self._handlers:
            for stream in self._streams_of(group):
                for info in await self._group_info(stream):
                    if text(info["name"]) == group:
                        worst = max(worst, int(info.get("lag") or 0) + int(info["pending"]))
        return worst

    async def _group_info(self, stream: str) -> list[dict[str, Any]]:
        try:
            infos: list[dict[str, Any]] = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return []
        return infos

    async def _unfinished(self, groups: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """Groups with entries not yet delivered or acknowledged, as 'group@stream (why)'; a
        group missing on a stream that has entries is behind (Redis lost it), never done."""
        waiting: list[str] = []
        last_ids: dict[str, str] = {}
        for group in groups:
            for stream in self._streams_of(group):
                try:
                    info_stream = await self.redis.xinfo_stream(stream)
                except ResponseError:
                    continue
                last = text(info_stream["last-generated-id"])
                last_ids[stream] = last
                mine = [i for i in await self._group_info(stream) if text(i["name"]) == group]
                if not mine:
                    if int(info_stream.get("length") or 0):
                        waiting.append(f"{group}@{stream} (group missing: being recreated)")
                    continue
                info = mine[0]
                behind = _id_key(text(info["last-delivered-id"])) < _id_key(last)
                if behind or int(info["pending"]):
                    waiting.append(
                        f"{group}@{stream} (pending {info['pending']}, "
                        f"last delivered {text(info['last-delivered-id'])} of {last})"
                    )
        return waiting, last_ids


def _ignore(group: str, event_type: str, seconds: float, ok: bool) -> None:
    """The observer when nobody watches."""


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)
