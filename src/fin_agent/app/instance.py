"""`ActiveInstance`: one active agent per set of streams; any other stands by.

The active instance holds a lease (a `Slots` claim with a fencing token, in the bus's Redis) and
renews it every third of `bus.takeover_secs`. A second agent started on the same streams finds the
lease taken and stands by, saying so; when the active one dies its lease lapses within
`takeover_secs` and the standby takes it, then resumes the day from the store (the fold). An
active instance that fails to renew (it was paused, or Redis lost the lease) stops at once
instead of writing beside its successor: never two writers.

A restart of the same agent (same name, same host) whose predecessor's process is gone (killed)
takes the lease over at once instead of waiting for it to lapse: the holder's name carries its
host and pid, and a pid that no longer runs (or is our own, a container's pid 1 restarted) holds
nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import structlog

from fin_agent.domain.errors import PermanentError, TransientError
from fin_agent.ports.slots import Slots

log = structlog.get_logger(__name__)
SLOT = "active-instance"


class LeaseLostError(PermanentError):
    """This agent lost its active-instance lease and stopped, so that two never write at once."""


class ActiveInstance:
    """The lease that makes this process the one active agent of its streams."""

    def __init__(
        self,
        slots: Slots,
        *,
        takeover_secs: float,
        name: str,
        host: str | None = None,
        pid: int | None = None,
        alive: Callable[[int], bool] | None = None,
    ) -> None:
        self._slots = slots
        self._ttl = takeover_secs
        self._name = name
        self._host = host or socket.gethostname()
        self._pid = os.getpid() if pid is None else pid
        self._alive = alive or _pid_alive
        self.token: int | None = None
        self.standing_by = False

    @property
    def holder(self) -> str:
        """Who this instance is, as the lease records it: name@host:pid."""
        return f"{self._name}@{self._host}:{self._pid}"

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Take the lease, standing by while another instance holds it; False if `stop` came
        first."""
        while not stop.is_set():
            try:
                self.token = await self._slots.claim(SLOT, self._ttl, self.holder)
                if self.token is None and await self._predecessor_dead():
                    self.token = await self._slots.claim(SLOT, self._ttl, self.holder)
            except TransientError as exc:  # Redis is down: nobody can be told apart yet
                log.warning("instance_lease_unreachable", error=str(exc))
                self.token = None
                await _wait(stop, self._ttl / 3)
                continue
            if self.token is not None:
                if self.standing_by:
                    log.warning("instance_takes_over", instance=self._name, token=self.token)
                self.standing_by = False
                log.info("instance_active", instance=self._name, token=self.token)
                return True
            if not self.standing_by:
                log.warning(
                    "instance_standing_by",
                    instance=self._name,
                    detail="another agent is active on these streams; this one takes over "
                    f"within {self._ttl:.0f} s of it stopping (bus.takeover_secs)",
                )
            self.standing_by = True
            await _wait(stop, self._ttl / 3)
        return False

    async def _predecessor_dead(self) -> bool:
        """Release the lease if it is held by this same agent's killed predecessor."""
        held = await self._slots.holder(SLOT)
        if held is None:
            return True  # it just lapsed: claim again
        token, holder = held
        name, _, place = holder.rpartition("@")
        host, _, pid = place.rpartition(":")
        if name != self._name or host != self._host or not pid.isdigit():
            return False
        if int(pid) != self._pid and self._alive(int(pid)):
            return False
        log.warning("instance_predecessor_dead", holder=holder, token=token)
        return await self._slots.release(SLOT, token)

    async def keep(self, stop: asyncio.Event, lost: Callable[[str], None]) -> None:
        """Renew the lease until `stop`; when it cannot be renewed, call `lost` with why."""
        token = self.token
        if token is None:
            raise RuntimeError("keep() before acquire(): this instance holds no lease")
        failures = 0
        while not stop.is_set():
            await _wait(stop, self._ttl / 3)
            if stop.is_set():
                return
            answered = True
            try:
                held = await self._slots.extend(SLOT, token, self._ttl)
            except TransientError as exc:
                failures += 1
                if failures * self._ttl / 3 < self._ttl:  # keep trying while the lease lasts
                    log.warning("instance_lease_renewal_failed", error=str(exc))
                    continue
                held = answered = False
            if not held and answered and await self._vacant():
                # nobody holds it: Redis lost it (restarted empty), nobody took it; take it again
                # rather than stop, or the journal of what to publish again would die with us
                again = await self._claim_again()
                if again is not None:
                    token, held = again, True
            if not held:
                why = (
                    f"this agent lost its lease (token {token}) as the active instance: another "
                    "instance may have taken over; it stops so that two never write at once"
                )
                log.error("instance_lease_lost", detail=why)
                lost(why)
                return
            failures = 0

    async def _vacant(self) -> bool:
        try:
            return await self._slots.holder(SLOT) is None
        except TransientError:
            return False

    async def _claim_again(self) -> int | None:
        try:
            token = await self._slots.claim(SLOT, self._ttl, self.holder)
        except TransientError as exc:
            log.warning("instance_lease_unreachable", error=str(exc))
            return None
        if token is not None:
            self.token = token
            log.warning(
                "instance_lease_reclaimed",
                token=token,
                detail="the lease was gone (Redis lost its data?) and nobody else held it",
            )
        return token

    async def release(self) -> None:
        """Give the lease up (a clean stop), so a standby takes over at once."""
        if self.token is None:
            return
        try:
            await self._slots.release(SLOT, self.token)
        except TransientError as exc:  # it lapses by itself within takeover_secs
            log.warning("instance_lease_not_released", error=str(exc))
        self.token = None


async def _wait(stop: asyncio.Event, secs: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=secs)
    except TimeoutError:
        return


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
