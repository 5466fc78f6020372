"""`EntryHandler`: what one consumer group does with the entries it read.

Entries are handled in order; the acks, the handled ids and what the handlers published go out in
one MULTI/EXEC (`_commit`). What a handler publishes waits in the entry's outbox until then, so a
crash leaves either the entry pending and none of its effects, or both done: never half a
minute's decisions. A batch group's entries are acked only after its handler returned (the
coordinator returns once the batch committed); a handler that raises leaves its batch pending.
"""

from __future__ import annotations

import contextvars
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from structlog.contextvars import bound_contextvars

from fin_agent.adapters.codec.event_codec import DecodeError
from fin_agent.adapters.redis.journal import Journal
from fin_agent.adapters.redis.link import BusLink
from fin_agent.adapters.redis.streams import RawFields, dead_letter_fields, text
from fin_agent.adapters.redis.trace_context import bus_tracer, context_of
from fin_agent.domain.errors import AdapterError
from fin_agent.domain.events import DomainEvent, Severity
from fin_agent.ports.event_bus import ALL_EVENTS, BatchHandler, Handler, RejectedEvents

log = structlog.get_logger(__name__)

RawEntry = tuple[bytes, RawFields | None]
Outgoing = tuple[str, Mapping[str, str]]
outbox: contextvars.ContextVar[list[Outgoing] | None] = contextvars.ContextVar(
    "outbox", default=None
)
LOCAL_SEEN_LIMIT = 100_000
MAX_LINKS = 32
CRASH_LOOP_DELIVERIES = 100  # an entry read this often with no handler outcome kills the agent


