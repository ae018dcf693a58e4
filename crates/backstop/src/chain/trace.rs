//! The chain's `tracing` spans: `backstop.request`, one per request, and `backstop.attempt`,
//! one per attempt (retries, hedged legs, resume continuations and skips included), children
//! of the request. Their fields follow the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.*`, `error.type`, `server.*`, `otel.name`/`otel.kind` for the span name and kind)
//! plus backstop's own (`backstop.*`), so a `tracing-opentelemetry` layer exports them as
//! they are; HTTP providers fill in `gen_ai.provider.name`, `gen_ai.request.model` and
//! `server.address` on the attempt span they run in.
//!
//! Without a subscriber interested in them a span costs one callsite check, and every
//! recording function returns at once on a disabled span.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tracing::Span;
use tracing::field::Empty;

use super::Mode;
use super::routed::Routed;
use crate::{
    AllProvidersFailed, Chunk, ChunkStream, CircuitBreaker, Completion, Embeddings, FinishReason,
    ProviderError, Usage,
};

/// The span name as OpenTelemetry shows it: `{operation} {model}` (the GenAI convention).
struct OtelName<'a>(&'a str, &'a str);

impl fmt::Display for OtelName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// The request's span; `gen_ai.request.model` is the chain (the model the caller asked for).
pub(super) fn request(chain: &str, mode: Mode, request: &impl Routed) -> Span {
    let (max_tokens, temperature, top_p) = request.sampling();
    tracing::info_span!(
        "backstop.request",
        otel.name = %OtelName(request.operation(), chain),
        otel.status_code = Empty,
        otel.status_description = Empty,
        gen_ai.operation.name = request.operation(),
        gen_ai.request.model = chain,
        gen_ai.request.max_tokens = max_tokens.map(i64::from),
        gen_ai.request.temperature = temperature.map(f64::from),
        gen_ai.request.top_p = top_p.map(f64::from),
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.response.finish_reasons = Empty,
        error.type = Empty,
        backstop.chain = chain,
        backstop.request_id = request.request_id(),
        backstop.stream = mode == Mode::Stream,
        backstop.provider_used = Empty,
        backstop.fell_back = Empty,
        backstop.hedged = Empty,
        backstop.attempts = Empty,
        backstop.resumes = Empty,
        backstop.deadline_exceeded = Empty,
    )
}

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The request's first provider.
    Primary,
    /// A provider after another one failed or was skipped.
    Fallback,
    /// Started beside a slow first attempt.
    Hedge,
    /// Continuing a stream that broke after its first token.
    Resume,
    /// `when_all_open = probe`: every breaker was open.
    LastResort,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Fallback => "fallback",
            Role::Hedge => "hedge",
            Role::Resume => "resume",
            Role::LastResort => "last_resort",
        }
    }
}

/// An attempt span's name: `{operation} {model}` when the provider says its model, else the
/// operation.
struct AttemptName<'a>(&'a str, Option<&'a str>);

impl fmt::Display for AttemptName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(model) => write!(f, "{} {model}", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// What the chain knows about an attempt before it starts.
#[derive(Clone, Copy)]
pub(super) struct AttemptMeta<'a> {
    pub(super) chain: &'a str,
    pub(super) breaker: &'a CircuitBreaker,
    /// `chat` or `embeddings`.
    pub(super) operation: &'static str,
    /// The provider's model, if it names one.
    pub(super) model: Option<&'a str>,
    pub(super) role: Role,
    /// Retries on this provider before this attempt.
    pub(super) retry: u32,
}

/// An attempt's span, a child of the current span (the request's) unless `parent` is given.
/// `breaker_state` is the state the call was admitted in (`open` for a skip or a forced probe).
pub(super) fn attempt(meta: &AttemptMeta<'_>, breaker_state: &str, parent: Option<&Span>) -> Span {
    macro_rules! attempt_span {
        ($($parent:tt)*) => {
            tracing::info_span!(
                $($parent)*
                "backstop.attempt",
                otel.name = %AttemptName(meta.operation, meta.model),
                otel.kind = "client",
                otel.status_code = Empty,
                otel.status_description = Empty,
                gen_ai.operation.name = meta.operation,
                gen_ai.provider.name = Empty,
                gen_ai.request.model = Empty,
                gen_ai.request.max_tokens = Empty,
                gen_ai.request.temperature = Empty,
                gen_ai.request.top_p = Empty,
                gen_ai.response.model = Empty,
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty,
                gen_ai.response.finish_reasons = Empty,
                error.type = Empty,
                server.address = Empty,
                server.port = Empty,
                http.response.status_code = Empty,
                backstop.chain = meta.chain,
                backstop.provider = meta.breaker.name(),
                backstop.attempt.role = meta.role.as_str(),
                backstop.retry = i64::from(meta.retry),
                backstop.breaker.state = breaker_state,
                backstop.hold = meta.breaker.hold().is_held(),
                backstop.outcome = Empty,
                backstop.upstream_request_id = Empty,
                backstop.retry_after_ms = Empty,
            )
        };
    }
    match parent {
        Some(p) => attempt_span!(parent: p,),
        None => attempt_span!(),
    }
}

/// A provider skipped for an open breaker: a span of no duration saying so.
pub(super) fn skipped(meta: &AttemptMeta<'_>, parent: &Span) {
    let span = attempt(meta, "open", Some(parent));
    if !span.is_disabled() {
        span.record("backstop.outcome", "skipped");
        span.record("error.type", crate::ErrorKind::CircuitOpen.as_str());
    }
}

