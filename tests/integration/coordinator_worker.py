"""A coordinator run as a subprocess by the resilience tests: the bus's `coordinator` group
writing to a TimescaleStore, so a test can SIGKILL it in the middle of a batch.

Each batch the store committed is appended to `--status` as one JSON line (`{"batch": n,
"events": k, "new": m}`), flushed and fsynced before the coordinator returns, so the file tells
exactly which writes committed before a SIGKILL. `--stall-after-batch N` makes the process hang
after the N-th commit, before the bus can acknowledge the batch (a `{"stalled": N}` line says it
is there); `--write-delay-ms` slows each write so a test can catch one in its transaction;
`--until-drained` makes it exit (status 0, with a `{"done": ...}` line) once the group has
handled every entry, as a restarted coordinator would.

    python tests/integration/coordinator_worker.py --redis-url URL --prefix P --consumer C \
        --dsn DSN --schema S --status FILE
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
from collections.abc import Collection, Sequence
from datetime import date
from pathlib import Path
from typing import IO, Any

from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.app.coordinator import Coordinator
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.daily_bar_cache import DailyBarCache
from fin_agent.ports.scan_records import ScanRecords
from fin_agent.ports.store import CandleWidth, Row, StoreInfo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True, help="redis:// URL of the server")
    parser.add_argument("--prefix", required=True, help="stream key prefix of the bus")
    parser.add_argument("--consumer", required=True, help="consumer name (same after a restart)")
    parser.add_argument("--dsn", required=True, help="PostgreSQL DSN of the store")
    parser.add_argument("--schema", required=True, help="the store's schema (already migrated)")
    parser.add_argument("--status", required=True, type=Path, help="file the commits go to")
    parser.add_argument("--read-count", type=int, default=20, help="entries per XREADGROUP")
    parser.add_argument("--write-delay-ms", type=float, default=0.0, help="delay before a write")
    parser.add_argument("--stall-after-batch", type=int, default=0, help="hang after commit N")
    parser.add_argument("--claim-idle-ms", type=int, default=60_000, help="XAUTOCLAIM idle time")
    parser.add_argument("--until-drained", action="store_true", help="exit once drained")
    parser.add_argument("--drain-timeout-secs", type=float, default=60.0)
    return parser.parse_args(argv)


class RecordingStore:
    """The real store, with each committed write recorded (fsynced) and an optional stall."""

    def __init__(
        self, inner: TimescaleStore, out: IO[str], *, delay_secs: float, stall_after: int
    ) -> None:
        self._inner = inner
        self._out = out
        self._delay_secs = delay_secs
        self._stall_after = stall_after
        self.batches = 0

    def record(self, line: dict[str, Any]) -> None:
        """Append one JSON line to the status file and make it durable."""
        self._out.write(json.dumps(line) + "\n")
        self._out.flush()
        os.fsync(self._out.fileno())

    async def write(self, events: Sequence[DomainEvent]) -> int:
        if self._delay_secs:
            await asyncio.sleep(self._delay_secs)
        new = await self._inner.write(events)
        self.batches += 1
        self.record({"batch": self.batches, "events": len(events), "new": new})
        if self.batches == self._stall_after:
            self.record({"stalled": self.batches})
            await asyncio.sleep(3600)  # committed, not yet acknowledged: the test kills us here
        return new

    async def migrate(self) -> StoreInfo:
        return await self._inner.migrate()

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        return await self._inner.events(day=day, types=types, limit=limit)

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        return await self._inner.rows(table, day=day, limit=limit)

    async def days(self) -> Sequence[date]:
        return await self._inner.days()

    def daily_bar_cache(self) -> DailyBarCache:
        return self._inner.daily_bar_cache()

    def scan_records(self) -> ScanRecords:
        return self._inner.scan_records()

    async def candles(
        self, width: CandleWidth, *, day: date | None = None, symbol: str | None = None
    ) -> Sequence[Row]:
        return await self._inner.candles(width, day=day, symbol=symbol)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()


async def run(args: argparse.Namespace) -> None:
    """Run the coordinator as `args.consumer` until drained (or killed, or SIGTERM)."""
    codec = EventCodec(default_registry())
    settings = StreamsSettings(
        prefix=args.prefix,
        consumer=args.consumer,
        block_ms=50,
        read_count=args.read_count,
        claim_idle_ms=args.claim_idle_ms,  # by default only the own-pending path recovers
        claim_interval_secs=0.1,
    )
    client = Redis.from_url(
        args.redis_url, socket_timeout=settings.socket_timeout_secs, socket_connect_timeout=5.0
    )
    inner = await TimescaleStore.connect(args.dsn, codec, schema=args.schema, max_size=2)
    out = args.status.open("a", encoding="utf-8")
    store = RecordingStore(
        inner, out, delay_secs=args.write_delay_ms / 1000, stall_after=args.stall_after_batch
    )
    bus = RedisStreamsEventBus(client, codec, settings)
    coordinator = Coordinator(store, max_backoff_secs=0.5)
    coordinator.attach(bus)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await store.migrate()
        await bus.start()
        if args.until_drained:
            await bus.drain(args.drain_timeout_secs)
            store.record({"done": dataclasses.asdict(coordinator.stats)})
        else:
            await stopping.wait()
    finally:
        await bus.stop()
        await client.aclose()
        await store.close()
        out.close()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
