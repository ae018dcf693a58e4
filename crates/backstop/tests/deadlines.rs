//! Backoff, attempt timeouts, the request deadline and cancellation, on virtual time.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    AttemptOutcome, BreakerConfig, BreakerState, ChatRequest, CircuitBreaker, ErrorKind,
    FallbackChain, RetryPolicy,
};
use tokio::time::Instant;

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

/// A provider that fails with `Server` and records the virtual time of every call.
fn timed_failing(name: &str) -> (ScriptedProvider, Arc<Mutex<Vec<Instant>>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let p = ScriptedProvider::from_fn(name, move |_| {
        t.lock().unwrap().push(Instant::now());
        Step::fail(ErrorKind::Server)
    });
    (p, times)
}

#[tokio::test(start_paused = true)]
async fn backoff_between_retries_stays_under_the_exponential_ceiling_and_is_jittered() {
    let policy = RetryPolicy::default()
        .max_retries(2)
        .base_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_millis(150));
    let mut first_gaps = HashSet::new();
    for _ in 0..40 {
        let (primary, times) = timed_failing("primary");
        let chain = FallbackChain::builder()
            .provider(primary.clone(), breaker("primary"))
            .retry_policy(policy)
            .build()
            .unwrap();
        let start = Instant::now();
        let e = chain.generate("hi").await.unwrap_err();
        assert_eq!(primary.calls(), 3);
        assert_eq!(e.attempts.len(), 3);
        let times = times.lock().unwrap().clone();
        assert_eq!(times[0], start, "the first attempt does not wait");
        let gap1 = times[1] - times[0];
        let gap2 = times[2] - times[1];
        assert!(gap1 <= policy.backoff_ceiling(0), "gap1 {gap1:?}");
        assert!(gap2 <= policy.backoff_ceiling(1), "gap2 {gap2:?}");
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(150));
        assert_eq!(
            start.elapsed(),
            gap1 + gap2,
            "no wait after the last attempt"
        );
        first_gaps.insert(gap1);
    }
    // Tokio's timer resolves sleeps to whole milliseconds, so 40 draws from [0, 100 ms] land
    // on ~33 distinct values on average; a fixed wait would give 1. Above 20 is ~5 sd clear.
    assert!(
        first_gaps.len() > 20,
        "full jitter: waits differ ({} distinct of 40)",
        first_gaps.len()
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_never_sleeps_past_the_request_deadline() {
    let deadline = Duration::from_millis(50);
    // Many draws: a wait just short of the deadline (within the timer's millisecond) used to
    // wake at it about once in a few hundred runs.
    for _ in 0..3000 {
        let (primary, _) = timed_failing("primary");
        let secondary = ScriptedProvider::new("secondary");
        let chain = FallbackChain::builder()
            .provider(primary.clone(), breaker("primary"))
            .provider(secondary.clone(), breaker("secondary"))
            .retry_policy(
                RetryPolicy::default()
                    .max_retries(5)
                    .base_backoff(Duration::from_secs(1))
                    .max_backoff(Duration::from_secs(1)),
            )
            .build()
            .unwrap();
        let start = Instant::now();
        let r = chain
            .generate(ChatRequest::user("hi").timeout(deadline))
            .await
            .unwrap();
        assert!(start.elapsed() < deadline, "elapsed {:?}", start.elapsed());
        assert_eq!(
            r.provider_used, "secondary",
            "time was left for the secondary"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_longer_than_time_left_moves_on_without_waiting() {
    let primary = ScriptedProvider::new("primary").script([
        Step::fail(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        }),
        Step::reply("primary"),
    ]);
    let secondary = ScriptedProvider::new("secondary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker("primary"))
        .provider(secondary.clone(), breaker("secondary"))
        .retries_per_provider(3)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(primary.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn overall_timeout_on_a_hanging_primary_counts_a_timeout_and_names_it() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let secondary = ScriptedProvider::new("secondary");
    let third = ScriptedProvider::new("third");
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(secondary.clone(), breaker("secondary"))
        .provider(third.clone(), breaker("third"))
        .retries_per_provider(2)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let e = chain.generate("hi").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(e.deadline_exceeded);
    assert_eq!(primary.calls(), 1, "no retry after the deadline");
    assert_eq!(secondary.calls(), 0);
    assert_eq!(b.snapshot().failures_in_window, 1, "the timeout counts");
    assert_eq!(e.errors[0].provider, "primary");
    assert_eq!(e.errors[0].error.kind, ErrorKind::Timeout);
    let names: Vec<_> = e.errors.iter().map(|f| f.provider.as_str()).collect();
    assert_eq!(names, ["primary", "secondary", "third"]);
    assert_eq!(e.summary_kind(), ErrorKind::Timeout);
    let text = e.to_string();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "a header and one line per provider:\n{text}"
    );
    assert!(lines[0].contains("deadline"), "{text}");
    assert!(
        lines[1].contains("primary") && lines[1].contains("timeout"),
        "{text}"
    );
    assert!(lines[2].contains("secondary"));
    assert!(lines[3].contains("third"));
}

#[tokio::test(start_paused = true)]
async fn request_timeout_overrides_the_chain_timeout() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let start = Instant::now();
    let e = chain
        .generate(ChatRequest::user("hi").timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert!(e.deadline_exceeded);
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].error.kind, ErrorKind::Timeout);
    assert_eq!(b.snapshot().failures_in_window, 1);
}

#[tokio::test(start_paused = true)]
async fn deadline_spans_every_provider() {
    // Each provider answers after 400 ms; a 1 s deadline leaves no time for the third.
    let slow_fail = |name: &str| {
        ScriptedProvider::new(name).script([Step::delay(
            Duration::from_millis(400),
            Step::fail(ErrorKind::Server),
        )])
    };
    let (a, b, c) = (slow_fail("a"), slow_fail("b"), slow_fail("c"));
    let bc = breaker("c");
    let chain = FallbackChain::builder()
        .provider(a.clone(), breaker("a"))
        .provider(b.clone(), breaker("b"))
        .provider(c.clone(), bc.clone())
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let e = chain.generate("hi").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(e.deadline_exceeded);
    assert_eq!(
        c.calls(),
        1,
        "the third attempt got the 200 ms that were left"
    );
    assert_eq!(e.errors[2].error.kind, ErrorKind::Timeout);
    assert_eq!(e.errors[0].error.kind, ErrorKind::Server);
    assert_eq!(bc.snapshot().failures_in_window, 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_moves_on_to_the_secondary() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let secondary = ScriptedProvider::new("secondary").script([Step::reply("second")]);
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(secondary.clone(), breaker("secondary"))
        .attempt_timeout(Duration::from_millis(250))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(r.text, "second");
    assert_eq!(b.snapshot().failures_in_window, 1);
    assert_eq!(r.attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(
        r.attempts[0].error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Timeout)
    );
    assert_eq!(r.attempts[0].latency, Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_from_outside_is_neutral() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let secondary = ScriptedProvider::new("secondary");
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(secondary.clone(), breaker("secondary"))
        .build()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), chain.generate("hi")).await;
    assert!(outcome.is_err());
    assert_eq!(primary.calls(), 1);
    assert_eq!(
        secondary.calls(),
        0,
        "a cancelled request does not fall through"
    );
    assert_eq!(
        b.snapshot().failures_in_window,
        0,
        "cancellation is not a failure"
    );
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_frees_a_half_open_probe_slot() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .build()
        .unwrap();
    b.trip();
    tokio::time::advance(b.config().recovery_timeout).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    tokio::select! {
        _ = chain.generate("hi") => panic!("the primary hangs"),
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    assert_eq!(primary.calls(), 1);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "neutral: still half-open"
    );
    assert!(b.admits(), "the probe slot was freed");
    let _probe = b.try_acquire().expect("a new probe is admitted");
}

#[tokio::test(start_paused = true)]
async fn hanging_probe_is_bounded_by_the_attempt_timeout_and_reopens() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let secondary = ScriptedProvider::new("secondary");
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(secondary.clone(), breaker("secondary"))
        .attempt_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    b.trip();
    tokio::time::advance(b.config().recovery_timeout).await;
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(b.state(), BreakerState::Open, "a timed-out probe re-opens");
}

#[tokio::test(start_paused = true)]
async fn provider_options_override_the_chain_attempt_timeout_and_retries() {
    use backstop::ProviderOptions;
    let primary = ScriptedProvider::new("primary").script([Step::delay(
        Duration::from_millis(300),
        Step::reply("slow but fine"),
    )]);
    let flaky = ScriptedProvider::new("flaky").script([Step::fail(ErrorKind::Server)]);
    let chain = FallbackChain::builder()
        .provider_with(
            Arc::new(flaky.clone()),
            breaker("flaky"),
            ProviderOptions::default().retries(0),
        )
        .provider_with(
            Arc::new(primary.clone()),
            breaker("primary"),
            ProviderOptions::default().attempt_timeout(Duration::from_secs(1)),
        )
        .retries_per_provider(3)
        .attempt_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(
        flaky.calls(),
        1,
        "per-provider retries(0) wins over the chain's 3"
    );
    assert_eq!(r.provider_used, "primary");
    assert_eq!(r.text, "slow but fine");
}

#[tokio::test(start_paused = true)]
async fn nested_chains_charge_the_provider_running_when_the_outer_deadline_passes() {
    // outer [a fails after 600 ms, inner [x hangs]] with a 1 s request timeout: the deadline
    // passes while x runs, so x's breaker records the timeout.
    let a = ScriptedProvider::new("a").script([Step::delay(
        Duration::from_millis(600),
        Step::fail(ErrorKind::Server),
    )]);
    let x = ScriptedProvider::new("x").script([Step::hang()]);
    let xb = breaker("x");
    let inner = FallbackChain::builder()
        .name("inner")
        .provider(x.clone(), xb.clone())
        .build()
        .unwrap();
    let outer = FallbackChain::builder()
        .provider(a, breaker("a"))
        .provider(inner, breaker("inner"))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let e = outer.generate("hi").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(e.deadline_exceeded);
    assert_eq!(x.calls(), 1);
    assert_eq!(
        xb.snapshot().failures_in_window,
        1,
        "the innermost provider is charged, not left neutral"
    );
    // However deep: a chain inside a chain inside a chain.
    let y = ScriptedProvider::new("y").script([Step::hang()]);
    let yb = breaker("y");
    let deepest = FallbackChain::builder()
        .name("deepest")
        .provider(y, yb.clone())
        .build()
        .unwrap();
    let middle = FallbackChain::builder()
        .name("middle")
        .provider(deepest, breaker("deepest"))
        .build()
        .unwrap();
    let top = FallbackChain::builder()
        .provider(middle, breaker("middle"))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    top.generate("hi").await.unwrap_err();
    assert_eq!(yb.snapshot().failures_in_window, 1);
}

#[tokio::test(start_paused = true)]
async fn an_error_arriving_exactly_at_the_deadline_reports_the_deadline() {
    let p = ScriptedProvider::new("p").script([Step::delay(
        Duration::from_secs(1),
        Step::fail(ErrorKind::Server),
    )]);
    let chain = FallbackChain::builder()
        .provider(p, breaker("p"))
        .provider(ScriptedProvider::new("q"), breaker("q"))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    assert!(e.deadline_exceeded, "{e}");
    assert_eq!(e.summary_kind(), ErrorKind::Timeout);
    assert_eq!(e.errors[1].provider, "q");
    assert!(!e.errors[1].attempted);
    assert!(e.errors[1].error.message.contains("deadline"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_is_not_slept_for_when_other_traffic_opened_the_breaker() {
    let hint = Duration::from_secs(1);
    let b = breaker("primary");
    // Other traffic opens the primary's breaker while this request's 429 comes back.
    let other = b.clone();
    let primary = ScriptedProvider::from_fn("primary", move |_| {
        other.trip();
        Step::fail(ErrorKind::RateLimited {
            retry_after: Some(hint),
        })
    });
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(
            ScriptedProvider::new("secondary").script([Step::reply("ok")]),
            breaker("secondary"),
        )
        .retries_per_provider(1)
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no sleep before a refused retry"
    );
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(primary.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_falls_through_at_once_without_a_same_provider_retry() {
    let primary = ScriptedProvider::new("primary").script([Step::hang()]);
    let secondary = ScriptedProvider::new("secondary").script([Step::reply("ok")]);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker("primary"))
        .provider(secondary, breaker("secondary"))
        .retries_per_provider(3)
        .attempt_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "one timeout, not four"
    );
    assert_eq!(r.provider_used, "secondary");
    assert_eq!(primary.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_request_marked_as_caller_timed_counts_a_timeout() {
    let p = ScriptedProvider::new("p").script([Step::hang()]);
    let b = breaker("p");
    let chain = FallbackChain::builder()
        .provider(p, b.clone())
        .build()
        .unwrap();
    let req = ChatRequest::user("hi").drop_counts_as_timeout(true);
    let r = tokio::time::timeout(Duration::from_secs(5), chain.generate(req)).await;
    assert!(r.is_err(), "the caller's timeout fired");
    assert_eq!(b.snapshot().failures_in_window, 1, "counted as a failure");
    // Without the mark, dropping stays neutral.
    let r = tokio::time::timeout(Duration::from_secs(5), chain.generate("hi")).await;
    assert!(r.is_err());
    assert_eq!(b.snapshot().failures_in_window, 1);
}
