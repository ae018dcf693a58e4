"""``FallbackChain`` and ``FallbackStream``: the async methods around the native chain.

Cancellation. The native call behind ``agenerate`` (and behind each ``anext`` of a stream) is
stopped *synchronously* when the awaiting coroutine is interrupted, before the interruption
propagates: so when ``asyncio.wait_for(chain.agenerate(p), timeout=5.0)`` raises
``TimeoutError``, the provider that was being called already has the failure on its breaker
(with ``cancel_counts_as_timeout=True``, the default). Python cannot tell a ``wait_for``
timeout from any other cancellation, so every cancellation of an in-flight call counts as a
timeout on the provider being called; ``agenerate(prompt, timeout=...)`` is the explicit,
precise form (see ``FallbackChain.agenerate``).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from backstop import _native

if TYPE_CHECKING:
    from types import TracebackType

    from backstop._native import Attempt, Chunk, CircuitBreaker, FallbackResult

Prompt = Union[str, Sequence[Any]]
"""A prompt: a string (one user message) or a list of ``{"role": ..., "content": ...}`` dicts
or ``(role, content)`` tuples, roles ``system``, ``user`` and ``assistant``."""


# Each running loop's inbox: finished calls queue there, and the loop drains them when its
# socket turns readable (runtime threads never take the GIL). Weak keys: an inbox goes with
# its loop.
_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _native.Inbox] = (
    weakref.WeakKeyDictionary()
)


def _inbox(loop: asyncio.AbstractEventLoop) -> _native.Inbox:
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _native.Inbox()
        try:
            loop.add_reader(inbox.fileno(), inbox.drain)
        except NotImplementedError as e:
            raise RuntimeError(
                f"backstop needs an event loop that supports add_reader (asyncio's default "
                f"selector loop, uvloop); {type(loop).__name__} does not"
            ) from e
        _inboxes[loop] = inbox
    return inbox


class FallbackChain:
    """Providers tried in priority (or weighted) order, each behind its own circuit breaker.

    Build one with ``fallback_chain`` or ``weighted_fallback_chain``. Cheap to share: every
    method may be called concurrently, from any number of tasks and threads.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeChain) -> None:
        self._native = native

    async def agenerate(self, prompt: Prompt, *, timeout: Optional[float] = None) -> FallbackResult:
        """The first answer from the chain, as a ``FallbackResult``.

        ``timeout`` (seconds) is the request's overall deadline, retries and fallbacks
        included: when it fires mid-call, the provider being called records a timeout on its
        breaker and ``AllProvidersFailedError`` is raised with ``deadline_exceeded=True``.
        Raises ``AllProvidersFailedError`` when no provider answered.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FallbackResult] = loop.create_future()
        call = self._native.start_generate(_inbox(loop), future, prompt, timeout)
        try:
            return await future
        finally:
            # Interrupted (wait_for, task.cancel()): stop the call now, so its breaker has the
            # timeout before the interruption reaches the caller. A no-op once it finished.
            call.cancel()

    def generate(self, prompt: Prompt, *, timeout: Optional[float] = None) -> FallbackResult:
        """The blocking form of ``agenerate``, for code without an event loop. Releases the
        GIL while waiting; Ctrl-C interrupts it (and counts as a cancellation)."""
        return self._native.generate(prompt, timeout)

    def astream(self, prompt: Prompt, *, timeout: Optional[float] = None) -> FallbackStream:
        """Streams the answer: ``async for chunk in chain.astream(p): chunk.text``.

        Until the first content chunk a failure falls through to the next provider, invisibly;
        after it, a failure raises ``StreamError`` from the iteration (never a silent
        truncation). If nothing answers, the first iteration raises
        ``AllProvidersFailedError``.
        """
        return FallbackStream(self._native.open_stream(prompt, timeout))

    @property
    def name(self) -> str:
        """The chain's name (``"chain"`` unless given)."""
        return self._native.name

    @property
    def weighted(self) -> bool:
        """Whether each request draws its order by weight."""
        return self._native.weighted

    @property
    def providers(self) -> List[Tuple[Any, ...]]:
        """The ``(llm, breaker)`` (or ``(llm, breaker, weight)``) tuples, in order."""
        return list(self._native.providers)

    @property
    def breakers(self) -> List[CircuitBreaker]:
        """Each provider's breaker, in order."""
        return [p[1] for p in self._native.providers]

    def __repr__(self) -> str:
        names = ", ".join(repr(b.name) for b in self.breakers)
        kind = "weighted" if self.weighted else "priority"
        return f"FallbackChain({self.name!r}, {kind}, providers=[{names}])"


class FallbackStream:
    """The chunks of one streamed answer (an async iterator of ``Chunk``).

    ``provider_used`` says which provider is streaming once the first chunk arrived. Use it as
    ``async with chain.astream(p) as stream:`` to close the provider's connection as soon as you
    stop reading; otherwise it is closed when the stream is garbage-collected.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeStream) -> None:
        self._native = native

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> Chunk:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Optional[Chunk]] = loop.create_future()
        call = self._native.start_next(_inbox(loop), future)
        try:
            chunk = await future
        finally:
            call.cancel()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Stops the stream and closes the provider's connection."""
        self._native.close()

    async def __aenter__(self) -> FallbackStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._native.close()

    @property
    def provider_used(self) -> Optional[str]:
        """The breaker name of the provider streaming (``None`` before the first chunk)."""
        return self._native.provider_used

    @property
    def model(self) -> Optional[str]:
        """The model that answered, when the provider said."""
        return self._native.model

    @property
    def attempts(self) -> List[Attempt]:
        """The attempts up to the first chunk (fallbacks included)."""
        return self._native.attempts
