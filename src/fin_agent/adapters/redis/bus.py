"""`RedisStreamsEventBus`: the event-bus port on Redis Streams consumer groups, at least once.

A group's consumer first re-reads its own pending entries, then new ones; it reclaims entries left
idle by dead consumers with XAUTOCLAIM; an entry delivered more than `max_deliveries` times, or one
that cannot be decoded, goes to the dead-letter stream (XADD there first, then XACK). Handled ids
are recorded with the XACK in one transaction, so a duplicate XADD or a redelivery is skipped.
Publishing is bounded (in-flight events) and slows down while a group lags: back-pressure, counted,
never a silent drop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from structlog.contextvars import bound_contextvars

from fin_agent.adapters.codec.event_codec import DecodeError, EventCodec
from fin_agent.adapters.redis.dead_letters import RedisDeadLetters
from fin_agent.adapters.redis.streams import (
    DLQ,
    EVENTS,
    MARKET,
    BusCounters,
    RawFields,
    Reply,
    StreamsSettings,
    dead_letter_fields,
    text,
    topic_of,
)
from fin_agent.adapters.redis.trace_context import bus_tracer, context_of, current_traceparent
from fin_agent.adapters.system_clock import SystemClock
from fin_agent.domain.errors import AdapterError, DeadlineError
from fin_agent.domain.events import DomainEvent, ErrorRaised, Severity
from fin_agent.ports.clock import Clock
from fin_agent.ports.event_bus import ALL_EVENTS, BatchHandler, Handler, Observer

log = structlog.get_logger(__name__)

RawEntry = tuple[bytes, RawFields | None]
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
_in_handler: contextvars.ContextVar[bool] = contextvars.ContextVar("in_handler", default=False)
LOCAL_SEEN_LIMIT = 100_000
LAG_CHECK_SECS = 0.25
MAX_LINKS = 32
PENDING_PAGE = 500


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
        self._redis = redis
        self._codec = codec
        self._clock = clock or SystemClock()
        self._observe = observer or _ignore
        self.settings = settings or StreamsSettings()
        self.counters = BusCounters()
        self._handlers: dict[str, dict[str, list[Handler]]] = {}
        self._batch_handlers: dict[str, BatchHandler] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._room = asyncio.Semaphore(self.settings.max_in_flight)
        self._lag_checked_at = 0.0
        self._lagging = False
        self._local_seen: dict[str, OrderedDict[str, None]] = {}
        self.connected = False

    @property
    def redis(self) -> Redis:
        """The bus's Redis client (the scheduler's slots share its connection)."""
        return self._redis

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
        """XADD the events in one pipeline; waits while too many are in flight or a group lags."""
        if not events:
            return
        if not _in_handler.get():
            await self._respect_lag()
        traceparent = current_traceparent()
        payload = [
            (self._stream_for(e.TYPE), self._codec.encode(e, trace=traceparent)) for e in events
        ]
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
            await self._with_retry("publish", lambda: self._xadd_all(chunk))
            self.counters.published += len(chunk)
        finally:
            for _ in range(acquired):
                self._room.release()

    async def start(self) -> None:
        """Create every group's streams and groups, then start one consumer task per group."""
        self._stopping.clear()
        for group in self._handlers:
            await self._with_retry("create groups", functools.partial(self._ensure_groups, group))
            self._tasks.append(asyncio.create_task(self._consume(group), name=f"bus:{group}"))
        self.connected = True

    async def drain(self, timeout_secs: float = 30.0) -> None:
        """Wait until every subscribed group has handled every entry of its streams."""
        deadline = time.monotonic() + timeout_secs
        clean_at: dict[str, str] | None = None
        while True:
            waiting, last_ids = await self._with_retry("drain", self._unfinished)
            if not waiting:
                # A handler checked late in the pass may have published to a stream checked
                # early: done only when a second clean pass sees the same last ids.
                if clean_at == last_ids:
                    return
                clean_at = last_ids
                continue
            clean_at = None
            if time.monotonic() >= deadline:
                raise DeadlineError(
                    f"the bus did not drain in {timeout_secs:.0f} s: {', '.join(waiting)}; "
                    "a handler may be failing (see the dead-letter stream and the logs)"
                )
            await asyncio.sleep(0.005)

    async def ping(self) -> None:
        """Raise `AdapterError` unless Redis answers PING within 2 s."""
        try:
            await asyncio.wait_for(self._redis.ping(), 2.0)
        except (*TRANSIENT, TimeoutError) as exc:
            raise AdapterError(
                f"Redis does not answer ({exc!r}): check that it runs and bus.redis_url"
            ) from exc

    async def stop(self) -> None:
        """Stop the consumers after their current batch and close the connection."""
        self._stopping.set()
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
        self.connected = False

    # -- streams and groups ---------------------------------------------------------------------

    def _stream_for(self, event_type: str) -> str:
        return self.settings.key(topic_of(event_type))

    def _streams_of(self, group: str) -> list[str]:
        types = self._handlers.get(group, {})
        topics = {EVENTS, MARKET} if ALL_EVENTS in types else {topic_of(t) for t in types}
        return sorted(self.settings.key(t) for t in topics)

    async def _ensure_groups(self, group: str) -> None:
        for stream in self._streams_of(group):
            try:
                await self._redis.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _xadd_all(self, payload: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        # One MULTI/EXEC: a blocked consumer wakes to the whole batch, not to its first entry.
        pipe = self._redis.pipeline(transaction=True)
        for stream, fields in payload:
            entry: dict[Any, Any] = dict(fields)
            pipe.xadd(stream, entry)
        await pipe.execute()

    # -- consuming ------------------------------------------------------------------------------

    async def _consume(self, group: str) -> None:
        streams = self._streams_of(group)
        settings = self.settings
        token = _in_handler.set(True)
        pending_done = False
        last_claim = time.monotonic()
        backoff = 0.05
        try:
            while not self._stopping.is_set():
                try:
                    if not pending_done:
                        await self._own_pending(group, streams)
                        pending_done = True
                    reply: Reply = await self._redis.xreadgroup(
                        group,
                        settings.consumer,
                        dict.fromkeys(streams, ">"),
                        count=settings.read_count,
                        block=settings.block_ms,
                    )
                    for stream, entries in reply or []:
                        await self._handle(group, text(stream), entries, deliveries=None)
                    if time.monotonic() - last_claim >= settings.claim_interval_secs:
                        await self._reclaim(group, streams)
                        last_claim = time.monotonic()
                    self.connected, backoff = True, 0.05
                except ResponseError as exc:
                    # NOGROUP: Redis lost the group (a restart without persistence); UNBLOCKED:
                    # the stream was deleted under a blocked read. Either way: recreate, go on.
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    log.warning("bus_group_missing", group=group, error=str(exc))
                    self.counters.groups_recreated += 1
                    await self._ensure_groups(group)
                    pending_done = False
                except TRANSIENT as exc:
                    self.connected = False
                    self.counters.reconnects += 1
                    log.warning("bus_disconnected", group=group, error=repr(exc), retry_in=backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 2.0) * random.uniform(0.8, 1.2)  # noqa: S311
                    pending_done = False
        finally:
            _in_handler.reset(token)

    async def _own_pending(self, group: str, streams: list[str]) -> None:
        """Re-read this consumer's pending entries (after a restart), oldest first."""
        for stream in streams:
            start = "0"
            while not self._stopping.is_set():
                reply: Reply = await self._redis.xreadgroup(
                    group, self.settings.consumer, {stream: start}, count=self.settings.read_count
                )
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                counts = await self._delivery_counts(group, stream, entries)
                await self._handle(group, stream, entries, deliveries=counts)
                start = text(entries[-1][0])

    async def _reclaim(self, group: str, streams: list[str]) -> None:
        """Take over entries idle over `claim_idle_ms` (a dead consumer's or a failed one)."""
        for stream in streams:
            start = "0-0"
            while True:
                reply: Reply = await self._redis.xautoclaim(
                    stream,
                    group,
                    self.settings.consumer,
                    min_idle_time=self.settings.claim_idle_ms,
                    start_id=start,
                    count=self.settings.read_count,
                )
                start, entries = text(reply[0]), reply[1]
                deleted = reply[2] if len(reply) > 2 else []
                if deleted:  # Redis 7 drops ids deleted while pending from the PEL and says so
                    self.counters.deleted += len(deleted)
                    log.error(
                        "bus_entries_deleted_while_pending",
                        stream=stream,
                        group=group,
                        ids=[text(i) for i in deleted][:20],
                    )
                if entries:
                    self.counters.claimed += len(entries)
                    counts = await self._delivery_counts(group, stream, entries)
                    await self._handle(group, stream, entries, deliveries=counts)
                if start == "0-0":
                    break

    async def _delivery_counts(
        self, group: str, stream: str, entries: Sequence[RawEntry]
    ) -> dict[str, int]:
        """How often each entry was delivered: this consumer's pending list over their id range.

        Filtered to this consumer (the entries were just delivered to it) and read page by page,
        so other consumers' or older pending entries in the range cannot push ours out.
        """
        ids = [text(e[0]) for e in entries]
        wanted = set(ids)
        counts: dict[str, int] = {}
        start = ids[0]
        while wanted - counts.keys():
            rows: Reply = await self._redis.xpending_range(
                stream,
                group,
                min=start,
                max=ids[-1],
                count=PENDING_PAGE,
                consumername=self.settings.consumer,
            )
            for row in rows:
                counts[text(row["message_id"])] = int(row["times_delivered"])
            if len(rows) < PENDING_PAGE:
                break
            start = "(" + text(rows[-1]["message_id"])
        return {i: c for i, c in counts.items() if i in wanted}

    async def _handle(
        self,
        group: str,
        stream: str,
        entries: Sequence[RawEntry],
        *,
        deliveries: Mapping[str, int] | None,
    ) -> None:
        """Handle a batch in order; ack and record the handled ones in one transaction."""
        if not entries:
            return
        self.counters.delivered += len(entries)
        event_ids = [text((f or {}).get(b"id", b"")) for _, f in entries]
        seen = await self._seen(group, event_ids)
        acked: list[str] = []
        handled: list[str] = []
        batch_handled: set[str] = set()
        by_type = self._handlers.get(group, {})
        batch_handler = self._batch_handlers.get(group)
        batch: list[tuple[str, DomainEvent]] = []
        traces: list[str] = []
        for (raw_id, fields), event_id, was_seen in zip(entries, event_ids, seen, strict=True):
            entry_id = text(raw_id)
            count = (deliveries or {}).get(entry_id, 1)
            if not fields:  # deleted while pending (redis-py gives None or {}): nothing to handle
                self.counters.deleted += 1
                log.error("bus_entry_deleted", stream=stream, entry_id=entry_id, group=group)
                acked.append(entry_id)
                continue
            if was_seen or event_id in batch_handled:  # a retried XADD, or a redelivery
                self.counters.duplicates += 1
                acked.append(entry_id)
                continue
            if count > self.settings.max_deliveries:
                await self._dead_letter(
                    group,
                    stream,
                    entry_id,
                    fields,
                    "max_deliveries",
                    f"delivered {count} times, more than max_deliveries "
                    f"{self.settings.max_deliveries}; the handler keeps failing",
                    count,
                )
                continue
            try:
                decoded = self._codec.decode(fields)
            except DecodeError as exc:
                await self._dead_letter(
                    group, stream, entry_id, fields, str(exc.reason), str(exc), count
                )
                continue
            event = decoded.event
            if batch_handler is not None:
                if event.TYPE in by_type or ALL_EVENTS in by_type:
                    batch.append((entry_id, event))
                    traces.append(decoded.trace)
                    batch_handled.add(event_id)
                else:
                    acked.append(entry_id)
                continue
            handlers = [*by_type.get(event.TYPE, ()), *by_type.get(ALL_EVENTS, ())]
            started = time.perf_counter()
            try:
                with bound_contextvars(event_id=event.id, event_type=event.TYPE, group=group):
                    if decoded.trace:  # continue the producer's trace across the hop
                        with bus_tracer.start_as_current_span(
                            f"handle {event.TYPE}",
                            context=context_of(decoded.trace),
                            kind=SpanKind.CONSUMER,
                            attributes={"messaging.consumer.group.name": group},
                        ):
                            for handler in handlers:
                                await handler(event)
                    else:  # nothing to continue: no span (the common case with tracing off)
                        for handler in handlers:
                            await handler(event)
            except Exception as exc:  # a handler bug must not stop the group: retried, then DLQ
                self._observe(group, event.TYPE, time.perf_counter() - started, False)
                self.counters.failed += 1
                log.error(
                    "bus_handler_failed",
                    group=group,
                    event_type=event.TYPE,
                    event_id=event.id,
                    deliveries=count,
                    error=repr(exc),
                )
                continue
            self._observe(group, event.TYPE, time.perf_counter() - started, True)
            self.counters.handled += 1
            acked.append(entry_id)
            handled.append(event_id)
            batch_handled.add(event_id)
        if batch_handler is not None and batch:
            started = time.perf_counter()
            # each event's trace gets a span of its own for the batch that carried it
            spans = [
                bus_tracer.start_span(
                    f"handle {event.TYPE}",
                    context=context_of(traceparent),
                    kind=SpanKind.CONSUMER,
                    attributes={"messaging.consumer.group.name": group, "event.id": event.id},
                )
                for (_, event), traceparent in zip(batch, traces, strict=True)
                if traceparent
            ]
            try:
                with bus_tracer.start_as_current_span(
                    f"handle batch {group}",
                    links=[trace.Link(s.get_span_context()) for s in spans[:MAX_LINKS]],
                    kind=SpanKind.CONSUMER,
                    attributes={"messaging.consumer.group.name": group, "batch.size": len(batch)},
                ):
                    await batch_handler([event for _, event in batch])
            except Exception as exc:  # nothing of the batch is acked: all of it comes again
                self.counters.failed += len(batch)
                log.error("bus_batch_failed", group=group, size=len(batch), error=repr(exc))
                _observe_batch(self._observe, group, batch, time.perf_counter() - started, False)
            else:
                _observe_batch(self._observe, group, batch, time.perf_counter() - started, True)
            finally:
                for span in spans:
                    span.end()
                self.counters.handled += len(batch)
                acked += [entry_id for entry_id, _ in batch]
                handled += [event.id for _, event in batch]
        await self._ack(group, stream, acked, handled)

    async def _seen(self, group: str, event_ids: Sequence[str]) -> list[bool]:
        local = self._local_seen.setdefault(group, OrderedDict())
        unknown = [i for i in event_ids if i and i not in local]
        remote: dict[str, bool] = {}
        if unknown:
            scores = await self._redis.zmscore(self.settings.key(f"seen:{group}"), unknown)
            remote = {i: s is not None for i, s in zip(unknown, scores, strict=True)}
        return [bool(i) and (i in local or remote.get(i, False)) for i in event_ids]

    async def _ack(self, group: str, stream: str, acked: list[str], handled: list[str]) -> None:
        if not acked:
            return
        now = time.time()
        pipe = self._redis.pipeline(transaction=True)
        if handled:
            pipe.zadd(self.settings.key(f"seen:{group}"), dict.fromkeys(handled, now))
        pipe.xack(stream, group, *acked)
        await pipe.execute()
        local = self._local_seen.setdefault(group, OrderedDict())
        for event_id in handled:
            local[event_id] = None
        while len(local) > LOCAL_SEEN_LIMIT:
            local.popitem(last=False)

    async def _dead_letter(
        self,
        group: str,
        stream: str,
        entry_id: str,
        fields: RawFields,
        reason: str,
        detail: str,
        deliveries: int,
    ) -> None:
        """XADD to the dead-letter stream first, then XACK; then say so with `error.raised`."""
        dlq_fields = dead_letter_fields(
            stream=stream, entry_id=entry_id, group=group, reason=reason,
            detail=detail, deliveries=deliveries, fields=fields,
        )  # fmt: skip
        entry: dict[Any, Any] = dlq_fields
        await self._redis.xadd(self.settings.key(DLQ), entry)
        await self._redis.xack(stream, group, entry_id)
        self.counters.dead_lettered += 1
        log.error("bus_dead_letter", group=group, stream=stream, entry_id=entry_id, reason=reason)
        await self._alert(
            f"dead_letter.{reason}",
            f"entry {entry_id} of {stream} moved to the dead-letter stream: {detail}",
            Severity.ERROR,
            source=f"bus:{group}",
            key=f"dlq:{group}:{stream}:{entry_id}",
        )

    async def _alert(
        self,
        code: str,
        message: str,
        severity: Severity,
        *,
        source: str = "bus",
        key: str | None = None,
    ) -> None:
        """XADD an `error.raised` straight to the events stream (never through back-pressure)."""
        now = self._clock.now()
        error = ErrorRaised(
            id=ErrorRaised.id_for(key or f"{code}:{now.isoformat()}"),
            occurred_at=now,
            trading_day=now.date(),
            source=source,
            code=code,
            message=message,
            severity=severity,
        )
        error_entry: dict[Any, Any] = self._codec.encode(error)
        await self._redis.xadd(self.settings.key(EVENTS), error_entry)

    # -- housekeeping ---------------------------------------------------------------------------

    async def trim(self, retain_secs: float = 0.0) -> dict[str, int]:
        """Trim each stream below the oldest entry any group still needs, keeping `retain_secs`.

        Never below a group's oldest pending entry nor past its last delivered one: on Redis 7 a
        trim silently drops entries still pending in a group. Returns the entries removed.
        """
        removed: dict[str, int] = {}
        retain_ms = int(self._clock.now().timestamp() * 1000 - retain_secs * 1000)
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
                    summary = await self._redis.xpending(stream, text(info["name"]))
                    floor = min(floor, _id_key(text(summary["min"])))
            removed[stream] = int(
                await self._redis.xtrim(stream, minid=f"{floor[0]}-{floor[1]}", approximate=False)
            )
        cutoff = self._clock.now().timestamp() - max(
            retain_secs, self.settings.dedupe_retention_secs
        )
        for group in self._handlers:
            await self._redis.zremrangebyscore(self.settings.key(f"seen:{group}"), "-inf", cutoff)
        return removed

    def dead_letters(self) -> RedisDeadLetters:
        """This bus's dead-letter stream, for operators and the dashboard."""
        return RedisDeadLetters(self._redis, self.settings)

    async def delete_streams(self) -> None:
        """Delete this bus's streams, dead letters and dedupe sets (a throwaway demo's prefix)."""
        keys = [self.settings.key(t) for t in (EVENTS, MARKET, DLQ)]
        keys += [self.settings.key(f"seen:{group}") for group in self._handlers]
        await self._redis.delete(*keys)

    # -- back-pressure and retries --------------------------------------------------------------

    async def _respect_lag(self) -> None:
        """Wait while some group is further behind than `max_lag` entries."""
        while True:
            now = time.monotonic()
            if now - self._lag_checked_at >= LAG_CHECK_SECS:
                self._lag_checked_at = now
                lag = await self._with_retry("lag", self._max_lag)
                was_lagging, self._lagging = self._lagging, lag > self.settings.max_lag
                if self._lagging and not was_lagging:
                    await self._alert(
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
        return int(await self._redis.xlen(self.settings.key(DLQ)))

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
            infos: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return []
        return infos

    async def _unfinished(self) -> tuple[list[str], dict[str, str]]:
        """Groups with entries not yet delivered or acknowledged, as 'group@stream (why)'."""
        waiting: list[str] = []
        last_ids: dict[str, str] = {}
        for group in self._handlers:
            for stream in self._streams_of(group):
                try:
                    last = text((await self._redis.xinfo_stream(stream))["last-generated-id"])
                except ResponseError:
                    continue
                last_ids[stream] = last
                for info in await self._group_info(stream):
                    if text(info["name"]) != group:
                        continue
                    behind = _id_key(text(info["last-delivered-id"])) < _id_key(last)
                    if behind or int(info["pending"]):
                        waiting.append(
                            f"{group}@{stream} (pending {info['pending']}, "
                            f"last delivered {text(info['last-delivered-id'])} of {last})"
                        )
        return waiting, last_ids

    async def _with_retry(self, what: str, call: Any) -> Any:
        """Run `call()`, retrying connection errors with jittered backoff for up to 30 s."""
        deadline = time.monotonic() + 30.0
        backoff = 0.05
        while True:
            try:
                return await call()
            except TRANSIENT as exc:
                self.connected = False
                self.counters.reconnects += 1
                if time.monotonic() + backoff > deadline:
                    raise AdapterError(
                        f"Redis unreachable during {what} for 30 s ({exc!r}): check that Redis "
                        "is running and bus.redis_url points at it"
                    ) from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0) * random.uniform(0.8, 1.2)  # noqa: S311

    async def _sleep(self, secs: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=secs)
        except TimeoutError:
            return


def _ignore(group: str, event_type: str, seconds: float, ok: bool) -> None:
    """The observer when nobody watches."""


def _observe_batch(
    observe: Observer,
    group: str,
    batch: Sequence[tuple[str, DomainEvent]],
    seconds: float,
    ok: bool,
) -> None:
    share = seconds / len(batch)
    for _, event in batch:
        observe(group, event.TYPE, share, ok)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)
