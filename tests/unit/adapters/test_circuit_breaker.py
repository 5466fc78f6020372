"""CircuitBreaker: opens after N failures in a row, refuses during the cool-down, one half-open
trial, recovers or opens again; stale verdicts are ignored; one breaker per endpoint."""

from __future__ import annotations

import pytest

from fin_agent.adapters.vendor_http.circuit_breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    CircuitBreakers,
)
from fin_agent.domain.errors import AdapterError, ConfigError

CONFIG = BreakerConfig(failure_threshold=3, cooldown_secs=30.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker, times: int, reason: str = "HTTP 503") -> None:
    for _ in range(times):
        breaker.allow().failure(reason)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("finnhub /quote", CONFIG, clock=clock)


def test_breaker_opens_after_the_threshold_of_consecutive_failures(
    breaker: CircuitBreaker,
) -> None:
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED

    fail(breaker, 1)

    assert breaker.stats.state is BreakerState.OPEN
    with pytest.raises(
        AdapterError,
        match=r"^finnhub /quote: circuit open after 3 consecutive failures \(last: HTTP 503\); "
        r"calls are refused for 30\.0 s more",
    ):
        breaker.allow()
    assert (breaker.stats.opened, breaker.stats.refused) == (1, 1)


def test_breaker_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.allow().success()
    fail(breaker, 2)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats.consecutive_failures == 2


def test_breaker_lets_one_trial_through_after_the_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.now += 29.9
    with pytest.raises(AdapterError, match=r"refused for 0\.1 s more"):
        breaker.allow()

    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    trial = breaker.allow()

    assert trial.trial
    with pytest.raises(AdapterError, match="half-open and its one trial call is still running"):
        breaker.allow()


def test_breaker_closes_when_the_trial_succeeds(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.now += 30
    breaker.allow().success()

    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats.consecutive_failures == 0
    assert not breaker.allow().trial


def test_breaker_opens_again_for_a_full_cooldown_when_the_trial_fails(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.now += 30
    breaker.allow().failure("timeout")

    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    with pytest.raises(AdapterError, match=r"4 consecutive failures \(last: timeout\)"):
        breaker.allow()
    assert breaker.stats.opened == 2


def test_breaker_released_trial_frees_the_slot_without_a_verdict(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.now += 30
    breaker.allow().release()

    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow().trial


def test_breaker_ignores_verdicts_from_calls_admitted_before_it_changed_state(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    late = breaker.allow()
    fail(breaker, 3)
    clock.now += 30
    breaker.allow().success()  # the trial closed it again

    late.failure("HTTP 500")  # admitted before it opened: stale
    late.failure("HTTP 500")  # and a ticket reports only once anyway

    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats.consecutive_failures == 0


def test_breakers_are_kept_per_endpoint(clock: FakeClock) -> None:
    breakers = CircuitBreakers("finnhub", CONFIG, clock=clock)
    fail(breakers.for_endpoint("/quote"), 3)

    assert breakers.for_endpoint("/quote").state is BreakerState.OPEN
    assert breakers.for_endpoint("/company-news").state is BreakerState.CLOSED
    assert [s.name for s in breakers.stats] == ["finnhub /company-news", "finnhub /quote"]


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 30.0), (3, 0.0)])
def test_breaker_config_refuses_thresholds_that_never_open_or_never_close(
    threshold: int, cooldown: float
) -> None:
    with pytest.raises(ConfigError, match="use failure_threshold >= 1, cooldown_secs > 0"):
        BreakerConfig(failure_threshold=threshold, cooldown_secs=cooldown)
