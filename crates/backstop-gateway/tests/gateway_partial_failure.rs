//! Partial failure over HTTP: rate limits hold a provider instead of opening its breaker, the
//! holds show in `/v1/breakers` and `/metrics`, a content-filter refusal reaches the caller,
//! and every final error tells the client whether (and when) retrying can help.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use backstop_sim::Fault;
use support::{Spec, TestGateway, chat_body, expect_error, header, metric};

fn always(gw: &TestGateway, provider: &str, fault: Fault) {
    gw.sim(provider).set_random(fault, 1.0);
}

fn rate_limited_ms(ms: u64) -> Fault {
    Fault::RateLimited {
        retry_after_secs: None,
        retry_after_ms: Some(ms),
        retry_after_http_date: false,
    }
}

#[tokio::test]
async fn a_429_holds_the_provider_without_opening_its_breaker() {
    let gw = TestGateway::start().await;
    gw.sim("openai").fail_next(1, rate_limited_ms(30_000));
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-backstop-provider"), Some("anthropic"));
    let b = gw.breaker("openai").await;
    assert_eq!(b["state"], "closed", "{b}");
    let held = b["hold_remaining_ms"]
        .as_u64()
        .expect("hold in /v1/breakers");
    assert!((29_000..=30_000).contains(&held), "{b}");
    // While held the primary is not called: the next answer comes from anthropic directly.
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(header(&r, "x-backstop-provider"), Some("anthropic"));
    assert_eq!(header(&r, "x-backstop-attempts"), Some("1"));
    assert_eq!(gw.sim("openai").request_count(), 1);
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "backstop_rate_limit_holds_total{provider=\"openai\"}"),
        1.0
    );
    let left = metric(&m, "backstop_rate_limit_hold_seconds{provider=\"openai\"}");
    assert!((29.0..=30.0).contains(&left), "{left}");
    assert_eq!(
        metric(
            &m,
            "backstop_breaker_state{provider=\"openai\",state=\"closed\"}"
        ),
        1.0,
        "closed"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn all_rate_limited_is_429_with_a_millisecond_retry_after() {
    let gw = TestGateway::start().await;
    for (p, ms) in [("openai", 4_500), ("anthropic", 1_500), ("groq", 9_000)] {
        always(&gw, p, rate_limited_ms(ms));
    }
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(r.status(), 429);
    let ms: u64 = header(&r, "retry-after-ms").unwrap().parse().unwrap();
    assert!(
        (1_400..=1_500).contains(&ms),
        "the first provider back: {ms}"
    );
    assert_eq!(
        header(&r, "retry-after"),
        Some("1"),
        "whole seconds, rounded down"
    );
    assert_eq!(header(&r, "x-should-retry"), Some("false"));
    expect_error(r, 429).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn every_breaker_open_is_503_saying_when_one_half_opens() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    for p in support::PROVIDERS {
        gw.admin(p, "trip").await;
    }
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(r.status(), 503);
    let ms: u64 = header(&r, "retry-after-ms").unwrap().parse().unwrap();
    assert!((9_000..=10_000).contains(&ms), "recovery is 10 s: {ms}");
    assert_eq!(header(&r, "x-should-retry"), Some("false"));
    expect_error(r, 503).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn errors_after_the_chain_retried_or_ran_out_of_time_say_do_not_retry() {
    let gw = TestGateway::start().await;
    for p in support::PROVIDERS {
        always(&gw, p, Fault::Status(500));
    }
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(
        header(&r, "x-should-retry"),
        Some("false"),
        "three providers were tried"
    );
    assert!(header(&r, "retry-after").is_none());
    expect_error(r, 502).await;
    gw.shutdown().await;

    // One provider, one attempt, breaker still closed: the chain did not retry and the
    // provider takes calls, so the client may retry.
    let gw = TestGateway::start().await;
    gw.sim("openai").fail_next(1, Fault::Status(500));
    let r = gw.chat(&chat_body("solo", "hi")).await;
    assert_eq!(r.status(), 502);
    assert!(header(&r, "x-should-retry").is_none(), "{:?}", r.headers());
    gw.shutdown().await;

    let gw = TestGateway::start_with(Spec {
        chain_timeout: "300ms",
        ..Spec::default()
    })
    .await;
    always(&gw, "openai", Fault::Hang);
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(r.status(), 504);
    assert_eq!(header(&r, "x-should-retry"), Some("false"));
    gw.shutdown().await;
}

#[tokio::test]
async fn a_content_filter_refusal_reaches_the_caller_with_the_providers_reason() {
    let gw = TestGateway::start().await;
    always(&gw, "openai", Fault::ContentFilter);
    let r = gw.chat(&chat_body("default", "hi")).await;
    let e = expect_error(r, 400).await;
    assert_eq!(e["code"], "content_filter");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("content management policy"),
        "the provider's reason: {msg}"
    );
    assert_eq!(gw.sim("anthropic").request_count(), 0, "not routed around");
    let b = gw.breaker("openai").await;
    assert_eq!(b["failures_in_window"], 0, "not counted");
    gw.shutdown().await;
}

#[tokio::test]
async fn quota_exhaustion_fails_over_and_counts_on_the_breaker() {
    let gw = TestGateway::start().await;
    always(&gw, "openai", Fault::Status(402));
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(header(&r, "x-backstop-provider"), Some("anthropic"));
    assert_eq!(gw.sim("openai").request_count(), 1, "quota is not retried");
    let b = gw.breaker("openai").await;
    assert_eq!(b["failures_in_window"], 1);
    assert!(
        b["hold_remaining_ms"].is_null(),
        "quota is not a rate limit"
    );
    gw.shutdown().await;
}
