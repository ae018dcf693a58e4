"""Type-checked with mypy --strict against the package's stubs (tests/test_typing.py); not
run. Uses the API as the tutorial does."""

from __future__ import annotations

import asyncio
from typing import List, Optional

from backstop import BackstopError, BreakerState, LLMConfig
from backstop.llms.anthropic import AnthropicLLM
from backstop.llms.groq import GroqLLM
from backstop.llms.openai import OpenAICompatibleLLM, OpenAILLM
from backstop.resilience import (
    AllProvidersFailedError,
    CircuitBreaker,
    FallbackChain,
    FallbackResult,
    ProviderError,
    fallback_chain,
    weighted_fallback_chain,
)
from backstop.testing import ScriptedLLM, delay, fail, reply

config = LLMConfig(temperature=0.2, max_tokens=512)
openai_breaker = CircuitBreaker("openai", failure_threshold=3, window_seconds=60, recovery_timeout=30)
chain: FallbackChain = fallback_chain(
    providers=[
        (OpenAILLM(model="gpt-4o-mini", config=config), openai_breaker),
        (AnthropicLLM(model="claude-haiku-3-5", config=config), CircuitBreaker("anthropic")),
        (GroqLLM(model="llama-3.1-8b-instant"), CircuitBreaker("groq", failure_rate=0.5)),
    ],
    retries_per_provider=1,
)
weighted = weighted_fallback_chain(
    providers=[
        (OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "local"), CircuitBreaker("a"), 0.7),
        (ScriptedLLM("b", [fail("server"), delay(0.1, reply("hi"))]), CircuitBreaker("b"), 0.3),
    ]
)


async def main() -> Optional[str]:
    for _ in range(openai_breaker.failure_threshold or 0):
        openai_breaker._record_failure()
    state: BreakerState = openai_breaker.state
    print(state == BreakerState.OPEN)
    try:
        result: FallbackResult = await chain.agenerate("hi", timeout=5.0)
        result = await asyncio.wait_for(chain.agenerate("hi"), timeout=5.0)
        if result.usage is not None:
            total: int = result.usage.total_tokens
            print(total)
        for attempt in result.attempts:
            latency: float = attempt.latency
            print(attempt.provider, attempt.outcome, latency)
        async for chunk in chain.astream("Tell me about neural networks"):
            print(chunk.text, end="", flush=True)
        return result.provider_used
    except AllProvidersFailedError as e:
        errors: List[ProviderError] = e.errors
        kinds: List[str] = [x.kind for x in errors]
        print(kinds, e.deadline_exceeded, e.retry_after)
        return None
    except BackstopError as e:
        print(e.kind)
        return None


sync_result: FallbackResult = weighted.generate([{"role": "user", "content": "hi"}])
asyncio.run(main())
