"""``CircuitBreaker``: the tutorial's constructor, state and methods."""

from __future__ import annotations

import pytest

from backstop import BreakerState
from backstop.resilience import CircuitBreaker, fallback_chain
from backstop.testing import ScriptedLLM


def test_tutorial_constructor_gives_the_count_rule() -> None:
    b = CircuitBreaker(name="openai-gpt4o", failure_threshold=3, window_seconds=60, recovery_timeout=60)
    assert (b.name, b.mode, b.failure_threshold) == ("openai-gpt4o", "count", 3)
    assert (b.window_seconds, b.recovery_timeout, b.max_recovery_timeout) == (60.0, 60.0, 60.0)
    assert b.state == BreakerState.CLOSED
    assert b.state == "closed"


def test_failure_threshold_failures_open_it_and_reset_closes_it() -> None:
    b = CircuitBreaker("openai", failure_threshold=3, recovery_timeout=30)
    for _ in range(b.failure_threshold - 1):
        b._record_failure()
    assert b.state == BreakerState.CLOSED
    b._record_failure()
    assert b.state == BreakerState.OPEN
    assert b.snapshot()["until_half_open"] is not None
    b.reset()
    assert b.state == BreakerState.CLOSED
    b.trip()
    assert b.state == "open"


def test_after_recovery_timeout_a_success_closes_it() -> None:
    b = CircuitBreaker("x", failure_threshold=1, recovery_timeout=0)
    b.record_failure()
    # A zero open period: it is half-open at once, and one success closes it.
    assert b.state == BreakerState.HALF_OPEN
    b.record_success()
    assert b.state == BreakerState.CLOSED


def test_failure_rate_options() -> None:
    b = CircuitBreaker("x", failure_rate=0.5, minimum_calls=4)
    assert (b.mode, b.failure_threshold, b.failure_rate, b.minimum_calls) == ("rate", None, 0.5, 4)
    b.record_success()
    b.record_success()
    b.record_failure()
    assert b.state == BreakerState.CLOSED  # 3 calls: below minimum_calls
    b.record_failure()
    assert b.state == BreakerState.OPEN  # 2 of 4 failed


def test_default_breaker_is_the_librarys_failure_rate_rule() -> None:
    b = CircuitBreaker("x")
    assert (b.mode, b.failure_rate, b.minimum_calls) == ("rate", 0.5, 100)
    assert (b.recovery_timeout, b.max_recovery_timeout) == (5.0, 20.0)


def test_the_chain_sees_the_same_breaker() -> None:
    primary = ScriptedLLM("primary")
    b = CircuitBreaker("primary", failure_threshold=2)
    chain = fallback_chain([(primary, b), (ScriptedLLM("backup"), CircuitBreaker("backup"))])
    b._record_failure()
    b._record_failure()
    assert chain.generate("hi").provider_used == "backup"
    assert primary.calls == 0
    assert chain.breakers[0] is b


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"failure_threshold": 0}, "failure_threshold must be an integer from 1"),
        ({"failure_threshold": 3, "failure_rate": 0.5}, "not both"),
        ({"failure_threshold": 3, "minimum_calls": 10}, "minimum_calls belongs to the failure-rate rule"),
        ({"failure_rate": 1.5}, "failure_rate must be above 0 and at most 1"),
        ({"window_seconds": 0}, "window_seconds must be a positive number of seconds"),
        ({"recovery_timeout": -1}, "recovery_timeout must be a number of seconds, 0 or more"),
        ({"recovery_timeout": 30, "max_recovery_timeout": 10}, "must not be below recovery_timeout"),
        ({"half_open_probes": 0}, "half_open_probes must be an integer from 1"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CircuitBreaker("x", **kwargs)


def test_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="name must not be empty"):
        CircuitBreaker(" ")
