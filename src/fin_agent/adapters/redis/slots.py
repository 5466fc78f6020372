"""`RedisSlots`: the slots port on Redis, so a job runs once per slot across restarts and instances.

A claim is `SET lock NX PX` with a fencing token from `INCR`; renewing and finishing compare the
token first (Lua, atomic), so a scheduler whose lease expired cannot record a result over the one
that took the slot after it. `InMemorySlots` is the same contract on a `Clock`, for tests and the
in-process agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from fin_agent.domain.errors import AdapterError
from fin_agent.ports.clock import Clock

# Results outlive the longest look-back of a scheduler (a week), so a finished slot it can still
# see is never claimed again.
RESULT_TTL_SECS = 8 * 86_400

# KEYS: lock, result, token counter. ARGV: ttl ms. A finished or leased slot is refused before a
# token is drawn, so tokens are only spent on claims that win.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local token = redis.call('INCR', KEYS[3])
if not redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[1]) then
  return false
end
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[1])
return token
"""

# KEYS: lock, holder. ARGV: token, ttl ms.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lock, result. ARGV: token, result, result ttl ms.
_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1], KEYS[1] .. ':holder')
return 1
"""


# KEYS: lock, holder. ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""


def _ms(secs: float) -> int:
    if secs <= 0:
        raise ValueError(f"a lease needs a positive ttl, got {secs} s")
    return max(1, round(secs * 1000))


class RedisSlots:
    """Slot leases and results in Redis (`<prefix>:slot:<id>:lock|result`), tokens from INCR."""

    def __init__(
        self, redis: Redis, *, prefix: str = "fin", result_ttl_secs: float = RESULT_TTL_SECS
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._result_ttl_ms = _ms(result_ttl_secs)
        self._claim = redis.register_script(_CLAIM)
        self._extend = redis.register_script(_EXTEND)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)

    def lock_key(self, slot_id: str) -> str:
        """The key of the slot's lease (its value is the holder's fencing token)."""
        return f"{self._prefix}:slot:{slot_id}:lock"

    def result_key(self, slot_id: str) -> str:
        """The key of the slot's recorded result."""
        return f"{self._prefix}:slot:{slot_id}:result"

    @property
    def token_key(self) -> str:
        """The counter every fencing token is drawn from."""
        return f"{self._prefix}:slot-tokens"

    async def claim(self, slot_id: str, ttl_secs: float, holder: str = "") -> int | None:
        """Lease `slot_id` for `ttl_secs`: a new fencing token, or None if finished or leased."""
        lock = self.lock_key(slot_id)
        keys = [lock, self.result_key(slot_id), self.token_key, f"{lock}:holder"]
        try:
            token = await self._claim(keys=keys, args=[_ms(ttl_secs), holder])
        except RedisError as error:
            raise _failed("claim", slot_id, error) from error
        return None if token is None else int(token)

    async def extend(self, slot_id: str, token: int, ttl_secs: float) -> bool:
        """Renew the lease for `ttl_secs` while `token` holds it."""
        try:
            lock = self.lock_key(slot_id)
            held = await self._extend(keys=[lock, f"{lock}:holder"], args=[token, _ms(ttl_secs)])
        except RedisError as error:
            raise _failed("renew the lease of", slot_id, error) from error
        return bool(held)

    async def finish(self, slot_id: str, token: int, result: str) -> bool:
        """Record `result` and release the lease, only while `token` holds it."""
        keys = [self.lock_key(slot_id), self.result_key(slot_id)]
        try:
            done = await self._finish(keys=keys, args=[token, result, self._result_ttl_ms])
        except RedisError as error:
            raise _failed("finish", slot_id, error) from error
        return bool(done)

    async def release(self, slot_id: str, token: int) -> bool:
        """End the lease without a result, only while `token` holds it."""
        try:
            lock = self.lock_key(slot_id)
            done = await self._release(keys=[lock, f"{lock}:holder"], args=[token])
        except RedisError as error:
            raise _failed("release", slot_id, error) from error
        return bool(done)

    async def holder(self, slot_id: str) -> tuple[int, str] | None:
        """The token and holder of the slot's current lease, or None when it is not leased."""
        lock = self.lock_key(slot_id)
        try:
            token, holder = await self._redis.mget([lock, f"{lock}:holder"])
        except RedisError as error:
            raise _failed("read the holder of", slot_id, error) from error
        if token is None:
            return None
        text = holder.decode() if isinstance(holder, bytes) else str(holder or "")
        return int(token), text

    async def result(self, slot_id: str) -> str | None:
        """The slot's recorded result, or None while it is not finished."""
        try:
            value = await self._redis.get(self.result_key(slot_id))
        except RedisError as error:
            raise _failed("read the result of", slot_id, error) from error
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)


def _failed(action: str, slot_id: str, error: RedisError) -> AdapterError:
    return AdapterError(
        f"could not {action} slot {slot_id} in Redis ({type(error).__name__}: {error}); "
        "check that Redis is up and bus.redis_url points at it"
    )


@dataclass(slots=True)
class _Lease:
    token: int
    expires_at: datetime
    holder: str = ""


class InMemorySlots:
    """The slots contract in one process: leases expire by `clock`, results are kept forever."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._results: dict[str, str] = {}
        self._last_token = 0

    def _holder(self, slot_id: str) -> _Lease | None:
        lease = self._leases.get(slot_id)
        if lease is not None and lease.expires_at <= self._clock.now():
            del self._leases[slot_id]
            return None
        return lease

    async def claim(self, slot_id: str, ttl_secs: float, holder: str = "") -> int | None:
        """Lease `slot_id` for `ttl_secs` of the clock: a new token, or None if finished/leased."""
        ttl_ms = _ms(ttl_secs)
        if slot_id in self._results or self._holder(slot_id) is not None:
            return None
        self._last_token += 1
        expires_at = self._clock.now() + timedelta(milliseconds=ttl_ms)
        self._leases[slot_id] = _Lease(token=self._last_token, expires_at=expires_at, holder=holder)
        return self._last_token

    async def extend(self, slot_id: str, token: int, ttl_secs: float) -> bool:
        """Renew the lease for `ttl_secs` while `token` holds it."""
        ttl_ms = _ms(ttl_secs)
        lease = self._holder(slot_id)
        if lease is None or lease.token != token:
            return False
        lease.expires_at = self._clock.now() + timedelta(milliseconds=ttl_ms)
        return True

    async def finish(self, slot_id: str, token: int, result: str) -> bool:
        """Record `result` and release the lease, only while `token` holds it."""
        lease = self._holder(slot_id)
        if lease is None or lease.token != token or slot_id in self._results:
            return False
        self._results[slot_id] = result
        del self._leases[slot_id]
        return True

    async def release(self, slot_id: str, token: int) -> bool:
        """End the lease without a result, only while `token` holds it."""
        lease = self._holder(slot_id)
        if lease is None or lease.token != token:
            return False
        del self._leases[slot_id]
        return True

    async def holder(self, slot_id: str) -> tuple[int, str] | None:
        """The token and holder of the slot's current lease, or None when it is not leased."""
        lease = self._holder(slot_id)
        return None if lease is None else (lease.token, lease.holder)

    async def result(self, slot_id: str) -> str | None:
        """The slot's recorded result, or None while it is not finished."""
        return self._results.get(slot_id)
