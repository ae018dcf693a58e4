//! The library's observer hooks, counted into a chain's pre-resolved handles.

use std::time::Duration;

use backstop::{Attempt, AttemptOutcome, Observer, ProviderError, RequestSummary, StateChange};
use prometheus_client::metrics::counter::Counter;

use super::{
    ATTEMPT_OUTCOMES, BREAKER_STATES, ChainMetrics, breaker_state_index, error_kind_index,
};

impl Observer for ChainMetrics {
    fn on_attempt(&self, _chain: &str, attempt: &Attempt) {
        let Some(p) = self.provider(&attempt.provider) else {
            return;
        };
        let i = ATTEMPT_OUTCOMES
            .iter()
            .position(|o| *o == attempt.outcome)
            .unwrap_or(1);
        p.attempts[i].inc();
        if let Some(e) = &attempt.error {
            p.errors[error_kind_index(e.kind)].inc();
        }
        if attempt.outcome != AttemptOutcome::Skipped {
            p.latency.observe_duration(attempt.latency);
        }
    }

    fn on_first_chunk(&self, _chain: &str, provider: &str, ttft: Duration) {
        if let Some(p) = self.provider(provider) {
            p.ttft.observe_duration(ttft);
        }
    }

    fn on_hold(&self, _chain: &str, provider: &str, _length: Duration) {
        if let Some(p) = self.provider(provider) {
            p.holds.inc();
        }
    }

    fn on_retry(&self, _chain: &str, _provider: &str, granted: bool) {
        self.retries[usize::from(!granted)].inc();
    }

    fn on_stream_resume(&self, _chain: &str, _from: &str, _to: &str, _offset: usize) {
        self.resumes.inc();
    }

    fn on_hedge(&self, _chain: &str, primary: &str, _hedge: &str, winner: Option<&str>) {
        let i = match winner {
            Some(w) if w == primary => 0,
            Some(_) => 1,
            None => 2,
        };
        self.hedges[i].inc();
    }

    fn on_skipped_events(&self, _chain: &str, provider: &str, count: u32) {
        if let Some(p) = self.provider(provider) {
            p.skipped_events.inc_by(u64::from(count));
        }
    }

    fn on_stream_error(&self, _chain: &str, _provider: &str, _error: &ProviderError) {
        self.stream_errors.inc();
    }

    fn on_request(&self, s: &RequestSummary<'_>) {
        let i = match (s.provider_used, s.fell_back) {
            (Some(_), false) => 0,
            (Some(_), true) => 1,
            (None, _) => 2,
        };
        self.requests[i].inc();
        if i == 1 {
            self.fallbacks.inc();
        }
        if i != 0 {
            self.failovers.record(s.chain, s.provider_used, s.attempts);
        }
    }
}

/// Counts one breaker's transitions by the state entered (registered on the breaker itself).
#[derive(Debug)]
pub struct BreakerWatch {
    to: [Counter; BREAKER_STATES.len()],
}

impl BreakerWatch {
    pub(super) fn new(to: [Counter; BREAKER_STATES.len()]) -> Self {
        Self { to }
    }
}

impl Observer for BreakerWatch {
    fn on_breaker_change(&self, change: &StateChange<'_>) {
        self.to[breaker_state_index(change.to)].inc();
    }
}
