"""`RedisDeadLetters`: what operators do with the dead-letter stream: list, show, replay, purge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from fin_agent.adapters.redis.streams import (
    DLQ,
    DeadLetter,
    Reply,
    StreamsSettings,
    parse_dead_letter,
    text,
)
from fin_agent.domain.errors import DataError


class RedisDeadLetters:
    """The dead-letter stream of one bus (one stream prefix)."""

    def __init__(self, redis: Redis, settings: StreamsSettings) -> None:
        self._redis = redis
        self._stream = settings.key(DLQ)

    async def count(self) -> int:
        """How many entries wait in the dead-letter stream."""
        return int(await self._redis.xlen(self._stream))

    async def oldest(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead letters."""
        rows: Reply = await self._redis.xrange(self._stream, "-", "+", count=limit)
        return [parse_dead_letter(text(i), f) for i, f in rows]

    async def get(self, dlq_id: str) -> DeadLetter:
        """One dead letter by its id in the dead-letter stream."""
        rows: Reply = await self._redis.xrange(self._stream, dlq_id, dlq_id, count=1)
        if not rows:
            raise DataError(
                f"no dead letter {dlq_id!r} in {self._stream}: `fin-agent dlq list` shows the ids"
            )
        return parse_dead_letter(text(rows[0][0]), rows[0][1])

    async def replay(self, dlq_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Put entries back on their original streams and remove them from the dead letters.

        Returns (dead-letter id, new entry id) pairs. Groups that already handled the event skip it.
        """
        letters = [await self.get(i) for i in dlq_ids]
        for letter in letters:
            if not letter.stream:
                raise DataError(f"dead letter {letter.id} does not name its original stream")
        pipe = self._redis.pipeline(transaction=True)
        for letter in letters:
            entry: dict[Any, Any] = dict(letter.fields)
            pipe.xadd(letter.stream, entry)
            pipe.xdel(self._stream, letter.id)
        replies = await pipe.execute()
        return [(letter.id, text(replies[2 * n])) for n, letter in enumerate(letters)]

    async def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.xlen(self._stream)
        pipe.delete(self._stream)
        count, _ = await pipe.execute()
        return int(count)
