//! The failure-rate rule's state: calls and failures in the window (lock-free buckets) and the
//! run of consecutive failures with the time of the last success, for the hard-outage rule.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::window::Buckets;

/// The last-success time is refreshed at most this often (nanoseconds), so the hot success
/// path does not write a shared word on every call.
const SUCCESS_RESOLUTION_NS: u64 = 1_000_000;

/// Calls and failures in the window, and the current failure run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) run: u32,
    /// Time since the last success (or since the window was last cleared).
    pub(crate) since_success: Duration,
}

#[derive(Debug)]
pub(crate) struct RateWindow {
    buckets: Buckets,
    run: AtomicU32,
    last_success_ns: AtomicU64,
}

impl RateWindow {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            buckets: Buckets::new(window),
            run: AtomicU32::new(0),
            last_success_ns: AtomicU64::new(0),
        }
    }

    /// A successful call (lock-free).
    pub(crate) fn success(&self, now: Instant) {
        let now_ns = self.buckets.nanos(now);
        self.buckets.add(now_ns, false);
        if self.run.load(Ordering::Relaxed) != 0 {
            self.run.store(0, Ordering::Relaxed);
        }
        if now_ns >= self.last_success_ns.load(Ordering::Relaxed) + SUCCESS_RESOLUTION_NS {
            self.last_success_ns.fetch_max(now_ns, Ordering::Relaxed);
        }
    }

    /// A failed call; returns the tally that includes it.
    pub(crate) fn failure(&self, now: Instant) -> Tally {
        let now_ns = self.buckets.nanos(now);
        self.buckets.add(now_ns, true);
        let run = self.run.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        Tally {
            run,
            ..self.tally_at(now_ns)
        }
    }

    /// Calls and failures in the window now.
    pub(crate) fn tally(&self, now: Instant) -> Tally {
        Tally {
            run: self.run.load(Ordering::Relaxed),
            ..self.tally_at(self.buckets.nanos(now))
        }
    }

    fn tally_at(&self, now_ns: u64) -> Tally {
        let c = self.buckets.counts(now_ns);
        Tally {
            calls: c.events,
            failures: c.marked,
            run: 0,
            since_success: Duration::from_nanos(
                now_ns.saturating_sub(self.last_success_ns.load(Ordering::Relaxed)),
            ),
        }
    }

    /// Forgets every call (the breaker closed or reset); the outage clock restarts now.
    pub(crate) fn clear(&self, now: Instant) {
        self.buckets.clear();
        self.run.store(0, Ordering::Relaxed);
        self.last_success_ns
            .store(self.buckets.nanos(now), Ordering::Relaxed);
    }
}
