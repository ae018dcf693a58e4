//! The chain's public surface: inputs, the result record, observers and nesting.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    Attempt, AttemptOutcome, BreakerConfig, BreakerState, ChatRequest, CircuitBreaker, ErrorKind,
    FallbackChain, FinishReason, Message, Observer, Provider, RequestSummary, Usage,
};

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

#[tokio::test(start_paused = true)]
async fn generate_accepts_str_string_and_chat_request() {
    let p = ScriptedProvider::new("p").script([Step::reply("ok")]);
    let chain = FallbackChain::builder()
        .provider(p.clone(), breaker("p"))
        .build()
        .unwrap();
    assert_eq!(chain.generate("prompt").await.unwrap().text, "ok");
    assert_eq!(
        chain.generate(String::from("prompt")).await.unwrap().text,
        "ok"
    );
    let req = ChatRequest::new(vec![Message::system("be brief"), Message::user("prompt")]);
    assert_eq!(chain.generate(req.clone()).await.unwrap().text, "ok");
    assert_eq!(chain.generate(&req).await.unwrap().text, "ok");
    assert_eq!(chain.generate_request(&req).await.unwrap().text, "ok");
    assert_eq!(p.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn result_records_provider_model_usage_finish_reason_and_every_attempt() {
    let skipped = ScriptedProvider::new("skipped");
    let failing = ScriptedProvider::new("failing").script([Step::fail(ErrorKind::Overloaded)]);
    let good = ScriptedProvider::new("good").script([Step::delay(
        Duration::from_millis(40),
        Step::reply("three word answer"),
    )]);
    let skipped_breaker = breaker("skipped-breaker");
    skipped_breaker.trip();
    let chain = FallbackChain::builder()
        .provider(skipped.clone(), skipped_breaker)
        .provider(failing.clone(), breaker("failing-breaker"))
        .provider(good.clone(), breaker("good-breaker"))
        .retries_per_provider(1)
        .retry_policy(
            backstop::RetryPolicy::default()
                .max_retries(1)
                .base_backoff(Duration::ZERO),
        )
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.text, "three word answer");
    assert_eq!(
        r.provider_used, "good-breaker",
        "provider_used is the breaker's name"
    );
    assert_eq!(r.model, "good-model");
    assert_eq!(r.usage, Some(Usage::new(1, 3)));
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    let summary: Vec<(&str, AttemptOutcome, Option<ErrorKind>)> = r
        .attempts
        .iter()
        .map(|a| {
            (
                a.provider.as_str(),
                a.outcome,
                a.error.as_ref().map(|e| e.kind),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "skipped-breaker",
                AttemptOutcome::Skipped,
                Some(ErrorKind::CircuitOpen)
            ),
            (
                "failing-breaker",
                AttemptOutcome::Failed,
                Some(ErrorKind::Overloaded)
            ),
            (
                "failing-breaker",
                AttemptOutcome::Failed,
                Some(ErrorKind::Overloaded)
            ),
            ("good-breaker", AttemptOutcome::Success, None),
        ]
    );
    assert_eq!(r.attempts[3].latency, Duration::from_millis(40));
    assert_eq!(r.attempts[0].latency, Duration::ZERO);
    assert_eq!(skipped.calls(), 0);
    assert_eq!(failing.calls(), 2);
    let c = r.into_completion();
    assert_eq!(c.text, "three word answer");
}

#[tokio::test(start_paused = true)]
async fn all_failed_lists_every_provider_in_order_with_its_last_error() {
    let a = ScriptedProvider::new("a").script([
        Step::fail(ErrorKind::Server),
        Step::fail(ErrorKind::Connect),
    ]);
    let b = ScriptedProvider::new("b").script([Step::fail(ErrorKind::Auth)]);
    let chain = FallbackChain::builder()
        .provider(a.clone(), breaker("a"))
        .provider(b.clone(), breaker("b"))
        .retry_policy(
            backstop::RetryPolicy::default()
                .max_retries(1)
                .base_backoff(Duration::ZERO),
        )
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    assert!(!e.deadline_exceeded);
    let errs: Vec<_> = e
        .errors
        .iter()
        .map(|f| (f.provider.as_str(), f.error.kind))
        .collect();
    assert_eq!(errs, [("a", ErrorKind::Connect), ("b", ErrorKind::Auth)]);
    assert_eq!(e.attempts.len(), 3);
    assert_eq!(
        e.summary_kind(),
        ErrorKind::Server,
        "mixed kinds sum up as Server"
    );
    let text = e.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
}

/// (chain, provider_used, attempts, fell_back, streamed)
type RequestRow = (String, Option<String>, usize, bool, bool);

#[derive(Default)]
struct Recorder {
    attempts: Mutex<Vec<(String, Attempt)>>,
    requests: Mutex<Vec<RequestRow>>,
}

impl Observer for Recorder {
    fn on_attempt(&self, chain: &str, attempt: &Attempt) {
        self.attempts
            .lock()
            .unwrap()
            .push((chain.to_owned(), attempt.clone()));
    }
    fn on_request(&self, s: &RequestSummary<'_>) {
        self.requests.lock().unwrap().push((
            s.chain.to_owned(),
            s.provider_used.map(str::to_owned),
            s.attempts.len(),
            s.fell_back,
            s.streamed,
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn observer_sees_each_attempt_and_each_request() {
    let first = ScriptedProvider::new("first").script([
        Step::fail(ErrorKind::Server),
        Step::reply("first ok"),
        Step::fail(ErrorKind::Auth),
    ]);
    // "second" is only called by requests 1 and 3.
    let second = ScriptedProvider::new("second")
        .script([Step::reply("second ok"), Step::fail(ErrorKind::Auth)]);
    let rec = Arc::new(Recorder::default());
    let chain = FallbackChain::builder()
        .name("watched")
        .provider(first.clone(), breaker("first"))
        .provider(second.clone(), breaker("second"))
        .observer(rec.clone())
        .build()
        .unwrap();
    assert_eq!(chain.name(), "watched");

    let r = chain.generate("1").await.unwrap();
    assert_eq!(r.provider_used, "second");
    {
        let attempts = rec.attempts.lock().unwrap();
        assert_eq!(attempts.len(), 2);
        assert!(attempts.iter().all(|(c, _)| c == "watched"));
        assert_eq!(attempts[0].1, r.attempts[0]);
        assert_eq!(attempts[1].1, r.attempts[1]);
        let reqs = rec.requests.lock().unwrap();
        assert_eq!(
            *reqs,
            [(
                "watched".to_owned(),
                Some("second".to_owned()),
                2,
                true,
                false
            )]
        );
    }

    chain.generate("2").await.unwrap();
    {
        let reqs = rec.requests.lock().unwrap();
        assert_eq!(
            reqs[1],
            (
                "watched".to_owned(),
                Some("first".to_owned()),
                1,
                false,
                false
            )
        );
    }

    chain.generate("3").await.unwrap_err();
    let reqs = rec.requests.lock().unwrap();
    assert_eq!(reqs[2], ("watched".to_owned(), None, 2, false, false));
    assert_eq!(rec.attempts.lock().unwrap().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn observer_marks_streamed_requests() {
    let rec = Arc::new(Recorder::default());
    let chain = FallbackChain::builder()
        .provider(ScriptedProvider::new("p"), breaker("p"))
        .observer(rec.clone())
        .build()
        .unwrap();
    let _s = chain.stream("hi").await.unwrap();
    let reqs = rec.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].4, "streamed");
}

#[tokio::test(start_paused = true)]
async fn nested_chain_that_fails_lets_the_outer_chain_fall_through() {
    let inner_a = ScriptedProvider::new("inner-a").script([Step::fail(ErrorKind::Server)]);
    let inner_b = ScriptedProvider::new("inner-b").script([Step::fail(ErrorKind::Overloaded)]);
    let inner = FallbackChain::builder()
        .name("inner")
        .provider(inner_a.clone(), breaker("inner-a"))
        .provider(inner_b.clone(), breaker("inner-b"))
        .build()
        .unwrap();
    assert_eq!(Provider::name(&inner), "inner");
    let outer_backup = ScriptedProvider::new("backup").script([Step::reply("from backup")]);
    let inner_breaker = breaker("inner");
    let outer = FallbackChain::builder()
        .provider(inner.clone(), inner_breaker.clone())
        .provider(outer_backup.clone(), breaker("backup"))
        .build()
        .unwrap();
    let r = outer.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "backup");
    assert_eq!(r.text, "from backup");
    assert_eq!(inner_a.calls(), 1);
    assert_eq!(inner_b.calls(), 1);
    assert_eq!(r.attempts[0].provider, "inner");
    assert_eq!(
        r.attempts[0].error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Server),
        "mixed inner failures sum up as Server"
    );
    assert_eq!(inner_breaker.snapshot().failures_in_window, 1);
}

#[tokio::test(start_paused = true)]
async fn nested_chain_that_answers_is_used_by_the_outer_chain() {
    let inner = FallbackChain::builder()
        .name("inner")
        .provider(
            ScriptedProvider::new("x").script([Step::fail(ErrorKind::Connect)]),
            breaker("x"),
        )
        .provider(
            ScriptedProvider::new("y").script([Step::reply("from y")]),
            breaker("y"),
        )
        .build()
        .unwrap();
    let outer = FallbackChain::builder()
        .provider(inner, breaker("inner"))
        .provider(ScriptedProvider::new("backup"), breaker("backup"))
        .build()
        .unwrap();
    let r = outer.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "inner");
    assert_eq!(r.text, "from y");
    assert_eq!(r.model, "y-model");
    let mut s = outer.stream("hi").await.unwrap();
    assert_eq!(s.provider_used(), "inner");
    use futures_util::StreamExt;
    assert_eq!(s.next().await.unwrap().unwrap().text, "from y");
}

#[tokio::test(start_paused = true)]
async fn breakers_are_listed_in_configured_order() {
    let chain = FallbackChain::builder()
        .provider(ScriptedProvider::new("1"), breaker("one"))
        .provider(ScriptedProvider::new("2"), breaker("two"))
        .build()
        .unwrap();
    let names: Vec<_> = chain.breakers().map(|b| b.name().to_owned()).collect();
    assert_eq!(names, ["one", "two"]);
}

#[tokio::test(start_paused = true)]
async fn retry_blocked_by_a_freshly_opened_breaker_reports_the_real_error() {
    // Threshold 1: the first Server failure opens the breaker, so the retry is skipped. The
    // provider was tried; its error is the Server failure, not "skipped: breaker open".
    let p = ScriptedProvider::new("p").script([Step::fail(ErrorKind::Server)]);
    let b = CircuitBreaker::new("p").failure_threshold(1);
    let chain = FallbackChain::builder()
        .provider(p.clone(), b.clone())
        .retries_per_provider(2)
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let e = chain.generate("hi").await.unwrap_err();
    assert_eq!(p.calls(), 1);
    // The turn ends at once: no backoff is slept before a retry the open breaker would refuse.
    assert_eq!(started.elapsed(), std::time::Duration::ZERO);
    let outcomes: Vec<_> = e.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::Failed]);
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].error.kind, ErrorKind::Server);
    assert_eq!(e.summary_kind(), ErrorKind::Server);
}

