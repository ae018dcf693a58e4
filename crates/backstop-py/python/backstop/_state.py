"""Breaker states."""

from __future__ import annotations

import enum


class BreakerState(str, enum.Enum):
    """A breaker's state. A ``str`` enum, so ``breaker.state == "open"`` also works."""

    CLOSED = "closed"
    """Calls flow; failures are counted."""
    OPEN = "open"
    """Calls are refused without reaching the provider."""
    HALF_OPEN = "half_open"
    """A limited number of probe calls test whether the provider recovered."""

    def __str__(self) -> str:
        return self.value
