//! The last failovers, for the status page: a small ring written only when a request fell
//! back or failed (a lock on that path, never on a plain success).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use backstop::{AttemptOutcome, RequestSummary};
use serde::Serialize;

/// Failovers kept.
pub const KEPT: usize = 20;

/// Why a provider was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    /// The provider.
    pub provider: String,
    /// Its error kind (`timeout`, `circuit_open`, ...).
    pub kind: &'static str,
    /// The error's message (the provider's, truncated; never a secret).
    pub message: String,
}

/// One request that did not get its answer from the first provider in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failover {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// The chain.
    pub chain: String,
    /// The provider that answered; `None` when every provider failed.
    pub to: Option<String>,
    /// The providers tried or skipped before, and why.
    pub reasons: Vec<PassedOver>,
}

/// The ring, newest last.
#[derive(Debug, Default)]
pub struct FailoverLog(Mutex<VecDeque<Failover>>);

impl FailoverLog {
    /// Records `s` if it fell back or failed.
    pub fn record(&self, s: &RequestSummary<'_>) {
        if s.provider_used.is_some() && !s.fell_back {
            return;
        }
        let reasons = s
            .attempts
            .iter()
            .filter(|a| matches!(a.outcome, AttemptOutcome::Failed | AttemptOutcome::Skipped))
            .filter_map(|a| {
                a.error.as_ref().map(|e| PassedOver {
                    provider: a.provider.clone(),
                    kind: e.kind.as_str(),
                    message: e.message.clone(),
                })
            })
            .collect();
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let f = Failover {
            at_ms,
            chain: s.chain.to_owned(),
            to: s.provider_used.map(str::to_owned),
            reasons,
        };
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(f);
    }

    /// The failovers kept, newest first.
    pub fn recent(&self) -> Vec<Failover> {
        let ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use backstop::{Attempt, ErrorKind, ProviderError};

    use super::*;

    fn summary<'a>(
        attempts: &'a [Attempt],
        used: Option<&'a str>,
        fell_back: bool,
    ) -> RequestSummary<'a> {
        RequestSummary {
            chain: "c",
            provider_used: used,
            attempts,
            fell_back,
            streamed: false,
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn only_fallbacks_and_failures_are_kept_newest_first_and_bounded() {
        let log = FailoverLog::default();
        let ok = [Attempt::new(
            "a",
            AttemptOutcome::Success,
            None,
            Duration::ZERO,
        )];
        log.record(&summary(&ok, Some("a"), false));
        assert!(log.recent().is_empty(), "a plain success is no failover");
        let fell = [
            Attempt::new(
                "a",
                AttemptOutcome::Failed,
                Some(ProviderError::new(ErrorKind::Timeout, "too slow")),
                Duration::ZERO,
            ),
            Attempt::new("b", AttemptOutcome::Success, None, Duration::ZERO),
        ];
        log.record(&summary(&fell, Some("b"), true));
        let r = log.recent();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].to.as_deref(), Some("b"));
        assert_eq!(r[0].reasons[0].provider, "a");
        assert_eq!(r[0].reasons[0].kind, "timeout");
        assert_eq!(r[0].reasons[0].message, "too slow");
        for _ in 0..KEPT {
            log.record(&summary(&fell[..1], None, false));
        }
        let r = log.recent();
        assert_eq!(r.len(), KEPT);
        assert!(r.iter().all(|f| f.to.is_none()), "the oldest was dropped");
    }
}
