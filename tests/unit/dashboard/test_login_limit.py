"""The sign-in's limit of wrong passwords per client a minute."""

from __future__ import annotations

from dashboard.login_limit import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_waits_after_its_fifth_wrong_password_until_the_minute_has_passed() -> None:
    clock = Clock()
    limiter = LoginLimiter(5, clock)
    for _ in range(4):
        limiter.failed("10.0.0.1")
    assert limiter.wait_secs("10.0.0.1") == 0
    limiter.failed("10.0.0.1")

    clock.now += 20
    assert limiter.wait_secs("10.0.0.1") == 40
    assert limiter.wait_secs("10.0.0.2") == 0  # another client is not held up
    clock.now += 40
    assert limiter.wait_secs("10.0.0.1") == 0


def test_a_successful_sign_in_starts_the_count_again() -> None:
    limiter = LoginLimiter(2, Clock())
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    assert limiter.wait_secs("a") == 0