#[tokio::test(start_paused = true)]
async fn when_all_open_fail_refuses_without_a_call() {
    let a = ScriptedProvider::new("a").script([Step::reply("a")]);
    let ab = breaker("a");
    ab.trip();
    let chain = FallbackChain::builder()
        .provider(a.clone(), ab)
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    assert_eq!(a.calls(), 0);
    assert_eq!(e.summary_kind(), ErrorKind::Overloaded);
    assert!(
        e.retry_after.is_some(),
        "says when a breaker will half-open"
    );
}

#[tokio::test(start_paused = true)]
async fn when_all_open_probe_sends_one_probe_to_the_breaker_open_longest() {
    let a = ScriptedProvider::new("a").script([Step::reply("a")]);
    let b = ScriptedProvider::new("b").script([Step::reply("b")]);
    let (ab, bb) = (breaker("a"), breaker("b"));
    bb.trip();
    tokio::time::advance(Duration::from_secs(1)).await;
    ab.trip();
    let chain = FallbackChain::builder()
        .provider(a.clone(), ab.clone())
        .provider(b.clone(), bb.clone())
        .when_all_open(backstop::WhenAllOpen::Probe)
        .build()
        .unwrap();
    let r = chain.generate("hi").await.unwrap();
    assert_eq!(r.provider_used, "b", "b's breaker opened longest ago");
    assert_eq!((a.calls(), b.calls()), (0, 1));
    assert_eq!(bb.state(), BreakerState::Closed, "the probe succeeded");
    assert_eq!(ab.state(), BreakerState::Open);
    // A failing probe re-opens its breaker and the request fails with its error.
    let c = ScriptedProvider::new("c").script([Step::fail(ErrorKind::Server)]);
    let cb = breaker("c");
    cb.trip();
    let chain = FallbackChain::builder()
        .provider(c.clone(), cb.clone())
        .when_all_open(backstop::WhenAllOpen::Probe)
        .build()
        .unwrap();
    let e = chain.generate("hi").await.unwrap_err();
    assert_eq!(c.calls(), 1);
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].error.kind, ErrorKind::Server);
    assert_eq!(cb.state(), BreakerState::Open);
}
