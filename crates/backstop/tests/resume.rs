//! Stream resume: a committed stream that breaks is continued by the next provider, and the
//! caller sees one stream — the first provider's text, then the continuation, one finish.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    AttemptOutcome, BreakerConfig, CircuitBreaker, ErrorKind, FallbackChain, FallbackStream,
    FinishReason,
};
use futures_util::StreamExt;
use tokio::time::Instant;

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

fn chain(providers: &[&ScriptedProvider], breakers: &[CircuitBreaker]) -> FallbackChain {
    retrying(providers, breakers, 0)
}

/// A resuming chain with `retries` per provider.
fn retrying(
    providers: &[&ScriptedProvider],
    breakers: &[CircuitBreaker],
    retries: u32,
) -> FallbackChain {
    providers
        .iter()
        .zip(breakers)
        .fold(FallbackChain::builder(), |b, (p, br)| {
            b.provider((*p).clone(), br.clone())
        })
        .stream_resume(true)
        .retries_per_provider(retries)
        .idle_timeout(Duration::from_secs(1))
        .build()
        .unwrap()
}

/// The whole stream: text, finish reasons seen, the terminal error if any.
async fn drain(s: &mut FallbackStream) -> (String, Vec<FinishReason>, Option<ErrorKind>) {
    let mut text = String::new();
    let mut finishes = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => {
                text.push_str(&c.text);
                finishes.extend(c.finish_reason);
            }
            Err(e) => {
                assert!(s.next().await.is_none(), "nothing after the terminal error");
                return (text, finishes, Some(e.kind));
            }
        }
    }
    (text, finishes, None)
}

