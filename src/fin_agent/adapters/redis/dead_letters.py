"""`RedisDeadLetters`: what operators do with the dead-letter stream: list, show, replay, purge.

An id that is not a stream entry id, or names no dead letter, is a `DataError` naming it; Redis
unreachable is an `AdapterError`: the CLI prints either as one line, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from fin_agent.adapters.redis.streams import (
    DLQ,
    DeadLetter,
    Reply,
    StreamsSettings,
    parse_dead_letter,
    text,
)
from fin_agent.domain.errors import AdapterError, DataError

T = TypeVar("T")
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
_LIST_HINT = "`fin-agent dlq list` shows the ids"


class RedisDeadLetters:
    """The dead-letter stream of one bus (one stream prefix)."""

    def __init__(self, redis: Redis, settings: StreamsSettings) -> None:
        self._redis = redis
        self._stream = settings.key(DLQ)

    async def count(self) -> int:
        """How many entries wait in the dead-letter stream."""
        return int(await self._call(lambda: self._redis.xlen(self._stream)))

    async def oldest(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead letters."""
        rows: Reply = await self._call(
            lambda: self._redis.xrange(self._stream, "-", "+", count=limit)
        )
        return [parse_dead_letter(text(i), f) for i, f in rows]

    async def get(self, dlq_id: str) -> DeadLetter:
        """One dead letter by its id in the dead-letter stream."""
        if not _ENTRY_ID.fullmatch(dlq_id):
            raise DataError(
                f"{dlq_id!r} is not a dead-letter id (they look like 1733312345678-0): {_LIST_HINT}"
            )
        try:
            rows: Reply = await self._redis.xrange(self._stream, dlq_id, dlq_id, count=1)
        except ResponseError as exc:  # digits Redis still refuses, e.g. beyond 64 bits
            raise DataError(f"{dlq_id!r} is not a dead-letter id ({exc}): {_LIST_HINT}") from None
        except (RedisError, OSError) as exc:
            raise self._unreachable(exc) from exc
        if not rows:
            raise DataError(f"no dead letter {dlq_id!r} in {self._stream}: {_LIST_HINT}")
        return parse_dead_letter(text(rows[0][0]), rows[0][1])

    async def replay(self, dlq_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Put entries back on their original streams and remove them from the dead letters.

        Returns (dead-letter id, new entry id) pairs. Groups that already handled the event skip it.
        Every id is checked first: one unknown or malformed id replays none of them. An id given
        twice is replayed once.
        """
        letters = [await self.get(i) for i in dict.fromkeys(dlq_ids)]
        for letter in letters:
            if not letter.stream:
                raise DataError(f"dead letter {letter.id} does not name its original stream")
        pipe = self._redis.pipeline(transaction=True)
        for letter in letters:
            entry: dict[Any, Any] = dict(letter.fields)
            pipe.xadd(letter.stream, entry)
            pipe.xdel(self._stream, letter.id)
        replies = await self._call(pipe.execute)
        return [(letter.id, text(replies[2 * n])) for n, letter in enumerate(letters)]

    async def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.xlen(self._stream)
        pipe.delete(self._stream)
        count, _ = await self._call(pipe.execute)
        return int(count)

    async def _call(self, command: Callable[[], Awaitable[T]]) -> T:
        try:
            return await command()
        except (RedisError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: BaseException) -> AdapterError:
        return AdapterError(
            f"the dead-letter stream {self._stream} cannot be used ({exc}): check that Redis "
            "runs, bus.redis_url points at it and redis_password is its password"
        )
