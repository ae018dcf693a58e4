//! A hook for metrics and audit layers: breaker transitions, attempts and finished requests.

use std::time::Duration;

use crate::{Attempt, BreakerState};

/// A breaker moved from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
    /// The breaker's generation after this change; it grows with every transition, so a
    /// consumer that keeps the highest seen can ignore an event delivered late under concurrency.
    pub generation: u64,
    /// For a change to Open: how long the breaker stays open (its open period).
    pub open_for: Option<Duration>,
    /// True when the change was applied from outside ([`crate::CircuitBreaker::open_for`],
    /// [`crate::CircuitBreaker::close`], [`crate::CircuitBreaker::reset`]), not decided by
    /// the breaker's own calls: a layer sharing openings across replicas does not re-publish it.
    pub applied: bool,
}

/// How a request through a chain ended, for observers.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
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
    /// A 429 put `provider` on a rate-limit hold for `length`.
    fn on_hold(&self, _chain: &str, _provider: &str, _length: Duration) {}
    /// The chain wanted to retry `provider`; `granted` is false when the retry budget refused
    /// and the chain moved on instead.
    fn on_retry(&self, _chain: &str, _provider: &str, _granted: bool) {}
    /// `primary` had not answered by the hedge delay, so `hedge` was started beside it; `winner`
    /// names the one that answered first (`None`: neither did).
    fn on_hedge(&self, _chain: &str, _primary: &str, _hedge: &str, _winner: Option<&str>) {}
    /// A committed stream from `from` broke and `to` continues it after `offset` bytes of text.
    fn on_stream_resume(&self, _chain: &str, _from: &str, _to: &str, _offset: usize) {}
    /// A stream from `provider` skipped `count` unreadable events and went on.
    fn on_skipped_events(&self, _chain: &str, _provider: &str, _count: u32) {}
}
