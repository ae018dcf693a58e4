"""backstop: LLM fallback chains with per-provider circuit breakers, bounded retries, real
deadlines and streaming failover, on a Rust core.

The modules mirror the tutorial's: ``backstop.LLMConfig``, ``backstop.llms.openai.OpenAILLM``,
``backstop.llms.anthropic.AnthropicLLM``, ``backstop.llms.groq.GroqLLM`` and
``backstop.resilience`` (``CircuitBreaker``, ``fallback_chain``, ``weighted_fallback_chain``,
``AllProvidersFailedError``).
"""

from backstop._errors import (
    AllProvidersFailedError,
    BackstopError,
    ChainConfigError,
    ProviderError,
    StreamError,
)
from backstop._native import LLMConfig, __version__
from backstop._state import BreakerState
from backstop.resilience import (
    Attempt,
    Chunk,
    CircuitBreaker,
    FallbackChain,
    FallbackResult,
    FallbackStream,
    Usage,
    fallback_chain,
    weighted_fallback_chain,
)

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
    "LLMConfig",
    "ProviderError",
    "StreamError",
    "Usage",
    "__version__",
    "fallback_chain",
    "weighted_fallback_chain",
]
