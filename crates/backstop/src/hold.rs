//! Rate-limit holds: a 429 says "busy with you", not "broken", so it deprioritises a provider
//! for the hinted time instead of opening its breaker.
//!
//! A held provider moves behind every provider that is not held and is still tried when
//! nothing before it answered: a hold never refuses a request by itself. Without a hint the
//! hold starts at `initial` and doubles for consecutive 429s (a success resets the streak);
//! every hold is capped at `max`. Reads and the success path are lock-free.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Hold lengths. Defaults: 1 s without a hint (doubling for consecutive 429s), at most 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldConfig {
    /// Longest hold, whatever the provider's hint says.
    pub max: Duration,
    /// Hold after a 429 without a usable hint; doubles for each consecutive one.
    pub initial: Duration,
}

impl Default for HoldConfig {
    fn default() -> Self {
        Self {
            max: Duration::from_secs(60),
            initial: Duration::from_secs(1),
        }
    }
}

struct Inner {
    config: HoldConfig,
    /// The clock's origin for `until_ns`.
    base: Instant,
    /// End of the hold in nanoseconds after `base`; 0 when there never was one.
    until_ns: AtomicU64,
    /// 429s since the last success.
    streak: AtomicU32,
}

/// A provider's rate-limit hold. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct RateLimitHold {
    inner: Arc<Inner>,
}

impl fmt::Debug for RateLimitHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitHold")
            .field("remaining", &self.remaining())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl RateLimitHold {
    /// A hold that is not active.
    pub fn new(config: HoldConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                base: Instant::now(),
                until_ns: AtomicU64::new(0),
                streak: AtomicU32::new(0),
            }),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &HoldConfig {
        &self.inner.config
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.inner.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records a 429 with the provider's hint; returns how long the provider is now held.
    /// A hold only ever grows: an earlier, longer hold is kept.
    pub fn rate_limited(&self, hint: Option<Duration>) -> Duration {
        let streak = self.inner.streak.fetch_add(1, Ordering::Relaxed);
        let cfg = &self.inner.config;
        let length = match hint {
            Some(d) => d,
            None => cfg
                .initial
                .saturating_mul(1u32.checked_shl(streak.min(31)).unwrap_or(u32::MAX)),
        }
        .min(cfg.max);
        self.hold_for(length);
        length
    }

    /// Holds the provider for `length` from now (capped at `max`), unless already held longer.
    /// Used for holds learned elsewhere (another replica).
    pub fn hold_for(&self, length: Duration) {
        let length = length.min(self.inner.config.max);
        if length.is_zero() {
            return;
        }
        let now = self.nanos(Instant::now());
        let until = now.saturating_add(u64::try_from(length.as_nanos()).unwrap_or(u64::MAX));
        self.inner.until_ns.fetch_max(until, Ordering::AcqRel);
    }

    /// A call succeeded: consecutive 429s start over (the current hold still runs out).
    pub fn succeeded(&self) {
        if self.inner.streak.load(Ordering::Relaxed) != 0 {
            self.inner.streak.store(0, Ordering::Relaxed);
        }
    }

    /// Ends any hold now and forgets the streak.
    pub fn clear(&self) {
        self.inner.until_ns.store(0, Ordering::Release);
        self.inner.streak.store(0, Ordering::Relaxed);
    }

    /// True while the provider is held.
    pub fn is_held(&self) -> bool {
        let until = self.inner.until_ns.load(Ordering::Acquire);
        until != 0 && self.nanos(Instant::now()) < until
    }

    /// Time left on the hold, `None` when not held.
    pub fn remaining(&self) -> Option<Duration> {
        let until = self.inner.until_ns.load(Ordering::Acquire);
        let now = self.nanos(Instant::now());
        (until != 0 && now < until).then(|| Duration::from_nanos(until - now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn hint_sets_the_hold_capped_at_max() {
        let h = RateLimitHold::new(HoldConfig::default());
        assert!(!h.is_held());
        assert_eq!(
            h.rate_limited(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert!(h.is_held());
        tokio::time::advance(Duration::from_millis(2999)).await;
        assert!(h.is_held());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!h.is_held());
        assert_eq!(
            h.rate_limited(Some(Duration::MAX)),
            Duration::from_secs(60),
            "a hostile hint is capped"
        );
        assert_eq!(h.remaining(), Some(Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn hintless_holds_grow_until_a_success() {
        let h = RateLimitHold::new(HoldConfig {
            max: Duration::from_secs(5),
            initial: Duration::from_secs(1),
        });
        let lengths: Vec<u64> = (0..5).map(|_| h.rate_limited(None).as_secs()).collect();
        assert_eq!(lengths, [1, 2, 4, 5, 5]);
        h.succeeded();
        h.clear();
        assert_eq!(h.rate_limited(None), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_hint_never_shortens_a_hold() {
        let h = RateLimitHold::new(HoldConfig::default());
        h.rate_limited(Some(Duration::from_secs(10)));
        h.rate_limited(Some(Duration::from_secs(1)));
        assert_eq!(h.remaining(), Some(Duration::from_secs(10)));
    }
}
