//! Weighted selection: first choice follows the weights, open breakers are excluded, weights
//! are validated at build time.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use backstop::testing::ScriptedProvider;
use backstop::{
    AttemptOutcome, ChainBuildError, CircuitBreaker, FallbackChain, weighted_fallback_chain,
};

#[tokio::test(start_paused = true)]
async fn first_choice_follows_the_weights_over_10000_draws() {
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    let chain = FallbackChain::weighted()
        .provider(a.clone(), CircuitBreaker::new("a"), 0.7)
        .provider(b.clone(), CircuitBreaker::new("b"), 0.3)
        .build()
        .unwrap();
    let mut first_a = 0u32;
    for _ in 0..10_000 {
        let r = chain.generate("hi").await.unwrap();
        assert_eq!(r.attempts.len(), 1, "both answer: no fallback needed");
        if r.provider_used == "a" {
            first_a += 1;
        }
    }
    let share = f64::from(first_a) / 10_000.0;
    assert!(
        (share - 0.7).abs() <= 0.02,
        "a was first {share:.3} of the time"
    );
    assert_eq!(a.calls() + b.calls(), 10_000);
    assert_eq!(a.calls(), u64::from(first_a));
}

#[tokio::test(start_paused = true)]
async fn weighted_seed_helper_builds_the_same_chain() {
    let chain = weighted_fallback_chain([
        (ScriptedProvider::new("a"), CircuitBreaker::new("a"), 3.0),
        (ScriptedProvider::new("b"), CircuitBreaker::new("b"), 1.0),
    ])
    .unwrap();
    let mut first_a = 0u32;
    for _ in 0..4_000 {
        if chain.generate("hi").await.unwrap().provider_used == "a" {
            first_a += 1;
        }
    }
    let share = f64::from(first_a) / 4_000.0;
    assert!((share - 0.75).abs() <= 0.03, "share {share:.3}");
}

#[tokio::test(start_paused = true)]
async fn open_breaker_is_excluded_from_the_draw() {
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    let ba = CircuitBreaker::new("a");
    let chain = FallbackChain::weighted()
        .provider(a.clone(), ba.clone(), 0.9)
        .provider(b.clone(), CircuitBreaker::new("b"), 0.1)
        .build()
        .unwrap();
    ba.trip();
    for _ in 0..500 {
        let r = chain.generate("hi").await.unwrap();
        assert_eq!(r.provider_used, "b");
        assert_eq!(
            r.attempts[0].provider, "b",
            "the open provider is never drawn first"
        );
        assert_eq!(
            r.attempts.len(),
            1,
            "b answered first; a is not even skipped"
        );
    }
    assert_eq!(a.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn open_breaker_stays_in_the_order_as_a_skipped_fallback() {
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b")
        .script([backstop::testing::Step::fail(backstop::ErrorKind::Server)]);
    let ba = CircuitBreaker::new("a");
    let chain = FallbackChain::weighted()
        .provider(a.clone(), ba.clone(), 0.5)
        .provider(
            b.clone(),
            CircuitBreaker::new("b").failure_threshold(1000),
            0.5,
        )
        .build()
        .unwrap();
    ba.trip();
    let e = chain.generate("hi").await.unwrap_err();
    let order: Vec<_> = e.errors.iter().map(|f| f.provider.as_str()).collect();
    assert_eq!(order, ["b", "a"]);
    assert_eq!(e.attempts[1].outcome, AttemptOutcome::Skipped);
    assert_eq!(a.calls(), 0);
}

#[test]
fn invalid_weights_are_rejected_at_build_time() {
    for w in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let r = FallbackChain::weighted()
            .provider(ScriptedProvider::new("ok"), CircuitBreaker::new("ok"), 1.0)
            .provider(ScriptedProvider::new("bad"), CircuitBreaker::new("bad"), w)
            .build();
        match r {
            Err(ChainBuildError::InvalidWeight { provider, weight }) => {
                assert_eq!(provider, "bad");
                assert!(weight.is_nan() && w.is_nan() || weight == w);
            }
            other => panic!("weight {w} accepted: {other:?}"),
        }
    }
    assert!(
        FallbackChain::weighted()
            .provider(
                ScriptedProvider::new("tiny"),
                CircuitBreaker::new("tiny"),
                1e-9
            )
            .build()
            .is_ok()
    );
}

#[test]
fn empty_chains_are_rejected() {
    assert!(matches!(
        FallbackChain::builder().build(),
        Err(ChainBuildError::Empty)
    ));
    assert!(matches!(
        FallbackChain::weighted().build(),
        Err(ChainBuildError::Empty)
    ));
}

#[test]
fn duplicate_breaker_names_are_rejected() {
    let r = FallbackChain::weighted()
        .provider(ScriptedProvider::new("x"), CircuitBreaker::new("same"), 1.0)
        .provider(ScriptedProvider::new("y"), CircuitBreaker::new("same"), 1.0)
        .build();
    assert_eq!(
        r.unwrap_err(),
        ChainBuildError::DuplicateName("same".into())
    );
    let r = FallbackChain::builder()
        .provider(ScriptedProvider::new("x"), CircuitBreaker::new("same"))
        .provider(ScriptedProvider::new("y"), CircuitBreaker::new("same"))
        .build();
    assert_eq!(
        r.unwrap_err(),
        ChainBuildError::DuplicateName("same".into())
    );
}
