//! Every row of the classification table (DESIGN.md "Error classification", `error.rs`):
//! retried or not, counted against the breaker or not, falls through or stops.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    AttemptOutcome, BreakerConfig, BreakerState, CircuitBreaker, ErrorKind, FallThrough,
    FallbackChain, RetryPolicy,
};
use tokio::time::Instant;

/// What the table promises for one kind.
struct Row {
    kind: ErrorKind,
    retried: bool,
    counts: bool,
    falls_through: bool,
}

fn high_threshold(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

struct Setup {
    chain: FallbackChain,
    primary: ScriptedProvider,
    secondary: ScriptedProvider,
    breaker: CircuitBreaker,
}

fn setup(kind: ErrorKind, fall_through: FallThrough) -> Setup {
    let primary = ScriptedProvider::new("primary").script([Step::fail(kind)]);
    let secondary = ScriptedProvider::new("secondary").script([Step::reply("from secondary")]);
    let breaker = high_threshold("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker.clone())
        .provider(secondary.clone(), high_threshold("secondary"))
        .retries_per_provider(2)
        .fall_through(fall_through)
        .build()
        .unwrap();
    Setup {
        chain,
        primary,
        secondary,
        breaker,
    }
}

async fn check(row: Row, fall_through: FallThrough) {
    let s = setup(row.kind, fall_through);
    let result = s.chain.generate("hi").await;
    let kind = row.kind;
    let expected_calls = if row.retried { 3 } else { 1 };
    assert_eq!(s.primary.calls(), expected_calls, "{kind:?}: calls");
    let counted = s.breaker.snapshot().failures_in_window;
    assert_eq!(
        counted,
        if row.counts { expected_calls as u32 } else { 0 },
        "{kind:?}: failures counted"
    );
    assert_eq!(
        s.breaker.state(),
        BreakerState::Closed,
        "{kind:?}: threshold not reached"
    );
    if row.falls_through {
        let r = result.unwrap_or_else(|e| panic!("{kind:?} should fall through: {e}"));
        assert_eq!(r.provider_used, "secondary", "{kind:?}");
        assert_eq!(r.text, "from secondary");
        assert_eq!(s.secondary.calls(), 1);
        let failed: Vec<_> = r
            .attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Failed)
            .collect();
        assert_eq!(failed.len() as u64, expected_calls);
        assert!(
            failed
                .iter()
                .all(|a| a.provider == "primary" && a.error.as_ref().map(|e| e.kind) == Some(kind))
        );
    } else {
        let e = result.expect_err("the chain stops");
        assert_eq!(
            s.secondary.calls(),
            0,
            "{kind:?}: must not reach the secondary"
        );
        assert_eq!(e.errors.len(), 2, "{kind:?}: every provider is reported");
        assert_eq!(e.errors[0].provider, "primary");
        assert_eq!(e.errors[0].error.kind, kind);
        assert!(e.errors[0].attempted);
        assert_eq!(e.errors[1].provider, "secondary");
        assert!(!e.errors[1].attempted);
        assert!(
            e.errors[1]
                .error
                .message
                .starts_with("not tried: the chain stopped after"),
            "{}",
            e.errors[1].error.message
        );
        assert_eq!(
            e.summary_kind(),
            kind,
            "the stopping error sums up the failure"
        );
        assert!(!e.deadline_exceeded);
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_is_not_retried_but_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::Timeout,
            retried: false,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn connect_is_retried_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::Connect,
            retried: true,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn overloaded_is_retried_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::Overloaded,
            retried: true,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn server_is_retried_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::Server,
            retried: true,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn protocol_is_retried_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::Protocol,
            retried: true,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn auth_is_not_retried_but_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::Auth,
            retried: false,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn invalid_request_is_neutral_and_falls_through_by_default() {
    check(
        Row {
            kind: ErrorKind::InvalidRequest,
            retried: false,
            counts: false,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn invalid_request_stops_the_chain_when_configured() {
    check(
        Row {
            kind: ErrorKind::InvalidRequest,
            retried: false,
            counts: false,
            falls_through: false,
        },
        FallThrough {
            invalid_request: false,
            ..FallThrough::default()
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn invalid_request_setting_does_not_stop_other_kinds() {
    check(
        Row {
            kind: ErrorKind::ContextLengthExceeded,
            retried: false,
            counts: false,
            falls_through: true,
        },
        FallThrough {
            invalid_request: false,
            ..FallThrough::default()
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn context_length_exceeded_is_neutral_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::ContextLengthExceeded,
            retried: false,
            counts: false,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn content_filtered_is_neutral_and_returns_the_refusal_by_default() {
    check(
        Row {
            kind: ErrorKind::ContentFiltered,
            retried: false,
            counts: false,
            falls_through: false,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn content_filtered_falls_through_when_opted_in() {
    check(
        Row {
            kind: ErrorKind::ContentFiltered,
            retried: false,
            counts: false,
            falls_through: true,
        },
        FallThrough {
            content_filtered: true,
            ..FallThrough::default()
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn quota_exhausted_is_not_retried_but_counted_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::QuotaExhausted,
            retried: false,
            counts: true,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn local_resource_is_neutral_not_retried_and_falls_through() {
    check(
        Row {
            kind: ErrorKind::LocalResource,
            retried: false,
            counts: false,
            falls_through: true,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn cancelled_is_neutral_and_stops_the_chain() {
    check(
        Row {
            kind: ErrorKind::Cancelled,
            retried: false,
            counts: false,
            falls_through: false,
        },
        FallThrough::default(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn rate_limited_without_retry_after_is_retried_and_held_not_counted() {
    let s = setup(
        ErrorKind::RateLimited { retry_after: None },
        FallThrough::default(),
    );
    let r = s.chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(s.primary.calls(), 3, "retried with backoff");
    let snap = s.breaker.snapshot();
    assert_eq!(snap.state, BreakerState::Closed);
    assert_eq!(snap.failures_in_window, 0, "a 429 is not a breaker failure");
    // Three hint-less 429s in a row: holds of 1 s, 2 s, 4 s; the last one runs.
    assert_eq!(snap.hold_remaining, Some(Duration::from_secs(4)));
}

#[tokio::test(start_paused = true)]
async fn rate_limited_with_retry_after_holds_the_provider_instead_of_counting() {
    let hint = Duration::from_millis(500);
    let s = setup(
        ErrorKind::RateLimited {
            retry_after: Some(hint),
        },
        FallThrough::default(),
    );
    let start = Instant::now();
    let r = s.chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(
        s.primary.calls(),
        3,
        "within the cap: waited and retried twice"
    );
    assert_eq!(
        start.elapsed(),
        hint * 2,
        "each retry waited exactly the hint"
    );
    let snap = s.breaker.snapshot();
    assert_eq!(
        snap.state,
        BreakerState::Closed,
        "a 429 never opens the breaker"
    );
    assert_eq!(snap.failures_in_window, 0);
    assert_eq!(snap.hold_remaining, Some(hint), "held for the last hint");
    // While held, the primary goes behind the secondary: the next request is not sent to it.
    let r = s.chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(s.primary.calls(), 3);
    tokio::time::advance(hint).await;
    assert_eq!(
        s.breaker.snapshot().hold_remaining,
        None,
        "the hold ran out"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_within_cap_is_waited_and_the_same_provider_answers() {
    let hint = Duration::from_millis(1500);
    let primary = ScriptedProvider::new("primary").script([
        Step::fail(ErrorKind::RateLimited {
            retry_after: Some(hint),
        }),
        Step::reply("primary after waiting"),
    ]);
    let secondary = ScriptedProvider::new("secondary");
    let breaker = high_threshold("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker.clone())
        .provider(secondary.clone(), high_threshold("secondary"))
        .retries_per_provider(2)
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(start.elapsed(), hint);
    assert_eq!(r.provider_used, "primary");
    assert_eq!(r.text, "primary after waiting");
    assert_eq!(primary.calls(), 2);
    assert_eq!(secondary.calls(), 0);
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "a rate limit never touches the breaker"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_cap_moves_on_at_once() {
    let primary = ScriptedProvider::new("primary").script([
        Step::fail(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(10)),
        }),
        Step::reply("primary"),
    ]);
    let secondary = ScriptedProvider::new("secondary");
    let breaker = high_threshold("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker.clone())
        .provider(secondary.clone(), high_threshold("secondary"))
        .retry_policy(
            RetryPolicy::default()
                .max_retries(2)
                .retry_after_cap(Duration::from_secs(2)),
        )
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(primary.calls(), 1);
    let snap = breaker.snapshot();
    assert_eq!(snap.state, BreakerState::Closed);
    assert_eq!(snap.hold_remaining, Some(Duration::from_secs(10)));
    // The next request goes to the secondary first; the held primary is not called.
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(primary.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn skipped_provider_is_reported_as_circuit_open() {
    let primary = ScriptedProvider::new("primary");
    let breaker = high_threshold("primary");
    breaker.trip();
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker.clone())
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    assert_eq!(primary.calls(), 0);
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].error.kind, ErrorKind::CircuitOpen);
    assert_eq!(e.attempts[0].outcome, AttemptOutcome::Skipped);
    assert_eq!(e.summary_kind(), ErrorKind::Overloaded);
}
