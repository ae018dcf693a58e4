# Type stubs for the extension module (crates/backstop-py/src). Keep in step with the Rust
# signatures; tests/test_typing.py checks a usage file against them with mypy.

import asyncio
from typing import Any, List, Optional, Sequence, Tuple, TypedDict, Union, final

from backstop._errors import ProviderError
from backstop._state import BreakerState

__version__: str

_Prompt = Union[str, Sequence[Any]]

@final
class LLMConfig:
    def __init__(
        self,
        temperature: Optional[float] = None,
        max_tokens: Optional[int] = None,
        top_p: Optional[float] = None,
        stop: Union[str, Sequence[str], None] = None,
    ) -> None: ...
    @property
    def temperature(self) -> Optional[float]: ...
    @property
    def max_tokens(self) -> Optional[int]: ...
    @property
    def top_p(self) -> Optional[float]: ...
    @property
    def stop(self) -> List[str]: ...

class LLM:
    """Base of the provider classes; chains accept any of them."""

    @property
    def model(self) -> str: ...
    @property
    def base_url(self) -> Optional[str]: ...
    @property
    def provider(self) -> str: ...

@final
class OpenAILLM(LLM):
    def __init__(
        self,
        model: str,
        config: Optional[LLMConfig] = None,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        connect_timeout: Optional[float] = None,
    ) -> None: ...

@final
class AnthropicLLM(LLM):
    def __init__(
        self,
        model: str,
        config: Optional[LLMConfig] = None,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        connect_timeout: Optional[float] = None,
    ) -> None: ...

@final
class GroqLLM(LLM):
    def __init__(
        self,
        model: str,
        config: Optional[LLMConfig] = None,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        connect_timeout: Optional[float] = None,
    ) -> None: ...

@final
class OpenAICompatibleLLM(LLM):
    def __init__(
        self,
        base_url: str,
        model: str,
        config: Optional[LLMConfig] = None,
        *,
        api_key: Optional[str] = None,
        api_key_env: Optional[str] = None,
        name: Optional[str] = None,
        connect_timeout: Optional[float] = None,
    ) -> None: ...

class BreakerSnapshot(TypedDict):
    name: str
    state: str
    mode: str
    failures_in_window: int
    calls_in_window: int
    until_half_open: Optional[float]
    hold_remaining: Optional[float]
    reopens: int

@final
class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: Optional[int] = None,
        window_seconds: Optional[float] = None,
        recovery_timeout: Optional[float] = None,
        *,
        max_recovery_timeout: Optional[float] = None,
        half_open_probes: Optional[int] = None,
        failure_rate: Optional[float] = None,
        minimum_calls: Optional[int] = None,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> BreakerState: ...
    @property
    def failure_threshold(self) -> Optional[int]: ...
    @property
    def failure_rate(self) -> Optional[float]: ...
    @property
    def minimum_calls(self) -> Optional[int]: ...
    @property
    def mode(self) -> str: ...
    @property
    def window_seconds(self) -> float: ...
    @property
    def recovery_timeout(self) -> float: ...
    @property
    def max_recovery_timeout(self) -> float: ...
    @property
    def half_open_probes(self) -> int: ...
    def record_failure(self) -> None: ...
    def _record_failure(self) -> None: ...
    def record_success(self) -> None: ...
    def _record_success(self) -> None: ...
    def trip(self) -> None: ...
    def reset(self) -> None: ...
    def snapshot(self) -> BreakerSnapshot: ...

@final
class Usage:
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> Optional[int]: ...
    @property
    def cache_write_input_tokens(self) -> Optional[int]: ...
    @property
    def reasoning_tokens(self) -> Optional[int]: ...

@final
class Attempt:
    @property
    def provider(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def error(self) -> Optional[ProviderError]: ...
    @property
    def latency(self) -> float: ...

@final
class FallbackResult:
    @property
    def text(self) -> str: ...
    @property
    def provider_used(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def usage(self) -> Optional[Usage]: ...
    @property
    def finish_reason(self) -> Optional[str]: ...
    @property
    def refusal(self) -> Optional[str]: ...
    @property
    def attempts(self) -> List[Attempt]: ...

@final
class Chunk:
    @property
    def text(self) -> str: ...
    @property
    def finish_reason(self) -> Optional[str]: ...
    @property
    def usage(self) -> Optional[Usage]: ...
    @property
    def model(self) -> Optional[str]: ...
    @property
    def refusal(self) -> Optional[str]: ...

@final
class Call:
    def cancel(self) -> None: ...

@final
class Inbox:
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...

@final
class NativeStream:
    def start_next(self, inbox: Inbox, future: asyncio.Future[Any]) -> Call: ...
    def close(self) -> None: ...
    @property
    def provider_used(self) -> Optional[str]: ...
    @property
    def model(self) -> Optional[str]: ...
    @property
    def attempts(self) -> List[Attempt]: ...

@final
class NativeChain:
    def start_generate(
        self,
        inbox: Inbox,
        future: asyncio.Future[Any],
        prompt: _Prompt,
        timeout: Optional[float] = None,
    ) -> Call: ...
    def generate(self, prompt: _Prompt, timeout: Optional[float] = None) -> FallbackResult: ...
    def open_stream(self, prompt: _Prompt, timeout: Optional[float] = None) -> NativeStream: ...
    @property
    def name(self) -> str: ...
    @property
    def weighted(self) -> bool: ...
    @property
    def cancel_counts_as_timeout(self) -> bool: ...
    @property
    def providers(self) -> Tuple[Tuple[Any, ...], ...]: ...

def build_chain(
    providers: Any,
    retries_per_provider: int,
    weighted: bool,
    *,
    timeout: Optional[float] = None,
    attempt_timeout: Optional[float] = None,
    name: Optional[str] = None,
    cancel_counts_as_timeout: bool = True,
) -> NativeChain: ...

@final
class Step: ...

@final
class ScriptedLLM(LLM):
    def __init__(self, name: str, steps: Optional[Sequence[Step]] = None) -> None: ...
    def push(self, steps: Sequence[Step]) -> None: ...
    @property
    def calls(self) -> int: ...

def reply(text: str) -> Step: ...
def fail(kind: str) -> Step: ...
def delay(seconds: float, then: Step) -> Step: ...
def hang() -> Step: ...
def chunks(pieces: Sequence[str]) -> Step: ...
def chunks_then_fail(pieces: Sequence[str], kind: str) -> Step: ...
