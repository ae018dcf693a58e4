"""Fallback chains and circuit breakers: the tutorial's ``synapsekit.resilience``, on the
Rust core."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple, Union

from backstop import _native
from backstop._chain import FallbackChain, FallbackStream, Prompt
from backstop._errors import (
    AllProvidersFailedError,
    BackstopError,
    ChainConfigError,
    ProviderError,
    StreamError,
)
from backstop._native import Attempt, Chunk, CircuitBreaker, FallbackResult, Usage
from backstop._state import BreakerState
from backstop.llms import LLM

__all__ = [
    "AllProvidersFailedError",
    "Attempt",
    "BackstopError",
    "BreakerState",
    "ChainConfigError",
    "Chunk",
    "CircuitBreaker",
    "FallbackChain",
    "FallbackResult",
    "FallbackStream",
    "Prompt",
    "ProviderError",
    "StreamError",
    "Usage",
    "fallback_chain",
    "weighted_fallback_chain",
]


def fallback_chain(
    providers: Iterable[Tuple[LLM, CircuitBreaker]],
    retries_per_provider: int = 0,
    *,
    timeout: Optional[float] = None,
    attempt_timeout: Optional[float] = None,
    name: Optional[str] = None,
    cancel_counts_as_timeout: bool = True,
) -> FallbackChain:
    """A chain that tries ``providers`` — ``(llm, breaker)`` pairs — in the order given.

    A provider whose breaker is open is skipped without a network call. Retryable errors
    (connection errors, 5xx, overload, malformed answers) are retried ``retries_per_provider``
    times on the same provider before the next one is tried; timeouts, auth errors and bad
    requests are not. ``timeout`` is every request's overall deadline and ``attempt_timeout``
    bounds one call (seconds). With ``cancel_counts_as_timeout`` (the default, as the tutorial
    promises), cancelling an in-flight call — ``asyncio.wait_for`` timing out, or any other
    cancellation — records a timeout on the provider being called; ``False`` makes
    cancellation neutral for the breaker.
    """
    return FallbackChain(
        _native.build_chain(
            providers,
            retries_per_provider,
            False,
            timeout=timeout,
            attempt_timeout=attempt_timeout,
            name=name,
            cancel_counts_as_timeout=cancel_counts_as_timeout,
        )
    )


def weighted_fallback_chain(
    providers: Iterable[Tuple[LLM, CircuitBreaker, Union[float, int]]],
    retries_per_provider: int = 0,
    *,
    timeout: Optional[float] = None,
    attempt_timeout: Optional[float] = None,
    name: Optional[str] = None,
    cancel_counts_as_timeout: bool = True,
) -> FallbackChain:
    """A chain that draws each request's order by weight: ``(llm, breaker, weight)`` triples.

    The tutorial writes ``(primary_llm, openai_breaker, weight=0.7)``, which is not valid
    Python; write ``(primary_llm, openai_breaker, 0.7)``. The first provider is drawn with
    probability proportional to its weight among those whose breakers admit a call, the rest
    follow as fallbacks (sampling without replacement). Weights must be finite and above 0.
    Other arguments as for ``fallback_chain``.
    """
    return FallbackChain(
        _native.build_chain(
            providers,
            retries_per_provider,
            True,
            timeout=timeout,
            attempt_timeout=attempt_timeout,
            name=name,
            cancel_counts_as_timeout=cancel_counts_as_timeout,
        )
    )
