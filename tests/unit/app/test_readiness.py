"""`Readiness`: a flood of probes shares one run of the checks, reused for `ttl_secs`."""

from __future__ import annotations

import asyncio

import pytest

from fin_agent.app.http.readiness import Readiness


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class GatedCheck:
    """A check that answers when the test opens its gate, counting how often it was asked."""

    def __init__(self, reason: str | None = None) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.reason = reason

    async def __call__(self) -> str | None:
        self.calls += 1
        await self.gate.wait()
        return self.reason


@pytest.mark.asyncio
async def test_a_thousand_concurrent_probes_run_the_checks_once() -> None:
    bus, store = GatedCheck(), GatedCheck("store down: connection refused")
    readiness = Readiness({"bus": bus, "store": store}, monotonic=Clock())

    probes = [asyncio.create_task(readiness.results()) for _ in range(1000)]
    await asyncio.sleep(0)  # every probe is now waiting on the one check
    bus.gate.set()
    store.gate.set()
    answers = await asyncio.gather(*probes)

    assert (bus.calls, store.calls, readiness.runs) == (1, 1, 1)
    expected = {
        "bus": {"ok": True},
        "store": {"ok": False, "reason": "store down: connection refused"},
    }
    assert all(answer == expected for answer in answers)


@pytest.mark.asyncio
async def test_results_are_reused_for_the_ttl_then_checked_again() -> None:
    clock = Clock()
    check = GatedCheck()
    check.gate.set()
    readiness = Readiness({"bus": check}, ttl_secs=0.5, monotonic=clock)

    await readiness.results()
    clock.now += 0.49
    await readiness.results()
    reused = check.calls
    clock.now += 0.02
    await readiness.results()

    assert reused == 1
    assert check.calls == 2


@pytest.mark.asyncio
async def test_a_probe_that_goes_away_does_not_cancel_the_others_check() -> None:
    check = GatedCheck()
    readiness = Readiness({"bus": check}, monotonic=Clock())
    leaving = asyncio.create_task(readiness.results())
    staying = asyncio.create_task(readiness.results())
    await asyncio.sleep(0)

    leaving.cancel()
    await asyncio.sleep(0)
    check.gate.set()

    assert await staying == {"bus": {"ok": True}}
    assert leaving.cancelled()
    assert check.calls == 1


@pytest.mark.asyncio
async def test_a_check_that_hangs_or_breaks_is_named_and_the_others_still_answer() -> None:
    hangs = GatedCheck()  # never opened

    async def breaks() -> str | None:
        raise RuntimeError("bug in the check")

    async def fine() -> str | None:
        return None

    readiness = Readiness(
        {"bus": hangs, "store": breaks, "coordinator": fine}, timeout_secs=0.05, monotonic=Clock()
    )

    results = await readiness.results()

    assert results == {
        "bus": {"ok": False, "reason": "no answer in 0.05 s"},
        "store": {"ok": False, "reason": "check failed: RuntimeError('bug in the check')"},
        "coordinator": {"ok": True},
    }
