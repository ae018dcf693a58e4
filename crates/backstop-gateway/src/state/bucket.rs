//! Per-process key limits: the same two leaky buckets as the Redis script (`limit.lua`),
//! used without Redis and while it cannot be reached.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::KeyLimits;

/// What a client used, draining at its limit per minute. Holding the use (not what is left)
/// lets a reload raise or lower a limit at once.
#[derive(Debug, Clone, Copy)]
struct Used {
    requests: f64,
    tokens: f64,
    at: Instant,
}

/// Key limits held in this process, by client identity.
#[derive(Debug, Default)]
pub(crate) struct LocalBuckets {
    keys: Mutex<HashMap<String, Used>>,
}

const MINUTE: f64 = 60.0;

#[allow(clippy::cast_precision_loss)]
fn drain(used: f64, limit: Option<u64>, elapsed: f64) -> f64 {
    limit.map_or(0.0, |l| (used - elapsed * l as f64 / MINUTE).max(0.0))
}

/// How long until `used + need` fits under `limit` (zero: it fits now).
#[allow(clippy::cast_precision_loss)]
fn wait(used: f64, need: f64, limit: Option<u64>) -> f64 {
    limit.map_or(0.0, |l| {
        let l = l as f64;
        ((used + need.min(l) - l) * MINUTE / l).max(0.0)
    })
}

impl LocalBuckets {
    /// Takes one request and `tokens` for `client`, or says how long until it could.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn admit(
        &self,
        limits: &KeyLimits,
        client: &str,
        tokens: u64,
    ) -> Result<(), Duration> {
        self.with(limits, client, |u| {
            let w = wait(u.requests, 1.0, limits.requests_per_minute).max(wait(
                u.tokens,
                tokens as f64,
                limits.tokens_per_minute,
            ));
            if w > 0.0 {
                return Err(Duration::from_secs_f64(w));
            }
            u.requests += 1.0;
            u.tokens += tokens as f64;
            Ok(())
        })
    }

    /// Gives back `tokens` (negative: charges more) once the usage is known.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn adjust(&self, limits: &KeyLimits, client: &str, tokens: i64) {
        self.with(limits, client, |u| {
            u.tokens = (u.tokens - tokens as f64).max(0.0);
        });
    }

    fn with<T>(&self, limits: &KeyLimits, client: &str, f: impl FnOnce(&mut Used) -> T) -> T {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let used = keys.entry(client.to_owned()).or_insert(Used {
            requests: 0.0,
            tokens: 0.0,
            at: now,
        });
        let elapsed = now.saturating_duration_since(used.at).as_secs_f64();
        used.requests = drain(used.requests, limits.requests_per_minute, elapsed);
        used.tokens = drain(used.tokens, limits.tokens_per_minute, elapsed);
        used.at = now;
        f(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimits {
        KeyLimits {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            default_max_tokens: 100,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn n_requests_per_minute_admit_n_then_wait_for_one_to_refill() {
        let b = LocalBuckets::default();
        let l = limits(Some(3), None);
        for _ in 0..3 {
            assert_eq!(b.admit(&l, "k", 0), Ok(()));
        }
        assert_eq!(b.admit(&l, "k", 0), Err(Duration::from_secs(20)));
        assert_eq!(b.admit(&l, "other", 0), Ok(()), "keys are limited apart");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(b.admit(&l, "k", 0), Ok(()));
        assert!(b.admit(&l, "k", 0).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn reserved_tokens_come_back_when_the_usage_is_smaller() {
        let b = LocalBuckets::default();
        let l = limits(None, Some(1000));
        assert_eq!(b.admit(&l, "k", 600), Ok(()));
        assert!(b.admit(&l, "k", 600).is_err(), "400 left, 600 asked");
        b.adjust(&l, "k", 600 - 50);
        assert_eq!(b.admit(&l, "k", 600), Ok(()), "950 left after reconciling");
        b.adjust(&l, "k", -2000);
        let wait = b.admit(&l, "k", 1).unwrap_err();
        assert!(
            wait > Duration::from_secs(60),
            "a debt takes longer than a minute: {wait:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_limit_applies_at_once() {
        let b = LocalBuckets::default();
        assert_eq!(b.admit(&limits(Some(1), None), "k", 0), Ok(()));
        assert!(b.admit(&limits(Some(1), None), "k", 0).is_err());
        assert_eq!(b.admit(&limits(Some(5), None), "k", 0), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_larger_than_the_limit_passes_on_a_full_bucket() {
        let b = LocalBuckets::default();
        let l = limits(None, Some(100));
        assert_eq!(b.admit(&l, "k", 500), Ok(()));
        assert!(b.admit(&l, "k", 1).is_err());
    }
}
