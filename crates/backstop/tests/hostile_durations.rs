//! Absurd durations from every entry point — an upstream's hint, a caller's request, a breaker's
//! settings — never panic a request: instant arithmetic saturates and hints are capped.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{BreakerState, ChatRequest, CircuitBreaker, ErrorKind, FallbackChain};
use futures_util::StreamExt;

const HUGE: [Duration; 3] = [
    Duration::MAX,
    Duration::from_secs(u64::MAX),
    Duration::from_secs(u64::MAX / 2),
];

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_hint_holds_for_the_cap_and_moves_on() {
    for hint in HUGE {
        let primary =
            ScriptedProvider::new("primary").script([Step::fail(ErrorKind::RateLimited {
                retry_after: Some(hint),
            })]);
        let secondary = ScriptedProvider::new("secondary").script([Step::reply("ok")]);
        let b = CircuitBreaker::new("primary");
        let chain = FallbackChain::builder()
            .provider(primary.clone(), b.clone())
            .provider(secondary, CircuitBreaker::new("secondary"))
            .retries_per_provider(3)
            .build()
            .unwrap();
        let r = chain.generate("hi").await.unwrap();
        assert_eq!(r.provider_used, "secondary");
        assert_eq!(
            primary.calls(),
            1,
            "a hint beyond the retry cap is not waited for"
        );
        assert_eq!(b.snapshot().hold_remaining, Some(Duration::from_secs(60)));
    }
}

#[tokio::test(start_paused = true)]
async fn huge_request_and_chain_timeouts_mean_no_deadline() {
    for t in HUGE {
        let p = ScriptedProvider::new("p").script([Step::reply("ok")]);
        let chain = FallbackChain::builder()
            .provider(p.clone(), CircuitBreaker::new("p"))
            .timeout(t)
            .attempt_timeout(t)
            .ttft_timeout(t)
            .idle_timeout(t)
            .build()
            .unwrap();
        let r = chain
            .generate(ChatRequest::user("hi").timeout(t))
            .await
            .unwrap();
        assert_eq!(r.text, "ok");
        let mut s = chain
            .stream(ChatRequest::user("hi").timeout(t))
            .await
            .unwrap();
        let mut text = String::new();
        while let Some(c) = s.next().await {
            text.push_str(&c.unwrap().text);
        }
        assert_eq!(text, "ok");
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_recovery_timeout_trips_and_stays_open() {
    for t in HUGE {
        let b = CircuitBreaker::new("p").recovery_timeout(t);
        b.trip();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.snapshot().until_half_open.unwrap() > Duration::from_secs(86_400 * 365));
        b.record_failure();
        b.open_for(t);
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert_eq!(b.state(), BreakerState::Open);
        b.reset();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}

#[tokio::test(start_paused = true)]
async fn huge_breaker_windows_and_holds_count_normally() {
    let b = CircuitBreaker::new("p")
        .window(Duration::MAX)
        .max_recovery_timeout(Duration::MAX)
        .failure_threshold(2);
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
    let r = CircuitBreaker::new("r").window(Duration::MAX);
    for _ in 0..3 {
        r.try_acquire().unwrap().success();
        r.try_acquire().unwrap().failure();
    }
    assert_eq!(r.snapshot().calls_in_window, 6);
    r.hold().hold_for(Duration::MAX);
    assert_eq!(r.hold().remaining(), Some(Duration::from_secs(60)));
}