class EntryHandler:
    """Hands a group's entries to its handlers and acknowledges what they handled."""

    def __init__(
        self,
        link: BusLink,
        journal: Journal,
        group: str,
        handlers: Mapping[str, Sequence[Handler]],
        batch_handler: BatchHandler | None,
        readers: Callable[[str], frozenset[str]],
    ) -> None:
        self._link = link
        self._journal = journal
        self.group = group
        self._handlers = handlers
        self._batch_handler = batch_handler
        self._readers = readers
        self._local_seen: OrderedDict[str, None] = OrderedDict()
        self.failed = False  # a batch failed: the consumer re-reads its pending entries

    async def handle(
        self, stream: str, entries: Sequence[RawEntry], *, deliveries: Mapping[str, int] | None
    ) -> None:
        """Handle entries in order; ack them, their handled ids and their outbox in one MULTI."""
        if not entries:
            return
        link = self._link
        link.counters.delivered += len(entries)
        done = _Done()
        batch: list[tuple[str, DomainEvent, RawFields]] = []
        traces: list[str] = []
        event_ids = [text((f or {}).get(b"id", b"")) for _, f in entries]
        seen = await self._seen(event_ids)
        failures = await self._failures(deliveries or {})
        for (raw_id, fields), event_id, was_seen in zip(entries, event_ids, seen, strict=True):
            entry_id = text(raw_id)
            count = (deliveries or {}).get(entry_id, 1)
            if count > 1:
                done.retried.append(entry_id)
            if not fields:  # deleted while pending (redis-py gives None or {}): nothing to handle
                link.counters.deleted += 1
                log.error("bus_entry_deleted", stream=stream, entry_id=entry_id, group=self.group)
                done.ack(entry_id, event_id)
                continue
            if was_seen or event_id in done.handled:  # a retried XADD, or a redelivery
                link.counters.duplicates += 1
                done.ack(entry_id, event_id)
                continue
            failed = failures.get(entry_id, 0)
            if failed >= link.settings.max_deliveries or count > CRASH_LOOP_DELIVERIES:
                why = (
                    f"its handler failed {failed} times (max_deliveries "
                    f"{link.settings.max_deliveries})"
                    if failed >= link.settings.max_deliveries
                    else f"delivered {count} times without an outcome: the agent dies handling it"
                )
                await self._dead_letter(
                    stream, entry_id, fields, "max_deliveries", why, count
                )  # fmt: skip
                done.ack_dead(event_id)
                continue
            try:
                decoded = link.codec.decode(fields)
            except DecodeError as exc:
                await self._dead_letter(stream, entry_id, fields, str(exc.reason), str(exc), count)
                done.ack_dead(event_id)
                continue
            event = decoded.event
            wanted = event.TYPE in self._handlers or ALL_EVENTS in self._handlers
            if not wanted:
                done.ack(entry_id, event_id)
                continue
            if self._batch_handler is not None:
                batch.append((entry_id, event, fields))
                traces.append(decoded.trace)
                done.handled.add(event_id)
                continue
            if not await self._handle_one(entry_id, event, decoded.trace, count, done):
                done.failed.append(entry_id)
        if batch:
            await self._handle_batch(stream, batch, traces, done)
        await self._commit(stream, done)

    async def _handle_one(
        self, entry_id: str, event: DomainEvent, traceparent: str, count: int, done: _Done
    ) -> bool:
        handlers = [*self._handlers.get(event.TYPE, ()), *self._handlers.get(ALL_EVENTS, ())]
        box: list[Outgoing] = []
        token = outbox.set(box)
        started = time.perf_counter()
        try:
            with bound_contextvars(event_id=event.id, event_type=event.TYPE, group=self.group):
                if traceparent:  # continue the producer's trace across the hop
                    with bus_tracer.start_as_current_span(
                        f"handle {event.TYPE}",
                        context=context_of(traceparent),
                        kind=SpanKind.CONSUMER,
                        attributes={"messaging.consumer.group.name": self.group},
                    ):
                        for handler in handlers:
                            await handler(event)
                else:  # nothing to continue: no span (the common case with tracing off)
                    for handler in handlers:
                        await handler(event)
        except Exception as exc:  # a handler bug must not stop the group: retried, then DLQ
            self._link.observe(self.group, event.TYPE, time.perf_counter() - started, False)
            self._link.counters.failed += 1
            log.error(
                "bus_handler_failed", group=self.group, event_type=event.TYPE,
                event_id=event.id, deliveries=count, error=repr(exc),
            )  # fmt: skip
            return False
        finally:
            outbox.reset(token)
        self._link.observe(self.group, event.TYPE, time.perf_counter() - started, True)
        self._link.counters.handled += 1
        done.ack(entry_id, event.id, handled=True)
        done.outgoing += box
        return True

    async def _handle_batch(
        self,
        stream: str,
        batch: Sequence[tuple[str, DomainEvent, RawFields]],
        traces: Sequence[str],
        done: _Done,
    ) -> None:
        handler = self._batch_handler
        if handler is None:
            raise TypeError(f"group {self.group!r} has no batch handler")
        link = self._link
        started = time.perf_counter()
        # each event's trace gets a span of its own for the batch that carried it
        spans = [
            bus_tracer.start_span(
                f"handle {event.TYPE}",
                context=context_of(traceparent),
                kind=SpanKind.CONSUMER,
                attributes={"messaging.consumer.group.name": self.group, "event.id": event.id},
            )
            for (_, event, _), traceparent in zip(batch, traces, strict=True)
            if traceparent
        ]
        rejected: dict[str, str] = {}
        try:
            with bus_tracer.start_as_current_span(
                f"handle batch {self.group}",
                links=[trace.Link(s.get_span_context()) for s in spans[:MAX_LINKS]],
                kind=SpanKind.CONSUMER,
                attributes={"messaging.consumer.group.name": self.group, "batch.size": len(batch)},
            ):
                await handler([event for _, event, _ in batch])
        except RejectedEvents as exc:  # the rest committed: dead-letter these, ack the others
            rejected = {e.id: exc.reason for e in exc.events}
        except Exception as exc:  # nothing of the batch is acked: all of it comes again
            link.counters.failed += len(batch)
            self.failed = True
            done.handled -= {event.id for _, event, _ in batch}
            done.failed += [entry_id for entry_id, _, _ in batch]
            log.error("bus_batch_failed", group=self.group, size=len(batch), error=repr(exc))
            _observe_batch(link, self.group, batch, time.perf_counter() - started, False)
            return
        finally:
            for span in spans:
                span.end()
        _observe_batch(link, self.group, batch, time.perf_counter() - started, True)
        for entry_id, event, fields in batch:
            if event.id in rejected:
                done.handled.discard(event.id)
                await self._dead_letter(
                    stream, entry_id, fields, "store_refused", rejected[event.id], 1
                )
                done.ack_dead(event.id)
                continue
            link.counters.handled += 1
            done.ack(entry_id, event.id, handled=True)

    async def _seen(self, event_ids: Sequence[str]) -> list[bool]:
        unknown = [i for i in event_ids if i and i not in self._local_seen]
        remote: dict[str, bool] = {}
        if unknown:
            key = self._link.settings.key(f"seen:{self.group}")
            scores = await self._link.redis.zmscore(key, unknown)
            remote = {i: s is not None for i, s in zip(unknown, scores, strict=True)}
        return [bool(i) and (i in self._local_seen or remote.get(i, False)) for i in event_ids]

    async def _failures(self, deliveries: Mapping[str, int]) -> dict[str, int]:
        """How often the handlers failed on the entries delivered before (restarts don't count:
        only a handler's failure brings an entry nearer the dead letters)."""
        again = [i for i, n in deliveries.items() if n > 1]
        if not again:
            return {}
        key = self._link.settings.key(f"failures:{self.group}")
        counts = await self._link.redis.hmget(key, again)
        return {i: int(c) for i, c in zip(again, counts, strict=True) if c is not None}

    async def _commit(self, stream: str, done: _Done) -> None:
        """One MULTI/EXEC: the outbox's XADDs, the handled ids, the XACK, the failure counts.
        Retried until Redis takes it: the handlers' effects in memory are already done, so their
        events must go."""
        if not (done.acked or done.outgoing or done.failed or done.retried):
            if done.acked_events:
                self._journal.acked(self.group, done.acked_events)
            return
        link = self._link
        now = time.time()

        async def commit() -> None:
            pipe = link.redis.pipeline(transaction=True)
            for out_stream, fields in done.outgoing:
                entry: dict[Any, Any] = dict(fields)
                pipe.xadd(out_stream, entry)
            if done.handled_ids:
                seen: dict[Any, Any] = dict.fromkeys(done.handled_ids, now)
                pipe.zadd(link.settings.key(f"seen:{self.group}"), seen)
            if done.acked:
                pipe.xack(stream, self.group, *done.acked)
            failures = link.settings.key(f"failures:{self.group}")
            for entry_id in done.failed:
                pipe.hincrby(failures, entry_id, 1)
            failed = set(done.failed)
            settled = [i for i in done.retried if i not in failed]
            if settled:  # handled (or dead-lettered) at last: its failures are forgotten
                pipe.hdel(failures, *settled)
            await pipe.execute()

        try:
            await link.with_retry(f"ack of {self.group}", commit, deadline_secs=None)
        except AdapterError:
            log.error(
                "bus_commit_abandoned", group=self.group, entries=len(done.acked),
                events=len(done.outgoing),
                detail="the bus stopped while Redis was down: the entries stay pending and are "
                "handled again after a restart",
            )  # fmt: skip
            return
        link.counters.published += len(done.outgoing)
        for out_stream, fields in done.outgoing:
            self._journal.record(out_stream, fields, self._readers(out_stream))
        self._journal.acked(self.group, done.acked_events)
        for event_id in done.handled_ids:
            self._local_seen[event_id] = None
        while len(self._local_seen) > LOCAL_SEEN_LIMIT:
            self._local_seen.popitem(last=False)

    async def _dead_letter(
        self,
        stream: str,
        entry_id: str,
        fields: RawFields,
        reason: str,
        detail: str,
        deliveries: int,
    ) -> None:
        """XADD to the dead-letter stream first, then XACK; then say so with `error.raised`."""
        link = self._link
        dlq_fields = dead_letter_fields(
            stream=stream, entry_id=entry_id, group=self.group, reason=reason,
            detail=detail, deliveries=deliveries, fields=fields,
        )  # fmt: skip
        entry: dict[Any, Any] = dlq_fields
        await link.redis.xadd(link.settings.key("dlq"), entry)
        await link.redis.xack(stream, self.group, entry_id)
        link.counters.dead_lettered += 1
        log.error(
            "bus_dead_letter", group=self.group, stream=stream, entry_id=entry_id, reason=reason
        )
        await link.alert(
            f"dead_letter.{reason}",
            f"entry {entry_id} of {stream} moved to the dead-letter stream: {detail}",
            Severity.ERROR,
            source=f"bus:{self.group}",
            key=f"dlq:{self.group}:{stream}:{entry_id}",
        )


class _Done:
    """What handling a read produced: entries to ack, ids handled, events to send."""

    def __init__(self) -> None:
        self.acked: list[str] = []
        self.acked_events: list[str] = []
        self.handled_ids: list[str] = []
        self.handled: set[str] = set()
        self.outgoing: list[Outgoing] = []
        self.failed: list[str] = []  # entries whose handler failed: counted towards the DLQ
        self.retried: list[str] = []  # entries delivered before: their failure count goes

    def ack(self, entry_id: str, event_id: str, *, handled: bool = False) -> None:
        self.acked.append(entry_id)
        self.acked_events.append(event_id)
        if handled:
            self.handled_ids.append(event_id)
            self.handled.add(event_id)

    def ack_dead(self, event_id: str) -> None:
        """A dead-lettered entry (acked by `_dead_letter` itself)."""
        self.acked_events.append(event_id)


def _observe_batch(
    link: BusLink,
    group: str,
    batch: Sequence[tuple[str, DomainEvent, RawFields]],
    seconds: float,
    ok: bool,
) -> None:
    share = seconds / len(batch)
    for _, event, _ in batch:
        link.observe(group, event.TYPE, share, ok)
