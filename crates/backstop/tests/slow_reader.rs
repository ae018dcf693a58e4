//! The request deadline of a committed stream counts the provider's time only: time the caller
//! spends holding a chunk before asking for the next is the caller's, so a slow reader never
//! turns into a Timeout on a healthy provider's breaker (issue 16, item 5).

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{BreakerConfig, BreakerState, CircuitBreaker, ErrorKind, FallbackChain};
use futures_util::StreamExt;
use tokio::time::Instant;

fn chain(step: Step, deadline: Duration) -> (FallbackChain, CircuitBreaker) {
    let breaker = CircuitBreaker::with_config("primary", BreakerConfig::count(1));
    let chain = FallbackChain::builder()
        .provider(
            ScriptedProvider::new("primary").script([step]),
            breaker.clone(),
        )
        .timeout(deadline)
        .build()
        .unwrap();
    (chain, breaker)
}

/// Reads the stream, pausing `pause` before each read; the texts and the errors.
async fn read_slowly(
    s: &mut backstop::FallbackStream,
    pause: Duration,
) -> (Vec<String>, Vec<ErrorKind>) {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    loop {
        tokio::time::sleep(pause).await;
        match s.next().await {
            Some(Ok(c)) => texts.push(c.text),
            Some(Err(e)) => errors.push(e.kind),
            None => return (texts, errors),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_does_not_spend_the_providers_deadline() {
    // The provider needs 200 ms in all; the reader holds every chunk for 2 s.
    let (chain, breaker) = chain(
        Step::spaced_chunks(["a", "b", "c"], Duration::from_millis(100)),
        Duration::from_secs(1),
    );
    let start = Instant::now();
    let mut s = chain.stream("hi").await.unwrap();
    let (texts, errors) = read_slowly(&mut s, Duration::from_secs(2)).await;
    assert_eq!(texts.concat(), "abc");
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        start.elapsed() > Duration::from_secs(6),
        "the reader really was slow"
    );
    assert_eq!(breaker.snapshot().failures_in_window, 0);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_providers_own_time_still_hits_the_deadline_with_a_slow_reader() {
    // 600 ms between chunks: the provider alone passes the 1 s deadline on the third chunk,
    // however long the reader pauses.
    let (chain, breaker) = chain(
        Step::spaced_chunks(["a", "b", "c"], Duration::from_millis(600)),
        Duration::from_secs(1),
    );
    let mut s = chain.stream("hi").await.unwrap();
    let (texts, errors) = read_slowly(&mut s, Duration::from_secs(3)).await;
    assert_eq!(texts, ["a", "b"]);
    assert_eq!(errors, [ErrorKind::Timeout]);
    assert_eq!(breaker.state(), BreakerState::Open, "counted: threshold 1");
}

#[tokio::test(start_paused = true)]
async fn time_before_the_first_read_is_the_callers() {
    let (chain, breaker) = chain(
        Step::spaced_chunks(["a", "b"], Duration::from_millis(100)),
        Duration::from_millis(500),
    );
    let mut s = chain.stream("hi").await.unwrap();
    // The caller takes its time to start reading the committed stream.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (texts, errors) = read_slowly(&mut s, Duration::ZERO).await;
    assert_eq!(texts.concat(), "ab");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_provider_behind_a_slow_reader_still_times_out() {
    let (chain, breaker) = chain(Step::chunks_then_hang(["a"]), Duration::from_secs(1));
    let start = Instant::now();
    let mut s = chain.stream("hi").await.unwrap();
    let (texts, errors) = read_slowly(&mut s, Duration::from_secs(2)).await;
    assert_eq!(texts, ["a"]);
    assert_eq!(errors, [ErrorKind::Timeout]);
    // The error came after two pauses of 2 s plus the provider's full second (5 s); the
    // reader paused once more before seeing the end.
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert_eq!(breaker.state(), BreakerState::Open);
}
