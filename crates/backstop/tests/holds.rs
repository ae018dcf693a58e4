//! Rate-limit holds (DESIGN.md "Rate-limit holds"): a 429 deprioritises a provider for its
//! hint, never opens its breaker and never makes the chain refuse a request by itself.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{AttemptOutcome, BreakerState, CircuitBreaker, ErrorKind, FallbackChain};

fn rate_limited(secs: u64) -> Step {
    Step::fail(ErrorKind::RateLimited {
        retry_after: Some(Duration::from_secs(secs)),
    })
}

fn order(r: &backstop::FallbackResult) -> Vec<&str> {
    r.attempts.iter().map(|a| a.provider.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_held_provider_goes_behind_every_unheld_one_until_its_hold_ends() {
    let a = ScriptedProvider::new("a").script([rate_limited(5), Step::reply("a")]);
    let b = ScriptedProvider::new("b").script([Step::reply("b")]);
    let c = ScriptedProvider::new("c").script([Step::reply("c")]);
    let ab = CircuitBreaker::new("a");
    let chain = FallbackChain::builder()
        .provider(a.clone(), ab.clone())
        .provider(b.clone(), CircuitBreaker::new("b"))
        .provider(c.clone(), CircuitBreaker::new("c"))
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(order(&r), ["a", "b"], "the 429 moves the request on");
    assert_eq!(ab.state(), BreakerState::Closed);
    // While held: b answers first, a is not called.
    for _ in 0..3 {
        let r = chain.generate("hi").await.unwrap();
        assert_eq!(order(&r), ["b"]);
    }
    assert_eq!(a.calls(), 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(order(&r), ["a"], "the hold ended: back in first place");
}

#[tokio::test(start_paused = true)]
async fn held_providers_keep_their_relative_order_behind_the_unheld() {
    let names = ["a", "b", "c", "d"];
    let providers: Vec<ScriptedProvider> = names
        .iter()
        .map(|n| ScriptedProvider::new(*n).script([Step::fail(ErrorKind::Server)]))
        .collect();
    let breakers: Vec<CircuitBreaker> = names
        .iter()
        .map(|n| CircuitBreaker::new(*n).failure_threshold(1000))
        .collect();
    breakers[0].hold().hold_for(Duration::from_secs(30));
    breakers[2].hold().hold_for(Duration::from_secs(30));
    let chain = providers
        .iter()
        .zip(&breakers)
        .fold(FallbackChain::builder(), |b, (p, br)| {
            b.provider(p.clone(), br.clone())
        })
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    let tried: Vec<&str> = e.attempts.iter().map(|a| a.provider.as_str()).collect();
    assert_eq!(tried, ["b", "d", "a", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_hold_never_refuses_when_nothing_else_is_left() {
    let only = ScriptedProvider::new("only").script([rate_limited(10), Step::reply("here")]);
    let b = CircuitBreaker::new("only");
    let chain = FallbackChain::builder()
        .provider(only.clone(), b.clone())
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    assert!(matches!(e.summary_kind(), ErrorKind::RateLimited { .. }));
    assert_eq!(
        e.retry_after,
        Some(Duration::from_secs(10)),
        "time until the hold ends"
    );
    assert!(b.hold().is_held());
    // Still held, but the only provider: it is called, not refused.
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.text, "here");
    assert_eq!(r.attempts[0].outcome, AttemptOutcome::Success);
    assert_eq!(only.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_mid_request_hold_reorders_the_rest_of_that_request() {
    // a fails, b is rate limited while the request runs, c is held from the start.
    let a = ScriptedProvider::new("a").script([Step::fail(ErrorKind::Server)]);
    let b = ScriptedProvider::new("b").script([rate_limited(30)]);
    let c = ScriptedProvider::new("c").script([Step::reply("c")]);
    let d = ScriptedProvider::new("d").script([Step::reply("d")]);
    let cb = CircuitBreaker::new("c");
    cb.hold().hold_for(Duration::from_secs(30));
    let chain = FallbackChain::builder()
        .provider(a, CircuitBreaker::new("a"))
        .provider(b, CircuitBreaker::new("b"))
        .provider(c, cb)
        .provider(d, CircuitBreaker::new("d"))
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(order(&r), ["a", "b", "d"]);
}

#[tokio::test(start_paused = true)]
async fn holds_are_capped_and_grow_without_hints() {
    let p = ScriptedProvider::new("p")
        .script([Step::fail(ErrorKind::RateLimited { retry_after: None })]);
    let b = CircuitBreaker::new("p");
    let chain = FallbackChain::builder()
        .provider(p.clone(), b.clone())
        .build()
        .unwrap();
    let mut holds = Vec::new();
    for _ in 0..8 {
        chain.generate("hi").await.unwrap_err();
        holds.push(b.hold().remaining().unwrap().as_secs());
        tokio::time::advance(b.hold().remaining().unwrap()).await;
    }
    assert_eq!(
        holds,
        [1, 2, 4, 8, 16, 32, 60, 60],
        "doubling up to the 60 s cap"
    );
    assert_eq!(b.state(), BreakerState::Closed, "never a breaker failure");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_storm_on_one_provider_moves_its_traffic_to_the_others() {
    let primary = ScriptedProvider::new("primary").script([rate_limited(1)]);
    let secondary = ScriptedProvider::new("secondary").script([Step::reply("ok")]);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), CircuitBreaker::new("primary"))
        .provider(secondary.clone(), CircuitBreaker::new("secondary"))
        .build()
        .unwrap();
    // 100 requests per second for 10 s: the primary is called once per hold, not per request.
    for _ in 0..1000 {
        assert_eq!(
            chain.generate("hi").await.unwrap().provider_used,
            "secondary"
        );
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert_eq!(secondary.calls(), 1000);
    assert!(
        primary.calls() <= 11,
        "one probe per 1 s hold, got {}",
        primary.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn weighted_chains_put_held_providers_last_too() {
    let a = ScriptedProvider::new("a").script([Step::reply("a")]);
    let b = ScriptedProvider::new("b").script([Step::reply("b")]);
    let ab = CircuitBreaker::new("a");
    ab.hold().hold_for(Duration::from_secs(60));
    let chain = FallbackChain::weighted()
        .provider(a.clone(), ab, 100.0)
        .provider(b, CircuitBreaker::new("b"), 0.01)
        .build()
        .unwrap();
    for _ in 0..50 {
        assert_eq!(chain.generate("hi").await.unwrap().provider_used, "b");
    }
    assert_eq!(a.calls(), 0);
}
