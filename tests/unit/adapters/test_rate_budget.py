"""RateBudget: several windows at once, waiting never dropping, fair order, 429 pauses, stats."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fin_agent.adapters.vendor_http.rate_budget import FINNHUB_FREE_WINDOWS, RateBudget, RateWindow
from fin_agent.domain.errors import ConfigError


class FakeTime:
    """A monotonic clock that only moves when a budget sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.sleeps.append(secs)
        self.now += secs
        await asyncio.sleep(0)


def budget_on(
    fake: FakeTime,
    windows: tuple[RateWindow, ...] = FINNHUB_FREE_WINDOWS,
    margin_secs: float = 0.0,
) -> RateBudget:
    return RateBudget(windows, margin_secs=margin_secs, clock=fake.clock, sleep=fake.sleep)


async def stamps_of(budget: RateBudget, fake: FakeTime, calls: int) -> list[float]:
    stamps = []
    for _ in range(calls):
        await budget.acquire()
        stamps.append(fake.now - 1000.0)
    return stamps


def most_in_any_window(stamps: list[float], per_secs: float) -> int:
    """The most calls stamped in any half-open stretch [t, t + per_secs)."""
    return max(sum(1 for s in stamps if t <= s < t + per_secs) for t in stamps)


@pytest.mark.asyncio
async def test_rate_budget_lets_a_burst_up_to_the_per_second_window_through_at_once() -> None:
    fake = FakeTime()
    budget = budget_on(fake)

    stamps = await stamps_of(budget, fake, 31)

    assert stamps[:30] == [0.0] * 30
    assert stamps[30] == pytest.approx(1.0)
    assert budget.stats.waits == 1


@pytest.mark.asyncio
async def test_rate_budget_holds_120_calls_to_60_a_minute_and_30_a_second() -> None:
    fake = FakeTime()
    budget = budget_on(fake)

    stamps = await stamps_of(budget, fake, 120)

    assert most_in_any_window(stamps, 60.0) == 60
    assert most_in_any_window(stamps, 1.0) == 30
    assert stamps[-1] == pytest.approx(61.0)  # 30 at 0 s, 30 at 1 s, 30 at 60 s, 30 at 61 s
    assert budget.stats.acquired == 120


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=150)
)
def test_rate_budget_never_exceeds_any_window_whatever_the_arrivals(gaps: list[float]) -> None:
    fake = FakeTime()
    windows = (RateWindow(max_calls=10, per_secs=5.0), RateWindow(max_calls=3, per_secs=1.0))
    budget = budget_on(fake, windows)

    async def run() -> list[float]:
        stamps = []
        for gap in gaps:
            fake.now += gap
            await budget.acquire()
            stamps.append(fake.now)
        return stamps

    stamps = asyncio.run(run())

    assert len(stamps) == len(gaps)  # every call went through: waiting, never dropping
    assert most_in_any_window(stamps, 5.0) <= 10
    assert most_in_any_window(stamps, 1.0) <= 3


@pytest.mark.asyncio
async def test_rate_budget_pause_for_holds_every_caller_for_the_retry_after() -> None:
    fake = FakeTime()
    budget = budget_on(fake)
    await budget.acquire()

    budget.pause_for(7.5)
    assert budget.stats.paused_secs_left == pytest.approx(7.5)
    await budget.acquire()

    assert fake.now - 1000.0 == pytest.approx(7.5)
    stats = budget.stats
    assert stats.rate_limited == 1
    assert stats.waits == 1
    assert stats.wait_secs == pytest.approx(7.5)
    assert stats.paused_secs_left == 0.0


@pytest.mark.asyncio
async def test_rate_budget_a_shorter_pause_never_shortens_a_longer_one() -> None:
    fake = FakeTime()
    budget = budget_on(fake)

    budget.pause_for(10)
    budget.pause_for(2)
    await budget.acquire()

    assert fake.now - 1000.0 == pytest.approx(10)
    assert budget.stats.rate_limited == 2


@pytest.mark.asyncio
async def test_rate_budget_serves_waiters_in_arrival_order() -> None:
    fake = FakeTime()
    budget = budget_on(fake, (RateWindow(max_calls=1, per_secs=1.0),))
    served: list[int] = []

    async def caller(n: int) -> None:
        await budget.acquire()
        served.append(n)

    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(caller(n)))
        await asyncio.sleep(0)  # arrive in order
    await asyncio.gather(*tasks)

    assert served == [0, 1, 2, 3, 4, 5]
    assert fake.now - 1000.0 == pytest.approx(5.0)