/// The breaker state an attempt was admitted in (a last resort goes through an open one).
pub(super) fn admitted_state(meta: &AttemptMeta<'_>, probe: bool) -> &'static str {
    match (meta.role, probe) {
        (Role::LastResort, _) => "open",
        (_, true) => "half_open",
        (_, false) => "closed",
    }
}

/// An attempt's span until it ends: dropped early (a hedge that lost, a caller that went
/// away), it records the attempt as cancelled.
pub(super) struct AttemptSpan {
    span: Span,
    ended: bool,
}

impl AttemptSpan {
    pub(super) fn new(span: Span) -> Self {
        Self { span, ended: false }
    }

    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// The provider answered; the span goes on (a stream's lasts until it ends).
    pub(super) fn answered(mut self) -> Span {
        self.ended = true;
        if !self.span.is_disabled() {
            self.span.record("backstop.outcome", "success");
        }
        std::mem::replace(&mut self.span, Span::none())
    }

    /// The provider failed with `error`.
    pub(super) fn failed(mut self, error: &ProviderError) {
        self.ended = true;
        if !self.span.is_disabled() {
            self.span.record("backstop.outcome", "failed");
            error_fields(&self.span, error);
        }
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        if !self.ended && !self.span.is_disabled() {
            self.span.record("backstop.outcome", "cancelled");
        }
    }
}

/// `error.type`, the status description and what the error says about the provider's answer.
pub(super) fn error_fields(span: &Span, error: &ProviderError) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", error.kind.as_str());
    span.record("otel.status_code", "error");
    span.record("otel.status_description", tracing::field::display(error));
    if let Some(status) = error.status {
        span.record("http.response.status_code", i64::from(status));
    }
    if let Some(id) = &error.upstream_request_id {
        span.record("backstop.upstream_request_id", id.as_str());
    }
    if let crate::ErrorKind::RateLimited {
        retry_after: Some(d),
    } = error.kind
    {
        span.record(
            "backstop.retry_after_ms",
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        );
    }
}

/// What a whole completion says, on its attempt's span.
pub(super) fn completion(span: &Span, c: &Completion) {
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.response.model", c.model.as_str());
    if let Some(u) = &c.usage {
        usage(span, u);
    }
    if let Some(f) = &c.finish_reason {
        finish(span, f);
    }
    if let Some(id) = &c.upstream_request_id {
        span.record("backstop.upstream_request_id", id.as_str());
    }
}

/// What an embeddings answer says, on its attempt's span: the model and input tokens.
pub(super) fn embeddings(span: &Span, e: &Embeddings) {
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.response.model", e.model.as_str());
    if let Some(u) = &e.usage {
        span.record("gen_ai.usage.input_tokens", i64::from(u.prompt_tokens));
    }
}

/// What a stream's chunk says about the answer: the model, token counts, the finish reason,
/// the provider's id for the call.
pub(super) fn chunk(span: &Span, c: &Chunk) {
    if span.is_disabled() {
        return;
    }
    if let Some(m) = &c.model {
        span.record("gen_ai.response.model", m.as_str());
    }
    if let Some(u) = &c.usage {
        usage(span, u);
    }
    if let Some(f) = &c.finish_reason {
        finish(span, f);
    }
    if let Some(id) = &c.upstream_request_id {
        span.record("backstop.upstream_request_id", id.as_str());
    }
}

/// A committed stream in its attempt's span: polled inside it, its chunks recorded on it, a
/// failure after the commit point too; the span ends when the stream is dropped.
pub(super) fn spanned(stream: ChunkStream, span: Span) -> ChunkStream {
    Box::pin(Spanned {
        inner: stream,
        span,
    })
}

struct Spanned {
    inner: ChunkStream,
    span: Span,
}

impl Stream for Spanned {
    type Item = Result<Chunk, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = {
            let _entered = this.span.enter();
            this.inner.as_mut().poll_next(cx)
        };
        match &polled {
            Poll::Ready(Some(Ok(c))) => chunk(&this.span, c),
            Poll::Ready(Some(Err(e))) if !this.span.is_disabled() => {
                this.span.record("backstop.outcome", "failed_mid_stream");
                error_fields(&this.span, e);
            }
            _ => {}
        }
        polled
    }
}

/// Token counts, as the provider reported them.
pub(super) fn usage(span: &Span, u: &Usage) {
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.usage.input_tokens", i64::from(u.input_tokens));
    span.record("gen_ai.usage.output_tokens", i64::from(u.output_tokens));
}

/// Why the model stopped (the provider's own value). One reason per answer: the convention's
/// string array has one element, which an exporter may turn into an array.
pub(super) fn finish(span: &Span, f: &FinishReason) {
    if !span.is_disabled() {
        span.record("gen_ai.response.finish_reasons", f.as_str());
    }
}

/// The request was answered by `provider`.
pub(super) fn answered(span: &Span, provider: &str, fell_back: bool, attempts: usize) {
    if span.is_disabled() {
        return;
    }
    span.record("backstop.provider_used", provider);
    span.record("backstop.fell_back", fell_back);
    span.record(
        "backstop.attempts",
        i64::try_from(attempts).unwrap_or(i64::MAX),
    );
}

/// Nothing answered the request.
pub(super) fn all_failed(span: &Span, failure: &AllProvidersFailed) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", failure.summary_kind().as_str());
    span.record("otel.status_code", "error");
    span.record(
        "otel.status_description",
        tracing::field::display(format_args!(
            "all {} providers failed",
            failure.errors.len()
        )),
    );
    span.record(
        "backstop.attempts",
        i64::try_from(failure.attempts.len()).unwrap_or(i64::MAX),
    );
    span.record("backstop.deadline_exceeded", failure.deadline_exceeded);
}

/// A stream was continued by another provider (`resumes` so far).
pub(super) fn resumed(span: &Span, resumes: usize) {
    if !span.is_disabled() {
        span.record(
            "backstop.resumes",
            i64::try_from(resumes).unwrap_or(i64::MAX),
        );
    }
}
