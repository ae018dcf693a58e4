"""The tutorial's per-request timeout: ``asyncio.wait_for(chain.agenerate(p), timeout=...)``
"counts as a failure for circuit breaker purposes", and ``agenerate(p, timeout=...)`` is the
explicit form."""

from __future__ import annotations

import asyncio
from typing import Dict

import pytest

from backstop import BreakerState
from backstop.resilience import AllProvidersFailedError
from chains import tutorial_chain
from simulators import Simulator

PROMPT = "What is idempotency in REST APIs?"


def wait_for_request(sim: Simulator, n: int = 1) -> None:
    """Until the simulator has received ``n`` requests (bounded)."""
    for _ in range(5000):
        if sim.requests() >= n:
            return
    raise AssertionError("the request never reached the simulator")


def test_wait_for_timeout_is_on_the_breaker_when_wait_for_raises(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, anthropic, _) = tutorial_chain(failure_threshold=1)

    async def go() -> str:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(chain.agenerate(PROMPT), timeout=0.3)
        # Synchronously recorded: no yield to the loop between wait_for raising and this.
        assert openai.state == BreakerState.OPEN
        assert anthropic.snapshot()["failures_in_window"] == 0
        result = await chain.agenerate(PROMPT)
        return result.provider_used

    assert asyncio.run(go()) == "anthropic"
    assert sims["openai"].requests() == 1


def test_wait_for_timeout_counts_once(sims: Dict[str, Simulator]) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain(failure_threshold=3)

    async def go() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(chain.agenerate(PROMPT), timeout=0.3)

    asyncio.run(go())
    assert openai.snapshot()["failures_in_window"] == 1
    assert openai.state == BreakerState.CLOSED


def test_any_cancellation_of_an_in_flight_call_counts_as_a_timeout(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain()

    async def go() -> None:
        task = asyncio.ensure_future(chain.agenerate(PROMPT))
        await asyncio.sleep(0)  # let the task start the call
        wait_for_request(sims["openai"])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert openai.snapshot()["failures_in_window"] == 1


def test_cancellation_is_neutral_with_cancel_counts_as_timeout_false(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain(cancel_counts_as_timeout=False)

    async def go() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(chain.agenerate(PROMPT), timeout=0.3)

    asyncio.run(go())
    assert openai.snapshot()["failures_in_window"] == 0


def test_explicit_timeout_records_a_timeout_and_raises_with_deadline_exceeded(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain()

    async def go() -> AllProvidersFailedError:
        with pytest.raises(AllProvidersFailedError) as caught:
            await chain.agenerate(PROMPT, timeout=0.3)
        return caught.value

    error = asyncio.run(go())
    assert error.deadline_exceeded
    assert error.kind == "timeout"
    first = error.errors[0]
    assert (first.provider, first.kind, first.attempted) == ("openai", "timeout", True)
    assert [e.attempted for e in error.errors[1:]] == [False, False]
    assert "request deadline exceeded" in str(error)
    assert openai.snapshot()["failures_in_window"] == 1
    assert sims["anthropic"].requests() == 0


def test_sync_generate_takes_the_same_timeout(sims: Dict[str, Simulator]) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain()
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.generate(PROMPT, timeout=0.3)
    assert caught.value.deadline_exceeded
    assert openai.snapshot()["failures_in_window"] == 1


def test_chain_wide_timeout_applies_to_every_request(sims: Dict[str, Simulator]) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain(timeout=0.3)
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.generate(PROMPT)
    assert caught.value.deadline_exceeded
    assert openai.snapshot()["failures_in_window"] == 1


def test_attempt_timeout_falls_through_to_the_next_provider(sims: Dict[str, Simulator]) -> None:
    sims["openai"].fail_next(1, "hang")
    chain, (openai, _, _) = tutorial_chain(attempt_timeout=0.3)
    result = chain.generate(PROMPT)
    assert result.provider_used == "anthropic"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("openai", "failed"),
        ("anthropic", "success"),
    ]
    assert result.attempts[0].error is not None
    assert result.attempts[0].error.kind == "timeout"
    assert openai.snapshot()["failures_in_window"] == 1


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_timeouts_must_be_positive_finite_seconds(sims: Dict[str, Simulator], bad: float) -> None:
    chain, _ = tutorial_chain()
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        chain.generate(PROMPT, timeout=bad)