fn contributions(s: &FallbackStream) -> Vec<(&str, usize)> {
    s.contributions()
        .iter()
        .map(|c| (c.provider.as_str(), c.offset))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn stream_resumes_on_next_provider() {
    for kind in [
        ErrorKind::Connect,
        ErrorKind::Protocol,
        ErrorKind::Overloaded,
    ] {
        let a = ScriptedProvider::new("a").script([Step::chunks_then_fail(["Hel", "lo "], kind)]);
        let b = ScriptedProvider::new("b").script([Step::chunks(["wor", "ld."])]);
        let (ab, bb) = (breaker("a"), breaker("b"));
        let c = chain(&[&a, &b], &[ab.clone(), bb.clone()]);
        let mut s = c.stream("hi").await.unwrap();
        let (text, finishes, error) = drain(&mut s).await;
        assert_eq!(text, "Hello world.", "{kind:?}");
        assert_eq!(finishes, [FinishReason::Stop], "exactly one finish");
        assert_eq!(error, None);
        assert_eq!(contributions(&s), [("a", 0), ("b", 6)]);
        assert_eq!(s.resumes(), 1);
        assert_eq!((s.provider_used(), s.current_provider()), ("a", "b"));
        assert_eq!(ab.snapshot().failures_in_window, 1, "the break counts on a");
        assert_eq!(bb.snapshot().failures_in_window, 0);
        let last = s.attempts().last().unwrap();
        assert_eq!(
            (last.provider.as_str(), last.outcome),
            ("b", AttemptOutcome::Success)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_resumes_after_the_idle_timeout() {
    let a = ScriptedProvider::new("a").script([Step::chunks_then_hang(["one ", "two "])]);
    let b = ScriptedProvider::new("b").script([Step::chunks(["three"])]);
    let c = chain(&[&a, &b], &[breaker("a"), breaker("b")]);
    let start = Instant::now();
    let mut s = c.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!(text, "one two three");
    assert_eq!(error, None);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "one idle timeout, then b"
    );
}

#[tokio::test(start_paused = true)]
async fn the_seam_drops_a_restatement_of_the_delivered_text() {
    let a = ScriptedProvider::new("a").script([Step::chunks_then_fail(
        ["The cat ", "sat on"],
        ErrorKind::Connect,
    )]);
    let b = ScriptedProvider::new("b").script([Step::chunks([" sat", " on", " the mat."])]);
    let c = chain(&[&a, &b], &[breaker("a"), breaker("b")]);
    let mut s = c.stream("hi").await.unwrap();
    assert_eq!(drain(&mut s).await.0, "The cat sat on the mat.");
}

#[tokio::test(start_paused = true)]
async fn a_target_that_refuses_prefill_is_asked_in_words_and_remembered() {
    let a = ScriptedProvider::new("a").script([Step::chunks_then_fail(["x "], ErrorKind::Connect)]);
    // The prefill request gets a 400, the quoted form answers.
    let b = ScriptedProvider::new("b")
        .script([Step::fail(ErrorKind::InvalidRequest), Step::chunks(["y"])]);
    let bb = breaker("b");
    let c = chain(&[&a, &b], &[breaker("a"), bb.clone()]);
    let mut s = c.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!((text.as_str(), error), ("x y", None));
    assert_eq!(b.calls(), 2, "prefill refused, then asked");
    assert_eq!(
        bb.snapshot().failures_in_window,
        0,
        "a 400 to prefill is not a failure"
    );
    let outcomes: Vec<_> = s
        .attempts()
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a", AttemptOutcome::Success),
            ("b", AttemptOutcome::Failed),
            ("b", AttemptOutcome::Success)
        ]
    );
    // The next resume on b goes straight to the form that worked.
    a.push([Step::chunks_then_fail(["x "], ErrorKind::Connect)]);
    b.push([Step::chunks(["z"])]);
    let mut s = c.stream("hi").await.unwrap();
    assert_eq!(drain(&mut s).await.0, "x z");
    assert_eq!(b.calls(), 3, "no second prefill try");
}

#[tokio::test(start_paused = true)]
async fn when_every_continuation_fails_the_caller_gets_the_original_failure() {
    let a = ScriptedProvider::new("a").script([
        Step::chunks_then_fail(["part "], ErrorKind::Overloaded),
        Step::fail(ErrorKind::Overloaded),
    ]);
    let b = ScriptedProvider::new("b").script([Step::fail(ErrorKind::InvalidRequest)]);
    let c3 = ScriptedProvider::new("c").script([Step::fail(ErrorKind::Server)]);
    let ch = retrying(
        &[&a, &b, &c3],
        &[breaker("a"), breaker("b"), breaker("c")],
        1,
    );
    let mut s = ch.stream("hi").await.unwrap();
    let (text, finishes, error) = drain(&mut s).await;
    assert_eq!(text, "part ");
    assert!(finishes.is_empty());
    assert_eq!(
        error,
        Some(ErrorKind::Overloaded),
        "not the continuation's 400 or 500"
    );
    assert_eq!(b.calls(), 2, "prefill, then the quoted form");
    assert_eq!(c3.calls(), 2, "a 500 is retried as on a first attempt");
    assert_eq!(
        a.calls(),
        3,
        "the broken provider is asked last, and retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_continuation_is_retried_like_a_first_attempt() {
    let a = ScriptedProvider::new("a").script([
        Step::chunks_then_fail(["one "], ErrorKind::Connect),
        Step::fail(ErrorKind::Server),
    ]);
    let b =
        ScriptedProvider::new("b").script([Step::fail(ErrorKind::Server), Step::chunks(["two"])]);
    let ch = retrying(&[&a, &b], &[breaker("a"), breaker("b")], 1);
    let mut s = ch.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!((text.as_str(), error), ("one two", None));
    assert_eq!(b.calls(), 2, "one 500, then the retry continued the answer");
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_failed_before_the_commit_may_continue_the_stream() {
    // a fails every first-attempt try, b answers and breaks; by then a works again.
    let a = ScriptedProvider::new("a").script([
        Step::fail(ErrorKind::Server),
        Step::fail(ErrorKind::Server),
        Step::chunks(["rest"]),
    ]);
    let b = ScriptedProvider::new("b").script([
        Step::chunks_then_fail(["start "], ErrorKind::Connect),
        Step::fail(ErrorKind::Connect),
    ]);
    let ch = retrying(&[&a, &b], &[breaker("a"), breaker("b")], 1);
    let mut s = ch.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!((text.as_str(), error), ("start rest", None));
    assert_eq!(contributions(&s), [("b", 0), ("a", 6)]);
}

#[tokio::test(start_paused = true)]
async fn resumes_are_bounded_by_max_resumes() {
    let fails = |name: &str, text: &'static str| {
        ScriptedProvider::new(name).script([Step::chunks_then_fail([text], ErrorKind::Connect)])
    };
    let (a, b, c3, d) = (
        fails("a", "1 "),
        fails("b", "2 "),
        fails("c", "3 "),
        fails("d", "4 "),
    );
    let e = ScriptedProvider::new("e").script([Step::chunks(["5"])]);
    let ch = chain(
        &[&a, &b, &c3, &d, &e],
        &[
            breaker("a"),
            breaker("b"),
            breaker("c"),
            breaker("d"),
            breaker("e"),
        ],
    );
    let mut s = ch.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!(text, "1 2 3 4 ");
    assert_eq!(error, Some(ErrorKind::Connect));
    assert_eq!(s.resumes(), 3, "the default is three");
    assert_eq!(e.calls(), 0, "a fourth resume is not made");
}

#[tokio::test(start_paused = true)]
async fn resumes_stay_inside_the_request_deadline() {
    let a = ScriptedProvider::new("a").script([Step::chunks_then_hang(["slow "])]);
    let b = ScriptedProvider::new("b").script([Step::hang()]);
    let ch = FallbackChain::builder()
        .provider(a, breaker("a"))
        .provider(b.clone(), breaker("b"))
        .stream_resume(true)
        .idle_timeout(Duration::from_millis(600))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let mut s = ch.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!(text, "slow ");
    assert_eq!(error, Some(ErrorKind::Timeout));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the continuation gets only what is left"
    );
    assert_eq!(b.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_stream_resume_a_break_is_one_terminal_error() {
    let a =
        ScriptedProvider::new("a").script([Step::chunks_then_fail(["part "], ErrorKind::Connect)]);
    let b = ScriptedProvider::new("b").script([Step::chunks(["rest"])]);
    let ch = FallbackChain::builder()
        .provider(a, breaker("a"))
        .provider(b.clone(), breaker("b"))
        .build()
        .unwrap();
    let mut s = ch.stream("hi").await.unwrap();
    let (text, _, error) = drain(&mut s).await;
    assert_eq!((text.as_str(), error), ("part ", Some(ErrorKind::Connect)));
    assert_eq!(b.calls(), 0);
}
