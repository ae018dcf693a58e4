"""The exception classes. Every error backstop raises is a ``BackstopError`` whose ``kind``
says what went wrong, with the library's names: ``"timeout"``, ``"connect"``,
``"rate_limited"``, ``"quota_exhausted"``, ``"overloaded"``, ``"server"``, ``"auth"``,
``"invalid_request"``, ``"context_length_exceeded"``, ``"content_filtered"``, ``"protocol"``,
``"circuit_open"``, ``"local_resource"``, ``"cancelled"``; ``"config"`` for a chain that cannot
be built."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

if TYPE_CHECKING:
    from backstop._native import Attempt


class BackstopError(Exception):
    """Base class of backstop's errors."""

    kind: Optional[str]
    message: str

    def __init__(self, message: str, *, kind: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class ProviderError(BackstopError):
    """One provider's error: ``provider`` (its breaker's name), ``kind``, HTTP ``status`` if
    any, whether it was ``attempted`` (``False``: skipped, e.g. its breaker was open, or never
    reached) and, for ``rate_limited``, the provider's ``retry_after`` hint in seconds."""

    kind: str
    provider: Optional[str]
    status: Optional[int]
    attempted: bool
    retry_after: Optional[float]

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        provider: Optional[str] = None,
        status: Optional[int] = None,
        attempted: bool = True,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message, kind=kind)
        self.provider = provider
        self.status = status
        self.attempted = attempted
        self.retry_after = retry_after

    def __str__(self) -> str:
        who = f"{self.provider}: " if self.provider else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{who}{self.kind}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, kind={self.kind!r}, "
            f"status={self.status!r}, message={self.message!r})"
        )


class StreamError(ProviderError):
    """A stream broke after its first chunk reached you (the commit point): the provider that
    was streaming failed; what you received so far is all there is."""


class AllProvidersFailedError(BackstopError):
    """Every provider of the chain failed or was skipped. ``errors`` holds one
    ``ProviderError`` per provider of the chain (tried or skipped first, in the request's
    order, then those never reached); ``attempts`` every call made; ``deadline_exceeded`` is
    true when the request's timeout ran out; ``retry_after`` is how long until some provider
    will take a call again (``None``: one would now). ``kind`` sums it up (``"timeout"`` for
    the deadline, the common kind, or ``"server"``)."""

    kind: str
    errors: List[ProviderError]
    attempts: List["Attempt"]
    deadline_exceeded: bool
    retry_after: Optional[float]

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        errors: List[ProviderError],
        attempts: List["Attempt"],
        deadline_exceeded: bool = False,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message, kind=kind)
        self.errors = errors
        self.attempts = attempts
        self.deadline_exceeded = deadline_exceeded
        self.retry_after = retry_after


class ChainConfigError(BackstopError, ValueError):
    """A chain that cannot be built (no providers, a bad weight, two breakers with one name)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="config")


# Shown (and pickled) as ``backstop.X``, where users import them from.
for _cls in (BackstopError, ProviderError, StreamError, AllProvidersFailedError, ChainConfigError):
    _cls.__module__ = "backstop"
del _cls
