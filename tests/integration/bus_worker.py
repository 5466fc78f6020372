"""A bus consumer run as a subprocess by the crash tests: it records every event id it handles.

Each handled event id is appended to `--out` as one line, flushed and fsynced before the handler
returns, so a SIGKILL at any instant leaves exactly the ids handled so far. `--handle-ms` slows the
handler down so a test can kill the process in the middle of a batch; `--until-drained` makes it
exit (status 0) once its group has handled every entry, as a restarted consumer would.

    python tests/integration/bus_worker.py --url URL --prefix P --group G --consumer C --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from redis.asyncio import Redis

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.domain.events import DomainEvent
from fin_agent.ports.event_bus import ALL_EVENTS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="redis:// URL of the server")
    parser.add_argument("--prefix", required=True, help="stream key prefix of the bus")
    parser.add_argument("--group", required=True, help="consumer group")
    parser.add_argument("--consumer", required=True, help="consumer name (same after a restart)")
    parser.add_argument("--out", required=True, type=Path, help="file the handled ids go to")
    parser.add_argument("--handle-ms", type=float, default=0.0, help="time each handler takes")
    parser.add_argument("--read-count", type=int, default=20, help="entries per XREADGROUP")
    parser.add_argument("--until-drained", action="store_true", help="exit once drained")
    parser.add_argument("--drain-timeout-secs", type=float, default=30.0)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Consume as `args.consumer` of `args.group` until drained (or killed, or SIGTERM)."""
    settings = StreamsSettings(
        prefix=args.prefix,
        consumer=args.consumer,
        block_ms=50,
        read_count=args.read_count,
        claim_idle_ms=60_000,  # only this consumer's own-pending path may recover its entries
        claim_interval_secs=0.1,
    )
    client = Redis.from_url(
        args.url, socket_timeout=settings.socket_timeout_secs, socket_connect_timeout=5.0
    )
    bus = RedisStreamsEventBus(client, EventCodec(default_registry()), settings)
    out = args.out.open("a", encoding="utf-8")

    async def record(event: DomainEvent) -> None:
        if args.handle_ms:
            await asyncio.sleep(args.handle_ms / 1000)
        out.write(event.id + "\n")
        out.flush()
        os.fsync(out.fileno())

    bus.subscribe(args.group, [ALL_EVENTS], record)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await bus.start()
        if args.until_drained:
            await bus.drain(args.drain_timeout_secs)
        else:
            await stopping.wait()
    finally:
        await bus.stop()
        await client.aclose()
        out.close()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
