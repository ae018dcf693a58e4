"""The tutorial's chain over the simulators (create inside a test: providers read the
environment the ``sims`` fixture sets)."""

from __future__ import annotations

from typing import Tuple

from backstop import LLMConfig
from backstop.llms.anthropic import AnthropicLLM
from backstop.llms.groq import GroqLLM
from backstop.llms.openai import OpenAILLM
from backstop.resilience import CircuitBreaker, FallbackChain, fallback_chain

Breakers = Tuple[CircuitBreaker, CircuitBreaker, CircuitBreaker]


def tutorial_chain(
    retries_per_provider: int = 0, failure_threshold: int = 3, **kwargs: object
) -> Tuple[FallbackChain, Breakers]:
    config = LLMConfig(temperature=0.2, max_tokens=512)
    breakers = (
        CircuitBreaker("openai", failure_threshold=failure_threshold, recovery_timeout=30),
        CircuitBreaker("anthropic", failure_threshold=failure_threshold, recovery_timeout=30),
        CircuitBreaker("groq", failure_threshold=5, recovery_timeout=15),
    )
    chain = fallback_chain(
        providers=[
            (OpenAILLM(model="gpt-4o-mini", config=config), breakers[0]),
            (AnthropicLLM(model="claude-haiku-3-5", config=config), breakers[1]),
            (GroqLLM(model="llama-3.1-8b-instant", config=config), breakers[2]),
        ],
        retries_per_provider=retries_per_provider,
        **kwargs,  # type: ignore[arg-type]
    )
    return chain, breakers
