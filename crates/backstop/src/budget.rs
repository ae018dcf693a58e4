//! The retry budget: same-provider retries limited to a share of recent requests, so a failing
//! provider is not hit with a retry storm (Finagle's and Envoy's retry budgets).
//!
//! Every request deposits `ratio` of a retry; every retry withdraws one; `min_per_second`
//! retries are always allowed on top, so quiet services still retry. Beyond the budget the
//! chain moves to the next provider instead of retrying. Counted over `ttl` in lock-free buckets.

use std::time::Duration;

use tokio::time::Instant;

use crate::window::Buckets;

/// Retry budget settings. Default: 20% of the requests of the last 10 s, plus 10 retries per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Retries allowed per request over `ttl` (0.2: one retry per five requests).
    pub ratio: f64,
    /// Retries allowed per second whatever the traffic.
    pub min_per_second: u32,
    /// How far back requests and retries count.
    pub ttl: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

/// A chain's running budget: requests and retries in the window.
#[derive(Debug)]
pub(crate) struct Budget {
    config: RetryBudget,
    /// Events are requests (unmarked) and retries (marked).
    window: Buckets,
}

impl Budget {
    pub(crate) fn new(config: RetryBudget) -> Self {
        Self {
            config,
            window: Buckets::new(config.ttl),
        }
    }

    /// A request started at `now`: it deposits `ratio` of a retry (the chain's own start time,
    /// so the request pays one clock read, not one per budget).
    pub(crate) fn deposit(&self, now: Instant) {
        let now = self.window.nanos(now);
        self.window.add(now, false);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub(crate) fn try_withdraw(&self) -> bool {
        let now = self.window.nanos(Instant::now());
        let c = self.window.counts(now);
        let requests = c.events - c.marked;
        #[allow(clippy::cast_precision_loss)]
        let allowed = requests as f64 * self.config.ratio
            + f64::from(self.config.min_per_second) * self.config.ttl.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let ok = (c.marked as f64) < allowed;
        if ok {
            self.window.add(now, true);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_limited_to_the_ratio_plus_the_floor() {
        let b = Budget::new(RetryBudget {
            ratio: 0.2,
            min_per_second: 1,
            ttl: Duration::from_secs(10),
        });
        for _ in 0..100 {
            b.deposit(Instant::now());
        }
        // 100 requests × 0.2 + 1/s × 10 s = 30 retries.
        let granted = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(granted, 30);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(b.try_withdraw(), "the window moved on: the floor is back");
    }
}
