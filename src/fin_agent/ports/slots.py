"""The `Slots` port: claims on scheduled slots, so a job runs at most once per slot.

A slot is one scheduled run of one job (its id names the job, the session day and the time). Any
number of schedulers may race for it: `claim` hands out a lease with a fencing token to one of
them, and only the holder of the current token can record the slot's result. A finished slot is
never claimed again; a lease that is neither renewed nor finished (its holder crashed) expires.
"""

from __future__ import annotations

from typing import Protocol


class Slots(Protocol):
    """Leases on slots with fencing tokens, and each finished slot's recorded result."""

    async def claim(self, slot_id: str, ttl_secs: float, holder: str = "") -> int | None:
        """Lease `slot_id` for `ttl_secs` to `holder` (a name saying who); return a fencing
        token larger than any handed out before, or None when finished or leased to another."""
        ...

    async def extend(self, slot_id: str, token: int, ttl_secs: float) -> bool:
        """Renew the lease for another `ttl_secs` while `token` still holds it; False if not."""
        ...

    async def finish(self, slot_id: str, token: int, result: str) -> bool:
        """Record `result` and end the lease, only if `token` still holds it; False if it did
        not (the lease expired and was claimed again, or the slot is already finished)."""
        ...

    async def release(self, slot_id: str, token: int) -> bool:
        """End the lease without a result while `token` holds it (the slot can be claimed
        again at once); False if `token` no longer held it."""
        ...

    async def holder(self, slot_id: str) -> tuple[int, str] | None:
        """The token and holder name of the slot's current lease, or None when not leased."""
        ...

    async def result(self, slot_id: str) -> str | None:
        """The recorded result of `slot_id`, or None while it is not finished."""
        ...
