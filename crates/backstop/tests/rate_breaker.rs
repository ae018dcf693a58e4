//! The default breaker (failure-rate mode) scales with traffic: it stays closed under 30%
//! independent failures at any rate from 1 to 1,000 req/s, opens fast under a hard outage, and
//! brings a recovered provider back within 30 s. Virtual time, a seeded random source.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::{BreakerState, CircuitBreaker, Observer, StateChange};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

/// Counts openings.
#[derive(Default)]
struct Opens(AtomicU32);

impl Observer for Opens {
    fn on_breaker_change(&self, c: &StateChange<'_>) {
        if c.to == BreakerState::Open {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One call through the breaker at the current virtual time; `fails` decides its outcome.
/// Returns false when the breaker refused it.
fn call(b: &CircuitBreaker, fails: bool) -> bool {
    match b.try_acquire() {
        Ok(p) if fails => {
            p.failure();
            true
        }
        Ok(p) => {
            p.success();
            true
        }
        Err(_) => false,
    }
}

/// Drives `rate` calls per second for `secs`, each failing with probability `p`; the openings seen.
async fn drive(b: &CircuitBreaker, rate: u32, secs: u64, p: f64, seed: u64) -> u32 {
    let opens = Arc::new(Opens::default());
    b.observe(opens.clone());
    let mut rng = SmallRng::seed_from_u64(seed);
    let gap = Duration::from_secs(1) / rate;
    for _ in 0..u64::from(rate) * secs {
        call(b, rng.random_bool(p));
        tokio::time::advance(gap).await;
    }
    opens.0.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn default_breaker_stays_closed_under_30_percent_failures_at_any_rate() {
    // (rate, seconds): at least 100,000 calls each, or an hour at low rates.
    for (rate, secs) in [
        (1_000, 120),
        (300, 400),
        (100, 1_200),
        (30, 3_600),
        (1, 3_600),
    ] {
        let b = CircuitBreaker::new(format!("p{rate}"));
        let opens = drive(&b, rate, secs, 0.3, u64::from(rate)).await;
        assert_eq!(
            opens, 0,
            "{rate} req/s for {secs} s with 30% failures opened it"
        );
    }
}

/// Healthy traffic for a while, then every call fails: how long until the breaker opens, and
/// how many failing calls it took.
async fn time_to_open(rate: u32) -> (Duration, u32) {
    let b = CircuitBreaker::new("p");
    let gap = Duration::from_secs(1) / rate;
    for _ in 0..u64::from(rate) * 60 {
        call(&b, false);
        tokio::time::advance(gap).await;
    }
    let onset = Instant::now();
    let mut failing_calls = 0;
    while b.state() == BreakerState::Closed {
        assert!(call(&b, true));
        failing_calls += 1;
        if b.state() == BreakerState::Closed {
            tokio::time::advance(gap).await;
        }
    }
    (onset.elapsed(), failing_calls)
}

#[tokio::test(start_paused = true)]
async fn default_breaker_opens_within_a_second_of_a_hard_outage_when_busy() {
    for rate in [1_000, 100, 10] {
        let (after, _) = time_to_open(rate).await;
        assert!(
            after <= Duration::from_secs(1),
            "{rate} req/s: opened after {after:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn default_breaker_opens_within_ten_calls_of_a_hard_outage_when_quiet() {
    for rate in [1, 2, 5] {
        let (_, calls) = time_to_open(rate).await;
        assert_eq!(calls, 10, "{rate} req/s");
    }
}

#[tokio::test(start_paused = true)]
async fn the_rate_rule_alone_opens_on_a_sustained_majority_of_failures() {
    let b = CircuitBreaker::new("p").failure_rate(0.5, 100);
    // 60% failures at 100 req/s: no 10-failure run needed, the share opens it once 100 calls
    // are in the window.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut calls = 0;
    while b.state() == BreakerState::Closed {
        call(&b, rng.random_bool(0.6));
        calls += 1;
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(calls < 1_000, "a 60% failure share never opened it");
    }
    assert!(calls >= 100, "not before minimum_calls: {calls}");
}

#[tokio::test(start_paused = true)]
async fn a_recovered_provider_is_back_in_rotation_within_30_seconds_at_the_defaults() {
    let b = CircuitBreaker::new("p");
    // A long outage: the breaker opens and every probe fails, so open periods back off to the max.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        call(&b, true);
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    assert_ne!(b.state(), BreakerState::Closed);
    // The provider recovers now; traffic keeps coming at 10 req/s.
    let recovered = Instant::now();
    while b.state() != BreakerState::Closed {
        call(&b, false);
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    let back = recovered.elapsed();
    assert!(back <= Duration::from_secs(30), "back after {back:?}");
}

#[tokio::test(start_paused = true)]
async fn count_mode_keeps_the_seed_rule() {
    let b = CircuitBreaker::new("p").failure_threshold(3);
    // Many successes do not dilute a count: three failures inside the window open it.
    for _ in 0..1_000 {
        call(&b, false);
    }
    call(&b, true);
    call(&b, true);
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, true);
    assert_eq!(b.state(), BreakerState::Open);
}
