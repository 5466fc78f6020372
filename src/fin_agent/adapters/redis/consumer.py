"""`GroupConsumer`: one consumer group of the bus, at least once, never acking what failed.

It first re-reads its own pending entries (a restarted agent takes its killed predecessor's work
over at once: the consumer name is fixed per deployment), then new ones; it reclaims entries left
idle by other consumers with XAUTOCLAIM (with `take_over`, every pending entry of the group at
once). An entry its handler failed on `max_deliveries` times, or one that cannot be decoded, goes
to the dead-letter stream (XADD there first, then XACK).

What it does with the entries it read, and how it acknowledges them, is `EntryHandler`'s.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping, Sequence

import structlog
from redis.exceptions import ResponseError

from fin_agent.adapters.redis.handling import EntryHandler, RawEntry
from fin_agent.adapters.redis.journal import Journal
from fin_agent.adapters.redis.link import TRANSIENT, BusLink
from fin_agent.adapters.redis.streams import Reply, text
from fin_agent.ports.event_bus import BatchHandler, Handler

log = structlog.get_logger(__name__)

in_handler: contextvars.ContextVar[bool] = contextvars.ContextVar("in_handler", default=False)
PENDING_PAGE = 500
EPOCH_CHECK_SECS = 5.0


class GroupConsumer:
    """Reads `streams` as consumer group `group` and hands the entries to its handlers."""

    def __init__(
        self,
        link: BusLink,
        journal: Journal,
        group: str,
        streams: Sequence[str],
        handlers: Mapping[str, Sequence[Handler]],
        batch_handler: BatchHandler | None,
        readers: Callable[[str], frozenset[str]],
    ) -> None:
        self._link = link
        self.group = group
        self.streams = list(streams)
        self._entries = EntryHandler(link, journal, group, handlers, batch_handler, readers)
        self._reread_pending = True
        self.take_over = False  # set before run(): claim every pending entry of the group first

    async def ensure_groups(self) -> None:
        """Create the group on each of its streams (from the start), where it is missing."""
        for stream in self.streams:
            try:
                await self._link.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self) -> None:
        """Consume until the bus stops; connection losses and lost groups are ridden out."""
        link, settings = self._link, self._link.settings
        token = in_handler.set(True)
        last_claim = last_epoch = time.monotonic()
        backoff = 0.05
        try:
            while not link.stopping.is_set():
                try:
                    if self.take_over:  # every consumer's pending entries, at once
                        self.take_over = False
                        await self.reclaim(0)
                    if self._reread_pending:
                        self._reread_pending = False
                        await self._own_pending()
                    reply: Reply = await link.redis.xreadgroup(
                        self.group,
                        settings.consumer,
                        dict.fromkeys(self.streams, ">"),
                        count=settings.read_count,
                        block=settings.block_ms,
                    )
                    for stream, entries in reply or []:
                        await self._handle(text(stream), entries, deliveries=None)
                    now = time.monotonic()
                    if now - last_claim >= settings.claim_interval_secs:
                        await self.reclaim(settings.claim_idle_ms)
                        last_claim = time.monotonic()
                    if now - last_epoch >= EPOCH_CHECK_SECS:
                        await link.check_epoch()
                        last_epoch = time.monotonic()
                    link.connected, backoff = True, 0.05
                except ResponseError as exc:
                    # NOGROUP: Redis lost the group (a restart without persistence); UNBLOCKED:
                    # the stream was deleted under a blocked read. Either way: say what was
                    # lost, recreate, go on.
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    log.warning("bus_group_missing", group=self.group, error=str(exc))
                    link.counters.groups_recreated += 1
                    await link.check_epoch()
                    await self.ensure_groups()
                    self._reread_pending = True
                except TRANSIENT as exc:
                    link.connected = False
                    link.counters.reconnects += 1
                    log.warning(
                        "bus_disconnected", group=self.group, error=repr(exc), retry_in=backoff
                    )
                    await link.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    self._reread_pending = True
                    last_epoch = 0.0  # after a reconnect, check the data is still there first
        finally:
            in_handler.reset(token)

    async def _own_pending(self) -> None:
        """Re-read this consumer's pending entries (after a restart or a failure), oldest first."""
        link = self._link
        for stream in self.streams:
            start = "0"
            while not link.stopping.is_set():
                reply: Reply = await link.redis.xreadgroup(
                    self.group,
                    link.settings.consumer,
                    {stream: start},
                    count=link.settings.read_count,
                )
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                counts = await self._delivery_counts(stream, entries)
                await self._handle(stream, entries, deliveries=counts)
                start = text(entries[-1][0])

    async def reclaim(self, min_idle_ms: int) -> None:
        """Take over entries idle over `min_idle_ms` (a dead consumer's, or a failed one)."""
        link = self._link
        for stream in self.streams:
            start = "0-0"
            while True:
                reply: Reply = await link.redis.xautoclaim(
                    stream,
                    self.group,
                    link.settings.consumer,
                    min_idle_time=min_idle_ms,
                    start_id=start,
                    count=link.settings.read_count,
                )
                start, entries = text(reply[0]), reply[1]
                deleted = reply[2] if len(reply) > 2 else []
                if deleted:  # Redis 7 drops ids deleted while pending from the PEL and says so
                    link.counters.deleted += len(deleted)
                    log.error(
                        "bus_entries_deleted_while_pending",
                        stream=stream,
                        group=self.group,
                        ids=[text(i) for i in deleted][:20],
                    )
                if entries:
                    link.counters.claimed += len(entries)
                    counts = await self._delivery_counts(stream, entries)
                    await self._handle(stream, entries, deliveries=counts)
                if start == "0-0":
                    break

    async def _delivery_counts(self, stream: str, entries: Sequence[RawEntry]) -> dict[str, int]:
        """How often each entry was delivered: this consumer's pending list over their id range,
        read page by page so other consumers' or older pending entries cannot push ours out."""
        ids = [text(e[0]) for e in entries]
        wanted = set(ids)
        counts: dict[str, int] = {}
        start = ids[0]
        while wanted - counts.keys():
            rows: Reply = await self._link.redis.xpending_range(
                stream,
                self.group,
                min=start,
                max=ids[-1],
                count=PENDING_PAGE,
                consumername=self._link.settings.consumer,
            )
            for row in rows:
                counts[text(row["message_id"])] = int(row["times_delivered"])
            if len(rows) < PENDING_PAGE:
                break
            start = "(" + text(rows[-1]["message_id"])
        return {i: c for i, c in counts.items() if i in wanted}

    async def _handle(
        self, stream: str, entries: Sequence[RawEntry], *, deliveries: Mapping[str, int] | None
    ) -> None:
        await self._entries.handle(stream, entries, deliveries=deliveries)
        if self._entries.failed:
            self._entries.failed = False
            self._reread_pending = True
