//! A sliding window of two counters in ten time buckets, updated lock-free.
//!
//! Each bucket is one `AtomicU64` holding `(epoch: 24 bits, events: 20, marked: 20)`: an event
//! updates its bucket with one compare-and-swap, restarting it when its epoch is stale. The
//! window is the current bucket and the nine before it, so it spans between 90% and 100% of
//! its length (bucket-aligned). Counts saturate at about a million per bucket. Used by the
//! failure-rate breaker (calls, failures) and the retry budget (attempts, retries).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Buckets per window.
pub(crate) const BUCKETS: u64 = 10;
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << 24) - 1;

fn pack(epoch: u64, events: u64, marked: u64) -> u64 {
    ((epoch & EPOCH_MASK) << (2 * COUNT_BITS))
        | (events.min(COUNT_MAX) << COUNT_BITS)
        | marked.min(COUNT_MAX)
}

fn unpack(v: u64) -> (u64, u64, u64) {
    (
        v >> (2 * COUNT_BITS),
        (v >> COUNT_BITS) & COUNT_MAX,
        v & COUNT_MAX,
    )
}

/// Events, and those of them marked, in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) events: u64,
    pub(crate) marked: u64,
}

#[derive(Debug)]
pub(crate) struct Buckets {
    base: Instant,
    bucket_ns: u64,
    slots: [AtomicU64; BUCKETS as usize],
}

impl Buckets {
    pub(crate) fn new(window: Duration) -> Self {
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Self {
            base: Instant::now(),
            bucket_ns: (window_ns / BUCKETS).max(1),
            slots: Default::default(),
        }
    }

    /// Nanoseconds from the window's origin to `now` (0 before it).
    pub(crate) fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one event at `now_ns`, marked or not.
    pub(crate) fn add(&self, now_ns: u64, marked: bool) {
        let tick = now_ns / self.bucket_ns;
        let epoch = tick & EPOCH_MASK;
        let slot = &self.slots[(tick % BUCKETS) as usize];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let (e, events, m) = unpack(current);
            let (events, m) = if e == epoch { (events, m) } else { (0, 0) };
            let next = pack(epoch, events + 1, m + u64::from(marked));
            match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// The counts in the window ending at `now_ns`.
    pub(crate) fn counts(&self, now_ns: u64) -> Counts {
        let current = (now_ns / self.bucket_ns) & EPOCH_MASK;
        let mut c = Counts::default();
        for slot in &self.slots {
            let (e, events, marked) = unpack(slot.load(Ordering::Acquire));
            if current.wrapping_sub(e) & EPOCH_MASK < BUCKETS {
                c.events += events;
                c.marked += marked;
            }
        }
        c
    }

    /// Forgets every event.
    pub(crate) fn clear(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_expire_bucket_by_bucket() {
        let b = Buckets::new(Duration::from_secs(10));
        let t0 = b.nanos(Instant::now());
        b.add(t0, false);
        b.add(t0, true);
        assert_eq!(
            b.counts(t0),
            Counts {
                events: 2,
                marked: 1
            }
        );
        assert_eq!(
            b.counts(t0 + 9_999_000_000).events,
            2,
            "still inside the window"
        );
        assert_eq!(
            b.counts(t0 + 10_000_000_000).events,
            0,
            "the bucket left the window"
        );
        b.add(t0 + 10_000_000_000, true);
        assert_eq!(
            b.counts(t0 + 10_000_000_000),
            Counts {
                events: 1,
                marked: 1
            }
        );
    }

    #[test]
    fn packing_round_trips_and_saturates() {
        assert_eq!(unpack(pack(5, 7, 3)), (5, 7, 3));
        assert_eq!(
            unpack(pack(EPOCH_MASK + 2, COUNT_MAX + 9, 1)),
            (1, COUNT_MAX, 1)
        );
    }
}
