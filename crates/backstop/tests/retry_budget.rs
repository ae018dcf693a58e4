//! The retry budget stops retry storms: under a hard outage of the primary, same-provider
//! retries are limited to a share of recent requests and the chain moves on instead.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{CircuitBreaker, ErrorKind, FallbackChain, Observer, RetryBudget, RetryPolicy};

#[derive(Default)]
struct Retries {
    granted: AtomicU32,
    denied: AtomicU32,
}

impl Observer for Retries {
    fn on_retry(&self, _chain: &str, _provider: &str, granted: bool) {
        let c = if granted { &self.granted } else { &self.denied };
        c.fetch_add(1, Ordering::SeqCst);
    }
}

/// 1,000 requests over 10 s against a primary that answers every call with a 500 (its breaker
/// set so high it never opens), with 3 retries per provider; the calls the primary received.
async fn outage(budget: Option<RetryBudget>) -> (u64, Arc<Retries>) {
    let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Server)]);
    let secondary = ScriptedProvider::new("secondary").script([Step::reply("ok")]);
    let retries = Arc::new(Retries::default());
    let chain = FallbackChain::builder()
        .provider(
            primary.clone(),
            CircuitBreaker::new("primary").failure_threshold(1_000_000),
        )
        .provider(secondary, CircuitBreaker::new("secondary"))
        .retry_policy(
            RetryPolicy::default()
                .max_retries(3)
                .base_backoff(Duration::ZERO),
        )
        .retry_budget(budget)
        .observer(retries.clone())
        .build()
        .unwrap();
    for _ in 0..1_000 {
        assert_eq!(
            chain.generate("hi").await.unwrap().provider_used,
            "secondary"
        );
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    (primary.calls(), retries)
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_caps_the_primarys_traffic_under_a_total_outage() {
    let (unbudgeted, _) = outage(None).await;
    assert_eq!(
        unbudgeted, 4_000,
        "without a budget every request retries three times"
    );
    let (calls, retries) = outage(Some(RetryBudget::default())).await;
    // 1,000 first attempts plus at most 20% of the requests of the last 10 s and 10/s on top:
    // 1,000 + 200 + 100.
    assert!(calls <= 1_300, "the primary got {calls} calls");
    assert!(calls >= 1_000);
    let granted = retries.granted.load(Ordering::SeqCst);
    assert_eq!(u64::from(granted), calls - 1_000);
    assert!(
        retries.denied.load(Ordering::SeqCst) > 0,
        "the budget refused some"
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_service_still_retries_within_the_floor() {
    let primary = ScriptedProvider::new("primary")
        .script([Step::fail(ErrorKind::Server), Step::reply("second try")]);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), CircuitBreaker::new("primary"))
        .retries_per_provider(1)
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(
        r.text, "second try",
        "the first request of a quiet chain may retry"
    );
    assert_eq!(primary.calls(), 2);
}
