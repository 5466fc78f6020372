"""`RedisProbe`: the readiness probe's own connection to the bus's Redis.

The bus's client is busy: blocking reads hold connections for `block_ms`, and its pool has a cap.
Probes that borrowed it would queue behind those reads, or, in a flood, take every connection and
fail with "too many connections" while Redis is fine (and starve the consumers). The probe keeps
one small pool of its own to the same server, with the same credentials, short timeouts and no
retries, so its answer says whether Redis answers now.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from fin_agent.domain.errors import AdapterError

PROBE_TIMEOUT_SECS = 1.0
PROBE_MAX_CONNECTIONS = 2
# What names the server and lets the probe in; the rest of a pool's settings (timeouts, retries,
# the library's own helpers) stays with the bus.
_SAME_SERVER = ("host", "port", "db", "path", "username", "password", "credential_provider")


class RedisProbe:
    """PING over a connection of its own, answered within `timeout_secs` or reported down."""

    def __init__(self, client: Redis, *, timeout_secs: float = PROBE_TIMEOUT_SECS) -> None:
        self._client = client
        self._timeout_secs = timeout_secs

    @classmethod
    def beside(cls, client: Redis, *, timeout_secs: float = PROBE_TIMEOUT_SECS) -> RedisProbe:
        """A probe of the server `client` talks to, with its credentials, on its own pool."""
        pool = client.connection_pool
        same: dict[str, Any] = {
            key: value
            for key, value in pool.connection_kwargs.items()
            if key in _SAME_SERVER or key.startswith("ssl")
        }
        no_retry = Retry(NoBackoff(), 0)
        own = ConnectionPool(
            connection_class=pool.connection_class,
            max_connections=PROBE_MAX_CONNECTIONS,
            socket_timeout=timeout_secs,
            socket_connect_timeout=timeout_secs,
            retry=no_retry,
            **same,
        )
        return cls(Redis(connection_pool=own, retry=no_retry), timeout_secs=timeout_secs)

    async def ping(self) -> None:
        """Raise `AdapterError` unless Redis answers PING within the probe's timeout."""
        try:
            await asyncio.wait_for(self._client.ping(), self._timeout_secs)
        except TimeoutError:
            raise AdapterError(
                f"Redis did not answer PING within {self._timeout_secs:g} s: check that it runs "
                "and bus.redis_url points at it"
            ) from None
        except (RedisError, OSError) as exc:
            raise AdapterError(
                f"Redis does not answer ({exc!r}): check that it runs, bus.redis_url points at it "
                "and redis_password is its password"
            ) from exc

    async def close(self) -> None:
        """Close the probe's connections (and its pool)."""
        await self._client.aclose()
        await self._client.connection_pool.disconnect()
