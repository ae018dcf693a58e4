//! Whether a chain would admit a call now, and when it next might: the basis of its tower
//! `poll_ready` and of readiness checks.

use std::time::Duration;

use crate::{CircuitBreaker, FallbackChain};

impl FallbackChain {
    /// True when at least one provider's breaker would admit a call now. When false, a request
    /// is refused at once (every provider `CircuitOpen`) without a network call.
    pub fn would_admit(&self) -> bool {
        self.breakers().any(CircuitBreaker::admits)
    }

    /// How long until the nearest open breaker turns half-open; `None` when no breaker is
    /// counting down (each one is closed or half-open, with its probe slots taken or not).
    pub fn next_recovery_in(&self) -> Option<Duration> {
        self.breakers()
            .filter_map(|b| b.snapshot().until_half_open)
            .min()
    }
}