@pytest.mark.asyncio
async def test_rate_budget_stats_report_each_windows_use_as_a_ratio() -> None:
    fake = FakeTime()
    budget = budget_on(fake)
    await stamps_of(budget, fake, 15)

    minute, second = budget.stats.windows
    assert (minute.window.label, minute.used, minute.ratio) == ("60/60s", 15, 0.25)
    assert (second.window.label, second.used, second.ratio) == ("30/1s", 15, 0.5)

    fake.now += 1.0
    minute, second = budget.stats.windows
    assert (minute.ratio, second.ratio) == (0.25, 0.0)


@pytest.mark.asyncio
async def test_rate_budget_margin_keeps_a_call_in_its_window_a_little_longer() -> None:
    fake = FakeTime()
    budget = budget_on(fake, (RateWindow(max_calls=2, per_secs=1.0),), margin_secs=0.25)

    stamps = await stamps_of(budget, fake, 3)

    assert stamps == [0.0, 0.0, pytest.approx(1.25)]


@pytest.mark.asyncio
async def test_rate_budget_a_cancelled_waiter_takes_no_call() -> None:
    gate = asyncio.Event()
    now = [0.0]

    async def blocked_sleep(secs: float) -> None:
        await gate.wait()
        now[0] += secs

    budget = RateBudget(
        (RateWindow(max_calls=1, per_secs=1.0),), clock=lambda: now[0], sleep=blocked_sleep
    )
    await budget.acquire()
    waiter = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0)
    assert budget.stats.waiting == 1

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert budget.stats.acquired == 1
    assert budget.stats.waiting == 0


def test_rate_budget_sustained_rate_is_the_tightest_windows() -> None:
    assert RateBudget().calls_per_minute == 60.0
    assert RateBudget((RateWindow(max_calls=5, per_secs=1.0),)).calls_per_minute == 300.0


@pytest.mark.parametrize(
    ("windows", "margin", "match"),
    [
        ((), 0.0, "has no window: give at least one"),
        ((RateWindow(max_calls=0, per_secs=60.0),), 0.0, "use max_calls >= 1 and per_secs > 0"),
        ((RateWindow(max_calls=5, per_secs=0.0),), 0.0, "use max_calls >= 1 and per_secs > 0"),
        (FINNHUB_FREE_WINDOWS, -1.0, "margin_secs must be >= 0"),
    ],
)
def test_rate_budget_refuses_windows_that_allow_nothing(
    windows: tuple[RateWindow, ...], margin: float, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        RateBudget(windows, margin_secs=margin)


@pytest.mark.asyncio
async def test_rate_budget_counts_a_call_from_its_answer_not_from_when_it_left() -> None:
    fake = FakeTime()
    budget = budget_on(fake, (RateWindow(max_calls=2, per_secs=1.0),))
    answer = asyncio.Event()

    async def slow_call() -> None:
        async with budget.call():
            await answer.wait()

    slow = asyncio.create_task(slow_call())
    await asyncio.sleep(0)  # the slow call leaves at 0 s
    await budget.acquire()  # an instant call at 0 s
    fake.now += 0.5
    answer.set()  # the slow call's answer comes back at 0.5 s
    await slow

    stamps = await stamps_of(budget, fake, 2)

    # the instant call ages out at 1 s; the slow one at 1.5 s, not at 1 s as if counted on leaving
    assert stamps == [pytest.approx(1.0), pytest.approx(1.5)]


@pytest.mark.asyncio
async def test_rate_budget_waits_for_an_answer_when_every_place_is_in_flight() -> None:
    fake = FakeTime()
    budget = budget_on(fake, (RateWindow(max_calls=1, per_secs=1.0),), margin_secs=0.25)
    answer = asyncio.Event()

    async def slow_call() -> None:
        async with budget.call():
            await answer.wait()

    slow = asyncio.create_task(slow_call())
    await asyncio.sleep(0)
    second = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0)
    fake.now += 3.0  # no time-based wait can free the place: only the answer
    assert not second.done()

    answer.set()
    await asyncio.gather(slow, second)

    assert fake.now - 1000.0 == pytest.approx(3.0 + 1.0 + 0.25)
    assert budget.stats.waits == 1
