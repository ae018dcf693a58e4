//! The last failovers, for the status page: a small ring written only when a request fell
//! back or failed (a lock on that path, never on a plain success).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use backstop::{Attempt, AttemptOutcome};
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
    /// Records a request of `chain` that fell back to `to`, or failed (`None`), after
    /// `attempts`.
    pub fn record(&self, chain: &str, to: Option<&str>, attempts: &[Attempt]) {
        let reasons = attempts
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
            chain: chain.to_owned(),
            to: to.map(str::to_owned),
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

    use backstop::{ErrorKind, ProviderError};

    use super::*;

    #[test]
    fn failovers_are_kept_with_their_reasons_newest_first_and_bounded() {
        let log = FailoverLog::default();
        let fell = [
            Attempt::new(
                "a",
                AttemptOutcome::Failed,
                Some(ProviderError::new(ErrorKind::Timeout, "too slow")),
                Duration::ZERO,
            ),
            Attempt::new("b", AttemptOutcome::Success, None, Duration::ZERO),
        ];
        log.record("c", Some("b"), &fell);
        let r = log.recent();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].chain, "c");
        assert_eq!(r[0].to.as_deref(), Some("b"));
        assert_eq!(r[0].reasons.len(), 1, "the answering attempt is no reason");
        assert_eq!(r[0].reasons[0].provider, "a");
        assert_eq!(r[0].reasons[0].kind, "timeout");
        assert_eq!(r[0].reasons[0].message, "too slow");
        for _ in 0..KEPT {
            log.record("c", None, &fell[..1]);
        }
        let r = log.recent();
        assert_eq!(r.len(), KEPT);
        assert!(r.iter().all(|f| f.to.is_none()), "the oldest was dropped");
    }
}
