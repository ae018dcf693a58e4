//! Hedged requests on virtual time: a slow first provider gets a second one started beside it;
//! the first to answer wins, the other is cancelled (neutral), and a budget bounds the hedges.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    AttemptOutcome, BreakerConfig, BreakerState, CircuitBreaker, ErrorKind, FallbackChain,
    HedgeAfter,
};
use futures_util::StreamExt;
use tokio::time::Instant;

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn outcomes(attempts: &[backstop::Attempt]) -> Vec<(&str, AttemptOutcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_provider_is_answered_by_the_hedge() {
    let slow = ScriptedProvider::new("slow").script([Step::delay(secs(20), Step::reply("late"))]);
    let fast = ScriptedProvider::new("fast").script([Step::delay(
        Duration::from_millis(100),
        Step::reply("quick"),
    )]);
    let sb = breaker("slow");
    let chain = FallbackChain::builder()
        .provider(slow.clone(), sb.clone())
        .provider(fast.clone(), breaker("fast"))
        .hedge_after(secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(2_100));
    assert_eq!(
        (r.provider_used.as_str(), r.text.as_str()),
        ("fast", "quick")
    );
    assert_eq!(
        outcomes(&r.attempts),
        [
            ("fast", AttemptOutcome::Success),
            ("slow", AttemptOutcome::Cancelled)
        ]
    );
    assert_eq!(sb.snapshot().failures_in_window, 0, "the loser is neutral");
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_token_fails_over_after_the_hedge_delay_not_the_ttft_timeout() {
    let slow =
        ScriptedProvider::new("slow").script([Step::delay(secs(20), Step::chunks(["late"]))]);
    let fast = ScriptedProvider::new("fast").script([Step::chunks(["quick"])]);
    let chain = FallbackChain::builder()
        .provider(slow, breaker("slow"))
        .provider(fast, breaker("fast"))
        .ttft_timeout(secs(30))
        .hedge_after(secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let mut s = chain.stream("hi").await.unwrap();
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(s.provider_used(), "fast");
    let mut text = String::new();
    while let Some(c) = s.next().await {
        text.push_str(&c.unwrap().text);
    }
    assert_eq!(text, "quick", "only the winner's answer");
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_first_provider_answers_in_time() {
    let first = ScriptedProvider::new("first").script([Step::delay(secs(1), Step::reply("a"))]);
    let second = ScriptedProvider::new("second").script([Step::reply("b")]);
    let chain = FallbackChain::builder()
        .provider(first, breaker("first"))
        .provider(second.clone(), breaker("second"))
        .hedge_after(secs(2))
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "first");
    assert_eq!(second.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_first_provider_still_wins_if_it_answers_before_the_hedge() {
    let first = ScriptedProvider::new("first").script([Step::delay(secs(3), Step::reply("a"))]);
    let second = ScriptedProvider::new("second").script([Step::delay(secs(5), Step::reply("b"))]);
    let chain = FallbackChain::builder()
        .provider(first, breaker("first"))
        .provider(second.clone(), breaker("second"))
        .hedge_after(secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(start.elapsed(), secs(3));
    assert_eq!(r.text, "a");
    assert_eq!(second.calls(), 1, "the hedge was started");
    assert_eq!(
        outcomes(&r.attempts),
        [
            ("first", AttemptOutcome::Success),
            ("second", AttemptOutcome::Cancelled)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_half_open_slot() {
    let slow = ScriptedProvider::new("slow").script([Step::delay(secs(20), Step::reply("late"))]);
    let fast = ScriptedProvider::new("fast").script([Step::reply("quick")]);
    let sb = breaker("slow");
    sb.trip();
    tokio::time::advance(secs(60)).await;
    let chain = FallbackChain::builder()
        .provider(slow, sb.clone())
        .provider(fast, breaker("fast"))
        .hedge_after(secs(2))
        .build()
        .unwrap();
    chain.generate("hi").await.unwrap();
    assert_eq!(sb.state(), BreakerState::HalfOpen);
    assert!(sb.admits(), "the cancelled probe gave its slot back");
}

#[tokio::test(start_paused = true)]
async fn when_both_fail_the_rest_of_the_plan_answers() {
    let a =
        ScriptedProvider::new("a").script([Step::delay(secs(3), Step::fail(ErrorKind::Server))]);
    let b = ScriptedProvider::new("b").script([Step::fail(ErrorKind::Overloaded)]);
    let c = ScriptedProvider::new("c").script([Step::reply("c")]);
    let chain = FallbackChain::builder()
        .provider(a, breaker("a"))
        .provider(b, breaker("b"))
        .provider(c, breaker("c"))
        .hedge_after(secs(2))
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "c");
    assert_eq!(
        outcomes(&r.attempts),
        [
            ("b", AttemptOutcome::Failed),
            ("a", AttemptOutcome::Failed),
            ("c", AttemptOutcome::Success)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hedges_are_limited_by_their_budget() {
    let slow = ScriptedProvider::new("slow").script([Step::delay(secs(3), Step::reply("a"))]);
    let other = ScriptedProvider::new("other").script([Step::delay(secs(5), Step::reply("b"))]);
    let chain = FallbackChain::builder()
        .provider(slow, breaker("slow"))
        .provider(other.clone(), breaker("other"))
        .hedge(HedgeAfter::Fixed(secs(2)), 0.1)
        .build()
        .unwrap();
    let requests: Vec<_> = (0..100).map(|_| chain.generate("hi")).collect();
    let results = futures_util::future::join_all(requests).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().text == "a"));
    // 10% of 100 requests (one more for the request that made the first deposit).
    assert!(other.calls() <= 11, "{} hedges", other.calls());
    assert!(other.calls() >= 9, "{} hedges", other.calls());
}

#[tokio::test(start_paused = true)]
async fn percentile_hedging_follows_the_first_providers_recent_answers() {
    let first = ScriptedProvider::from_fn("first", |n| {
        if n < 20 {
            Step::delay(Duration::from_millis(100), Step::reply("usual"))
        } else {
            Step::delay(secs(10), Step::reply("stuck"))
        }
    });
    let second = ScriptedProvider::new("second").script([Step::reply("rescue")]);
    let chain = FallbackChain::builder()
        .provider(first, breaker("first"))
        .provider(second.clone(), breaker("second"))
        .hedge(
            HedgeAfter::Percentile {
                percentile: 95.0,
                min: Duration::from_millis(50),
            },
            1.0,
        )
        .build()
        .unwrap();
    for _ in 0..20 {
        assert_eq!(chain.generate("hi").await.unwrap().text, "usual");
    }
    assert_eq!(
        second.calls(),
        0,
        "answers at the usual pace are never hedged"
    );
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.text, "rescue");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "hedged at the p95 of 100 ms"
    );
}
