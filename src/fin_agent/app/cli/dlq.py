"""`fin-agent dlq list | show ID | replay ID... | purge`: the dead-letter stream for operators."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

from redis.asyncio import Redis

from fin_agent.adapters.redis.dead_letters import RedisDeadLetters
from fin_agent.adapters.redis.embedded import EmbeddedRedis
from fin_agent.adapters.redis.streams import DeadLetter
from fin_agent.app.bootstrap import streams_settings
from fin_agent.app.config.settings import Settings


@asynccontextmanager
async def dead_letters(settings: Settings) -> AsyncIterator[RedisDeadLetters]:
    """The dead letters of the configured bus: its Redis URL, or the embedded server's folder."""
    server: EmbeddedRedis | None = None
    url = settings.bus.redis_url
    if url is None:
        server = EmbeddedRedis(settings.data_path("redis"))
        url = server.attach_or_start()
    client = Redis.from_url(url, password=settings.bus_redis_password(), socket_connect_timeout=5.0)
    try:
        yield RedisDeadLetters(client, streams_settings(settings.bus))
    finally:
        await client.aclose()
        if server is not None:
            server.stop_if_started()


def _row(letter: DeadLetter) -> str:
    detail = letter.detail if len(letter.detail) <= 60 else letter.detail[:57] + "..."
    return (
        f"{letter.id:<18} {letter.reason:<16} {letter.event_type:<22} "
        f"{letter.stream}#{letter.entry_id}  {letter.group:<10} {letter.deliveries:>3}  {detail}"
    )


def _as_dict(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "reason": letter.reason,
        "detail": letter.detail,
        "stream": letter.stream,
        "entry_id": letter.entry_id,
        "group": letter.group,
        "deliveries": letter.deliveries,
        "fields": dict(letter.fields),
    }


async def dlq_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Run one `dlq` subcommand and print its result."""
    async with dead_letters(settings) as letters:
        if args.dlq_command == "list":
            rows = await letters.oldest(args.limit)
            if args.json:
                out.write(json.dumps([_as_dict(r) for r in rows], indent=2) + "\n")
            elif not rows:
                out.write("the dead-letter stream is empty\n")
            else:
                out.write("id                 reason           type                   origin\n")
                out.writelines(_row(r) + "\n" for r in rows)
        elif args.dlq_command == "show":
            out.write(json.dumps(_as_dict(await letters.get(args.id)), indent=2) + "\n")
        elif args.dlq_command == "replay":
            for old, new in await letters.replay(args.ids):
                out.write(f"replayed {old} as {new}\n")
        else:
            out.write(f"purged {await letters.purge()} dead letters\n")
    return 0
