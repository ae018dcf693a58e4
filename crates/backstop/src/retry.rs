//! When to try the same provider again, and how long to wait first.

use std::time::Duration;

use rand::Rng;

use crate::ErrorKind;

/// How late tokio's timer may wake a sleep: it resolves to whole milliseconds, rounding up.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Retry settings. Defaults: 1 retry, 100 ms base backoff doubling up to 2 s, full jitter,
/// Retry-After hints honoured up to 2 s, timeouts not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Extra attempts on the same provider after the first (`retries_per_provider`).
    pub max_retries: u32,
    /// Backoff before the first retry, doubled for each later one.
    pub base_backoff: Duration,
    /// Upper bound on any backoff.
    pub max_backoff: Duration,
    /// Longest Retry-After we wait for; a longer hint moves the chain on at once.
    pub retry_after_cap: Duration,
    /// Retry a provider that timed out (default false: a silent provider only doubles the
    /// wait, so the chain fails over at once).
    pub retry_timeouts: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 1,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            retry_after_cap: Duration::from_secs(2),
            retry_timeouts: false,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Wait this long, then call the same provider again.
    RetryAfter(Duration),
    /// Stop trying this provider.
    GiveUp,
}

impl RetryPolicy {
    /// No retries: every failure moves on to the next provider at once.
    pub fn none() -> Self {
        Self::default().max_retries(0)
    }

    /// Sets the extra attempts per provider.
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Sets the backoff before the first retry (doubled for each later one).
    #[must_use]
    pub fn base_backoff(mut self, d: Duration) -> Self {
        self.base_backoff = d;
        self
    }
    /// Sets the upper bound on any backoff.
    #[must_use]
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }
    /// Sets the longest Retry-After hint the chain waits for.
    #[must_use]
    pub fn retry_after_cap(mut self, d: Duration) -> Self {
        self.retry_after_cap = d;
        self
    }
    /// Whether a timed-out provider is retried.
    #[must_use]
    pub fn retry_timeouts(mut self, yes: bool) -> Self {
        self.retry_timeouts = yes;
        self
    }

    /// Whether `kind` is worth another attempt on the same provider under this policy.
    pub fn retries(&self, kind: ErrorKind) -> bool {
        kind.is_retryable() || (kind == ErrorKind::Timeout && self.retry_timeouts)
    }

    /// Decides after the attempt numbered `retries_done` (0 for the first) failed with `kind`,
    /// given `time_left` before the request deadline. Backoff never sleeps past the deadline:
    /// a wait that would end at or after it gives up instead, counting the millisecond by which
    /// tokio's timer may wake late (it rounds a sleep's end up to its next tick; without the
    /// margin a wait just short of the deadline woke at it, leaving no time for the next
    /// provider).
    pub fn decide(
        &self,
        kind: ErrorKind,
        retries_done: u32,
        time_left: Option<Duration>,
    ) -> RetryDecision {
        if retries_done >= self.max_retries || !self.retries(kind) {
            return RetryDecision::GiveUp;
        }
        let wait = match kind {
            ErrorKind::RateLimited {
                retry_after: Some(d),
            } if d > self.retry_after_cap => {
                return RetryDecision::GiveUp;
            }
            ErrorKind::RateLimited {
                retry_after: Some(d),
            } => d,
            _ => self.backoff(retries_done, &mut rand::rng()),
        };
        match time_left {
            Some(left) if wait + TIMER_TICK >= left => RetryDecision::GiveUp,
            _ => RetryDecision::RetryAfter(wait),
        }
    }

    /// Full-jitter exponential backoff: uniform in `[0, min(max_backoff, base · 2^retry)]`.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// The upper bound of the jittered backoff before retry number `retry`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn non_retryable_kinds_give_up_immediately() {
        let p = RetryPolicy {
            max_retries: 5,
            ..RetryPolicy::default()
        };
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::QuotaExhausted,
            ErrorKind::Auth,
            ErrorKind::InvalidRequest,
            ErrorKind::ContextLengthExceeded,
            ErrorKind::ContentFiltered,
            ErrorKind::Cancelled,
            ErrorKind::CircuitOpen,
        ] {
            assert_eq!(p.decide(kind, 0, None), RetryDecision::GiveUp, "{kind:?}");
        }
    }

    #[test]
    fn retryable_kinds_retry_until_the_budget_is_spent() {
        let p = RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        };
        for kind in [
            ErrorKind::Connect,
            ErrorKind::Overloaded,
            ErrorKind::Server,
            ErrorKind::Protocol,
        ] {
            assert!(
                matches!(p.decide(kind, 0, None), RetryDecision::RetryAfter(_)),
                "{kind:?}"
            );
            assert!(
                matches!(p.decide(kind, 1, None), RetryDecision::RetryAfter(_)),
                "{kind:?}"
            );
            assert_eq!(p.decide(kind, 2, None), RetryDecision::GiveUp, "{kind:?}");
        }
    }

    #[test]
    fn timeouts_are_retried_only_when_asked() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(ErrorKind::Timeout, 0, None), RetryDecision::GiveUp);
        let p = p.retry_timeouts(true);
        assert!(matches!(
            p.decide(ErrorKind::Timeout, 0, None),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn retry_after_within_cap_is_waited_exactly_and_beyond_cap_gives_up() {
        let p = RetryPolicy::default();
        let within = ErrorKind::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            p.decide(within, 0, None),
            RetryDecision::RetryAfter(Duration::from_millis(1500))
        );
        let beyond = ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(p.decide(beyond, 0, None), RetryDecision::GiveUp);
    }

    #[test]
    fn backoff_is_jittered_below_an_exponential_capped_ceiling() {
        let p = RetryPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff_ceiling(0), Duration::from_millis(100));
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(350));
        assert_eq!(p.backoff_ceiling(40), Duration::from_millis(350));
        let mut rng = SmallRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..1000).map(|_| p.backoff(1, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(200)));
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert!(distinct.len() > 900, "full jitter spreads the waits");
        let mean = draws.iter().sum::<Duration>() / 1000;
        assert!(
            mean > Duration::from_millis(80) && mean < Duration::from_millis(120),
            "mean {mean:?}"
        );
    }

    #[test]
    fn backoff_never_sleeps_past_the_deadline() {
        let p = RetryPolicy::default();
        let wait = ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            p.decide(wait, 0, Some(Duration::from_millis(999))),
            RetryDecision::GiveUp
        );
        // A wait that ends within the timer's millisecond of the deadline could wake at it.
        assert_eq!(
            p.decide(wait, 0, Some(Duration::from_millis(1001))),
            RetryDecision::GiveUp
        );
        assert_eq!(
            p.decide(wait, 0, Some(Duration::from_micros(1_001_001))),
            RetryDecision::RetryAfter(Duration::from_secs(1))
        );
    }
}
