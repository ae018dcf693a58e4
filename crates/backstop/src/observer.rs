//! A hook for metrics and audit layers: breaker transitions, attempts and finished requests.

use std::time::Duration;

use crate::{Attempt, BreakerState};

/// A breaker moved from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
}

/// How a request through a chain ended, for observers.
#[derive(Debug, Clone, Copy)]
pub struct RequestSummary<'a> {
    /// The chain's name.
    pub chain: &'a str,
    /// The provider that answered; `None` when all failed.
    pub provider_used: Option<&'a str>,
    /// Every attempt made.
    pub attempts: &'a [Attempt],
    /// True when the answer came from a provider other than the first in the request's order.
    pub fell_back: bool,
    /// True for streamed requests (reported once the stream is committed or has failed).
    pub streamed: bool,
    /// Time from the start of the request to the answer (streams: to the first content chunk).
    pub latency: Duration,
}

/// Receives events. Every method has an empty default, so implement only what you need.
/// Methods are called on the request path: keep them cheap and never block.
pub trait Observer: Send + Sync {
    /// A breaker changed state (register with [`crate::CircuitBreaker::observe`]).
    fn on_breaker_change(&self, _change: &StateChange<'_>) {}
    /// One attempt finished (or was skipped) in chain `chain`.
    fn on_attempt(&self, _chain: &str, _attempt: &Attempt) {}
    /// A streamed answer produced its first content chunk after `ttft`.
    fn on_first_chunk(&self, _chain: &str, _provider: &str, _ttft: Duration) {}
    /// A committed stream from `provider` failed after its first chunk.
    fn on_stream_error(&self, _chain: &str, _provider: &str, _error: &crate::ProviderError) {}
    /// A request finished: answered or all providers failed.
    fn on_request(&self, _summary: &RequestSummary<'_>) {}
}
