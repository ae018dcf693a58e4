"""Thousands of concurrent calls from one event loop, and the GIL released while waiting."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Dict, List, Union

import pytest

from backstop import AllProvidersFailedError, FallbackResult
from chains import tutorial_chain
from simulators import Simulator, provider_env

CALLS = 1000


def test_thousand_concurrent_agenerate_calls_with_faults_each_answer_or_raise_all_failed(
    sims: Dict[str, Simulator],
) -> None:
    sims["openai"].fail_randomly(0.3, {"status": 503})
    sims["anthropic"].fail_randomly(0.3, {"status": 500})
    sims["groq"].fail_randomly(0.3, {"rate_limited": {"retry_after_secs": 1}})
    # The library's default breakers (failure-rate rule): they stay closed under 30% failures.
    from backstop.llms.anthropic import AnthropicLLM
    from backstop.llms.groq import GroqLLM
    from backstop.llms.openai import OpenAILLM
    from backstop.resilience import CircuitBreaker, fallback_chain

    chain = fallback_chain(
        providers=[
            (OpenAILLM(model="gpt-4o-mini"), CircuitBreaker("openai")),
            (AnthropicLLM(model="claude-haiku-3-5"), CircuitBreaker("anthropic")),
            (GroqLLM(model="llama-3.1-8b-instant"), CircuitBreaker("groq")),
        ],
        retries_per_provider=1,
    )

    async def go() -> List[Union[FallbackResult, BaseException]]:
        calls = [chain.agenerate(f"question {i}") for i in range(CALLS)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(go())
    assert len(outcomes) == CALLS
    answered = [o for o in outcomes if isinstance(o, FallbackResult)]
    failed = [o for o in outcomes if isinstance(o, AllProvidersFailedError)]
    others = [o for o in outcomes if not isinstance(o, (FallbackResult, AllProvidersFailedError))]
    assert others == []
    # With three providers failing 30% each (and retries), nearly every call is answered.
    assert len(answered) >= CALLS * 0.95
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, FallbackResult):
            expected = f"Simulated answer from {outcome.provider_used} to: question {i}."
            assert outcome.text.startswith(expected)
    for f in failed:
        assert len(f.errors) == 3
    assert sum(s.requests() for s in sims.values()) >= CALLS
    assert {o.provider_used for o in answered} == {"openai", "anthropic", "groq"}


def test_sync_generate_releases_the_gil_while_waiting(
    sim_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private set of simulators: this test stops the openai one to end the call.
    import simulators

    own = simulators.start_all(sim_binary)
    try:
        for var, value in provider_env(own).items():
            monkeypatch.setenv(var, value)
        own["openai"].fail_next(1, "hang")
        # The deadline only bounds the test if generate() held the GIL (it would then fail below).
        chain, _ = tutorial_chain(timeout=10)
        outcome: List[object] = []
        worker = threading.Thread(target=lambda: outcome.append(chain.generate("hi")))
        worker.start()
        # This thread runs Python (HTTP polling) while the worker is inside generate(): the
        # GIL is released. Had generate() held it, the worker's call would never have been
        # sent before this loop gave up, or this thread would not run until it returned.
        for _ in range(5000):
            if own["openai"].requests() == 1:
                break
        assert own["openai"].requests() == 1
        assert worker.is_alive()
        own["openai"].stop()  # the hanging connection is cut: the chain falls through
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert [getattr(o, "provider_used", None) for o in outcome] == ["anthropic"]
    finally:
        simulators.stop_all(own)
