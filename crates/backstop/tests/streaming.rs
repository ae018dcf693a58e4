//! Streaming failover: free fall-through before the first content chunk, a terminal error
//! (never a silent truncation or another provider's text) after it.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    BreakerConfig, BreakerState, CircuitBreaker, ErrorKind, FallbackChain, FallbackStream,
    FinishReason,
};
use futures_util::StreamExt;
use tokio::time::Instant;

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

fn two(
    primary: &ScriptedProvider,
    secondary: &ScriptedProvider,
) -> (FallbackChain, CircuitBreaker) {
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(secondary.clone(), breaker("secondary"))
        .build()
        .unwrap();
    (chain, b)
}

/// Drains the stream: texts of Ok items, then the errors, then whether it ended.
async fn drain(s: &mut FallbackStream) -> (Vec<String>, Vec<ErrorKind>) {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => {
                assert!(errors.is_empty(), "no chunk after a terminal error");
                texts.push(c.text)
            }
            Err(e) => errors.push(e.kind),
        }
    }
    (texts, errors)
}

async fn falls_through(step: Step) {
    let primary = ScriptedProvider::new("primary").script([step.clone()]);
    let secondary = ScriptedProvider::new("secondary").script([Step::chunks(["sec", "ond"])]);
    let (chain, b) = two(&primary, &secondary);
    let mut s = chain
        .stream("hi")
        .await
        .unwrap_or_else(|e| panic!("{step:?}: {e}"));
    assert_eq!(s.provider_used(), "secondary", "{step:?}");
    let (texts, errors) = drain(&mut s).await;
    assert_eq!(texts.concat(), "second", "{step:?}");
    assert!(errors.is_empty());
    assert_eq!(primary.calls(), 1);
    assert_eq!(
        b.snapshot().failures_in_window,
        1,
        "{step:?} counts on the primary"
    );
    assert_eq!(s.attempts().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_fails_over_on_an_error_at_open() {
    falls_through(Step::fail(ErrorKind::Overloaded)).await;
}

#[tokio::test(start_paused = true)]
async fn stream_fails_over_after_only_empty_chunks() {
    falls_through(Step::chunks_then_fail(["", ""], ErrorKind::Server)).await;
}

#[tokio::test(start_paused = true)]
async fn stream_fails_over_on_a_stream_that_ends_with_neither_content_nor_finish() {
    falls_through(Step::chunks_then_end(Vec::<String>::new())).await;
    falls_through(Step::chunks_then_end([""])).await;
}

#[tokio::test(start_paused = true)]
async fn a_complete_stream_without_text_is_an_answer() {
    for reason in [FinishReason::Stop, FinishReason::ContentFilter] {
        let primary = ScriptedProvider::new("primary").script([Step::finish(reason.clone())]);
        let secondary = ScriptedProvider::new("secondary").script([Step::reply("second")]);
        let (chain, b) = two(&primary, &secondary);
        let mut s = chain.stream("hi").await.unwrap();
        assert_eq!(s.provider_used(), "primary", "{reason:?}");
        let mut chunks = Vec::new();
        while let Some(item) = s.next().await {
            chunks.push(item.unwrap());
        }
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "");
        assert_eq!(chunks[0].finish_reason, Some(reason.clone()));
        assert_eq!(secondary.calls(), 0, "{reason:?}: no failover");
        assert_eq!(primary.calls(), 1, "{reason:?}: no retry");
        assert_eq!(
            b.snapshot().failures_in_window,
            0,
            "{reason:?}: not a failure"
        );
        // The non-streamed twin agrees.
        let r = chain.generate("hi").await.unwrap();
        assert_eq!((r.provider_used.as_str(), r.text.as_str()), ("primary", ""));
        assert_eq!(r.finish_reason, Some(reason));
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_after_its_finish_chunk_is_a_success_for_the_breaker() {
    let primary = ScriptedProvider::new("primary").script([Step::chunks(["a", "b"])]);
    let secondary = ScriptedProvider::new("secondary");
    let (chain, b) = two(&primary, &secondary);
    b.trip();
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let mut s = chain.stream("hi").await.unwrap();
    loop {
        let chunk = s.next().await.unwrap().unwrap();
        if chunk.finish_reason.is_some() {
            break;
        }
    }
    drop(s); // the caller read the whole answer, then went away before the end of the body
    assert_eq!(b.state(), BreakerState::Closed, "the probe succeeded");
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_finish_leaves_the_probe_neutral() {
    let primary = ScriptedProvider::new("primary").script([Step::chunks(["a", "b"])]);
    let secondary = ScriptedProvider::new("secondary");
    let (chain, b) = two(&primary, &secondary);
    b.trip();
    tokio::time::advance(Duration::from_secs(60)).await;
    let mut s = chain.stream("hi").await.unwrap();
    s.next().await.unwrap().unwrap();
    drop(s);
    assert_eq!(b.state(), BreakerState::HalfOpen, "neutral: still probing");
    assert!(b.admits(), "and the probe slot is free again");
}

#[tokio::test(start_paused = true)]
async fn stream_fails_over_on_time_to_first_token_timeout() {
    for step in [
        Step::hang(),
        Step::delay(Duration::from_secs(5), Step::reply("late")),
        Step::chunks_then_hang([""]),
    ] {
        let primary = ScriptedProvider::new("primary").script([step.clone()]);
        let secondary = ScriptedProvider::new("secondary").script([Step::reply("fast")]);
        let b = breaker("primary");
        let chain = FallbackChain::builder()
            .provider(primary.clone(), b.clone())
            .provider(secondary.clone(), breaker("secondary"))
            .ttft_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let start = Instant::now();
        let mut s = chain.stream("hi").await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(200), "{step:?}");
        assert_eq!(s.provider_used(), "secondary");
        assert_eq!(drain(&mut s).await.0.concat(), "fast");
        assert_eq!(
            s.attempts()[0].error.as_ref().unwrap().kind,
            ErrorKind::Timeout
        );
        assert_eq!(b.snapshot().failures_in_window, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn stream_error_after_first_chunk_is_one_terminal_error_and_no_other_provider() {
    let primary = ScriptedProvider::new("primary")
        .script([Step::chunks_then_fail(["a", "b"], ErrorKind::Protocol)]);
    let secondary = ScriptedProvider::new("secondary").script([Step::reply("SECONDARY")]);
    let (chain, b) = two(&primary, &secondary);
    let mut s = chain.stream("hi").await.unwrap();
    assert_eq!(s.provider_used(), "primary");
    let mut items = Vec::new();
    while let Some(item) = s.next().await {
        items.push(item);
    }
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().text, "a");
    assert_eq!(items[1].as_ref().unwrap().text, "b");
    assert_eq!(items[2].as_ref().unwrap_err().kind, ErrorKind::Protocol);
    assert!(s.next().await.is_none(), "nothing after the end");
    assert_eq!(
        secondary.calls(),
        0,
        "no text from another provider after commit"
    );
    assert_eq!(
        b.snapshot().failures_in_window,
        1,
        "the mid-stream failure counts"
    );
}

#[tokio::test(start_paused = true)]
async fn stream_idle_timeout_ends_a_stalled_stream_with_a_timeout() {
    let primary = ScriptedProvider::new("primary").script([Step::chunks_then_hang(["a", "b"])]);
    let secondary = ScriptedProvider::new("secondary");
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(secondary.clone(), breaker("secondary"))
        .idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut s = chain.stream("hi").await.unwrap();
    let start = Instant::now();
    let (texts, errors) = drain(&mut s).await;
    assert_eq!(texts, ["a", "b"]);
    assert_eq!(errors, [ErrorKind::Timeout]);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(b.snapshot().failures_in_window, 1);
    assert_eq!(secondary.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_does_not_fire_on_steady_slow_chunks() {
    let primary = ScriptedProvider::new("primary").script([Step::spaced_chunks(
        ["a", "b", "c", "d"],
        Duration::from_millis(250),
    )]);
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut s = chain.stream("hi").await.unwrap();
    let start = Instant::now();
    let (texts, errors) = drain(&mut s).await;
    assert_eq!(texts.concat(), "abcd");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(start.elapsed(), Duration::from_millis(750));
}

#[tokio::test(start_paused = true)]
async fn request_deadline_cuts_a_committed_stream_with_a_timeout() {
    let primary = ScriptedProvider::new("primary")
        .script([Step::spaced_chunks(["a", "b", "c"], Duration::from_secs(1))]);
    let b = breaker("primary");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let mut s = chain.stream("hi").await.unwrap();
    let (texts, errors) = drain(&mut s).await;
    assert_eq!(texts, ["a", "b"]);
    assert_eq!(errors, [ErrorKind::Timeout]);
    assert_eq!(b.snapshot().failures_in_window, 1);
}

#[tokio::test(start_paused = true)]
async fn clean_stream_end_closes_a_half_open_breaker() {
    let primary = ScriptedProvider::new("primary")
        .script([Step::spaced_chunks(["x", "y"], Duration::from_millis(10))]);
    let secondary = ScriptedProvider::new("secondary");
    let (chain, b) = two(&primary, &secondary);
    b.trip();
    tokio::time::advance(b.config().recovery_timeout).await;
    let mut s = chain.stream("hi").await.unwrap();
    assert_eq!(s.provider_used(), "primary");
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "the probe is still streaming"
    );
    assert!(!b.admits(), "the stream holds the only probe slot");
    let (texts, errors) = drain(&mut s).await;
    assert_eq!(texts.concat(), "xy");
    assert!(errors.is_empty());
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "a clean end is the probe's success"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_committed_stream_is_neutral() {
    let primary = ScriptedProvider::new("primary").script([Step::chunks_then_hang(["x"])]);
    let secondary = ScriptedProvider::new("secondary");
    let (chain, b) = two(&primary, &secondary);
    b.trip();
    tokio::time::advance(b.config().recovery_timeout).await;
    let mut s = chain.stream("hi").await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().text, "x");
    drop(s);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.admits(), "the dropped stream freed its probe slot");
}

#[tokio::test(start_paused = true)]
async fn stream_reports_provider_used_and_attempts() {
    let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Connect)]);
    let secondary = ScriptedProvider::new("secondary").script([Step::chunks(["he", "llo"])]);
    let (chain, _) = two(&primary, &secondary);
    let mut s = chain.stream("hi").await.unwrap();
    assert_eq!(s.provider_used(), "secondary");
    assert_eq!(s.model(), Some("secondary-model"));
    let providers: Vec<_> = s.attempts().iter().map(|a| a.provider.as_str()).collect();
    assert_eq!(providers, ["primary", "secondary"]);
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first.text, "he");
    assert_eq!(first.model.as_deref(), Some("secondary-model"));
}

#[tokio::test(start_paused = true)]
async fn stream_with_every_provider_failing_before_content_is_all_providers_failed() {
    let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Server)]);
    let secondary = ScriptedProvider::new("secondary").script([Step::chunks_then_end([""])]);
    let (chain, _) = two(&primary, &secondary);
    let e = chain.stream("hi").await.unwrap_err();
    let kinds: Vec<_> = e.errors.iter().map(|f| f.error.kind).collect();
    assert_eq!(kinds, [ErrorKind::Server, ErrorKind::Protocol]);
}
