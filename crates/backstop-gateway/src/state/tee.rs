//! One observer slot, two observers: a chain's metrics and the fleet's sharing.

use std::sync::Arc;
use std::time::Duration;

use backstop::{Attempt, Observer, ProviderError, RequestSummary, StateChange};

/// Forwards every event to both observers, in order.
pub(crate) struct Tee(pub(crate) Arc<dyn Observer>, pub(crate) Arc<dyn Observer>);

impl Observer for Tee {
    fn on_breaker_change(&self, c: &StateChange<'_>) {
        self.0.on_breaker_change(c);
        self.1.on_breaker_change(c);
    }
    fn on_attempt(&self, chain: &str, a: &Attempt) {
        self.0.on_attempt(chain, a);
        self.1.on_attempt(chain, a);
    }
    fn on_first_chunk(&self, chain: &str, provider: &str, ttft: Duration) {
        self.0.on_first_chunk(chain, provider, ttft);
        self.1.on_first_chunk(chain, provider, ttft);
    }
    fn on_stream_error(&self, chain: &str, provider: &str, e: &ProviderError) {
        self.0.on_stream_error(chain, provider, e);
        self.1.on_stream_error(chain, provider, e);
    }
    fn on_request(&self, s: &RequestSummary<'_>) {
        self.0.on_request(s);
        self.1.on_request(s);
    }
    fn on_hold(&self, chain: &str, provider: &str, length: Duration) {
        self.0.on_hold(chain, provider, length);
        self.1.on_hold(chain, provider, length);
    }
    fn on_retry(&self, chain: &str, provider: &str, granted: bool) {
        self.0.on_retry(chain, provider, granted);
        self.1.on_retry(chain, provider, granted);
    }
    fn on_hedge(&self, chain: &str, primary: &str, hedge: &str, winner: Option<&str>) {
        self.0.on_hedge(chain, primary, hedge, winner);
        self.1.on_hedge(chain, primary, hedge, winner);
    }
    fn on_stream_resume(&self, chain: &str, from: &str, to: &str, offset: usize) {
        self.0.on_stream_resume(chain, from, to, offset);
        self.1.on_stream_resume(chain, from, to, offset);
    }
    fn on_skipped_events(&self, chain: &str, provider: &str, count: u32) {
        self.0.on_skipped_events(chain, provider, count);
        self.1.on_skipped_events(chain, provider, count);
    }
}
