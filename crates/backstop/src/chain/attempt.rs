//! One attempt: run the call within `min(attempt timeout, time left)`, charge the provider's
//! breaker (or its rate-limit hold) with the outcome, and say what happened.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use tracing::{Instrument, Span};

use super::routed::Routed;
use super::trace::{self, AttemptMeta, AttemptSpan};
use super::{Mode, deadline};
use crate::{
    Chunk, ChunkStream, Completion, Embeddings, ErrorKind, Permit, Provider, ProviderError, time,
};

/// What the chain reads off an answer for its records: a whole completion, or a stream opened
/// up to its first content.
pub(super) trait Reply: Sized {
    /// The provider's id for the call, when it sent one.
    fn upstream_request_id(&self) -> Option<&str>;
    /// Records the answer on its attempt span: a completion's ends it; a stream keeps it open
    /// until the stream ends.
    fn traced(self, span: AttemptSpan) -> Self;
}

impl Reply for Completion {
    fn upstream_request_id(&self) -> Option<&str> {
        self.upstream_request_id.as_deref()
    }

    fn traced(self, span: AttemptSpan) -> Self {
        trace::completion(span.span(), &self);
        drop(span.answered());
        self
    }
}

impl Reply for Embeddings {
    fn upstream_request_id(&self) -> Option<&str> {
        None
    }

    fn traced(self, span: AttemptSpan) -> Self {
        trace::embeddings(span.span(), &self);
        drop(span.answered());
        self
    }
}

impl Reply for (ChunkStream, Vec<Chunk>) {
    fn upstream_request_id(&self) -> Option<&str> {
        self.1.iter().find_map(|c| c.upstream_request_id.as_deref())
    }

    fn traced(self, span: AttemptSpan) -> Self {
        let (stream, buffered) = self;
        let span = span.answered();
        if span.is_disabled() {
            return (stream, buffered);
        }
        for chunk in &buffered {
            trace::chunk(&span, chunk);
        }
        (trace::spanned(stream, span), buffered)
    }
}

/// How an attempt ended.
pub(super) enum Outcome<T> {
    /// The provider answered; the permit still awaits its verdict (a stream may yet fail).
    Answered(T, Permit),
    /// The provider failed; its breaker and hold have been charged.
    Failed(ProviderError),
    /// No time was left to call it.
    DeadlinePassed,
}

/// What bounds one attempt.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The attempt timeout (or, streaming, the time-to-first-token timeout).
    pub(super) timeout: Option<Duration>,
    /// The request's absolute deadline.
    pub(super) deadline: Option<Instant>,
    /// When the request started, for the deadline's error message.
    pub(super) started: Instant,
}

/// Calls `provider` once under `limits`, with `permit` from its breaker, in an attempt span
/// (a child of `parent`, the request's span) that the call runs in.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run<'s, R: Routed, T, F, Fut>(
    provider: &'s dyn Provider,
    mut permit: Permit,
    request: &'s R,
    call: &F,
    mode: Mode,
    limits: Limits,
    meta: AttemptMeta<'_>,
    parent: &Span,
) -> (Outcome<T>, Duration)
where
    T: Reply,
    F: Fn(&'s dyn Provider, &'s R) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let begun = Instant::now();
    let left = limits.deadline.map(|d| d.saturating_duration_since(begun));
    if left == Some(Duration::ZERO) {
        return (Outcome::DeadlinePassed, Duration::ZERO);
    }
    let span = AttemptSpan::new(trace::attempt(
        &meta,
        trace::admitted_state(&meta, permit.is_probe()),
        Some(parent),
    ));
    // The attempt gets min(attempt timeout, time left); note which one binds.
    let (budget, deadline_binds) = match (limits.timeout, left) {
        (Some(l), Some(r)) if r <= l => (Some(r), true),
        (Some(l), _) => (Some(l), false),
        (None, r) => (r, r.is_some()),
    };
    let end = budget.map(|b| time::after(begun, b));
    if request.drop_counts_as_timeout() {
        permit.fail_on_drop(true);
    }
    let fut = deadline::scope(end, call(provider, request)).instrument(span.span().clone());
    let result = match budget {
        Some(b) => tokio::time::timeout(b, fut).await.unwrap_or_else(|_| {
            let after = if deadline_binds {
                limits.started.elapsed()
            } else {
                b
            };
            Err(timeout_error(mode, deadline_binds, after))
        }),
        None => fut.await,
    };
    permit.fail_on_drop(false);
    let latency = begun.elapsed();
    match result {
        Ok(value) => (Outcome::Answered(value.traced(span), permit), latency),
        Err(error) => {
            span.failed(&error);
            permit.record(error.kind.breaker_effect());
            (Outcome::Failed(error), latency)
        }
    }
}

fn timeout_error(mode: Mode, deadline: bool, after: Duration) -> ProviderError {
    let ms = after.as_millis();
    ProviderError::new(
        ErrorKind::Timeout,
        match (deadline, mode) {
            (true, _) => format!("request deadline passed after {ms}ms"),
            (false, Mode::Complete) => format!("attempt timed out after {ms}ms"),
            (false, Mode::Stream) => format!("no first token within {ms}ms"),
        },
    )
}
