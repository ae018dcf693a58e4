"""The tutorial's weighted variation: ``(llm, breaker, 0.7)`` triples."""

from __future__ import annotations

from collections import Counter
from typing import Dict

import pytest

import backstop
from backstop.llms.anthropic import AnthropicLLM
from backstop.llms.openai import OpenAILLM
from backstop.resilience import CircuitBreaker, weighted_fallback_chain
from backstop.testing import ScriptedLLM
from simulators import Simulator

DRAWS = 10_000


def test_first_choice_share_is_within_two_points_of_its_weight_over_10000_draws() -> None:
    # In-process providers: 10,000 draws in well under a second. The share's standard
    # deviation is sqrt(0.7 * 0.3 / 10000) = 0.46 points, so ±2 points is 4.4 sigma.
    chain = weighted_fallback_chain(
        providers=[
            (ScriptedLLM("primary"), CircuitBreaker("openai"), 0.7),
            (ScriptedLLM("secondary"), CircuitBreaker("anthropic"), 0.3),
        ]
    )
    counts = Counter(chain.generate("hi").provider_used for _ in range(DRAWS))
    assert set(counts) == {"openai", "anthropic"}
    assert abs(counts["openai"] / DRAWS - 0.7) <= 0.02


def test_tutorial_weighted_chain_over_http_uses_both_and_skips_an_open_breaker(
    sims: Dict[str, Simulator],
) -> None:
    openai_breaker = CircuitBreaker("openai-gpt4o", failure_threshold=3, recovery_timeout=60)
    anthropic_breaker = CircuitBreaker("anthropic-haiku", failure_threshold=3)
    chain = weighted_fallback_chain(
        providers=[
            (OpenAILLM(model="gpt-4o"), openai_breaker, 0.7),
            (AnthropicLLM(model="claude-haiku-3-5"), anthropic_breaker, 0.3),
        ]
    )
    used = Counter(chain.generate("hi").provider_used for _ in range(200))
    assert set(used) == {"openai-gpt4o", "anthropic-haiku"}
    assert sims["openai"].requests() == used["openai-gpt4o"]
    openai_breaker.trip()
    assert {chain.generate("hi").provider_used for _ in range(20)} == {"anthropic-haiku"}
    assert sims["openai"].requests() == used["openai-gpt4o"]


def test_weighted_chain_refuses_a_pair_and_says_how_to_write_the_weight() -> None:
    with pytest.raises(TypeError, match=r"write \(llm, breaker, 0\.7\)"):
        weighted_fallback_chain(providers=[(ScriptedLLM("a"), CircuitBreaker("a"))])  # type: ignore[list-item]


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf")])
def test_weights_must_be_finite_and_positive(weight: float) -> None:
    with pytest.raises(ValueError, match="weights must be finite and greater than 0"):
        weighted_fallback_chain(providers=[(ScriptedLLM("a"), CircuitBreaker("a"), weight)])


def test_weight_that_is_not_a_number_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"providers\[0\]\[2\] \(the weight\) must be a number"):
        weighted_fallback_chain(providers=[(ScriptedLLM("a"), CircuitBreaker("a"), "heavy")])  # type: ignore[list-item]


def test_priority_chain_refuses_weights() -> None:
    with pytest.raises(TypeError, match="weights are for weighted_fallback_chain"):
        backstop.fallback_chain(providers=[(ScriptedLLM("a"), CircuitBreaker("a"), 0.7)])  # type: ignore[list-item]
