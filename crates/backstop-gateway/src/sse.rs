//! A streamed answer: the SSE body of a committed stream, from the role event to `[DONE]`, or
//! to exactly one error event (a provider failure after commit, or the gateway shutting down
//! at the end of its grace period) — never a silent truncation.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use backstop::{ApiFormat, Chunk, FallbackStream, FinishReason, Usage};
use futures_util::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::metrics::ChainMetrics;
use crate::request_log::RequestLog;
use crate::server::{Shared, attempt_headers, unix_now};
use crate::state::key_limits::Reservation;
use crate::wire::{self, ChunkEncoder, GatewayRequest};

/// Most bytes of ready events one body frame gathers: one frame per event made hyper frame,
/// size and queue each of them (a stream's 18 events arrive in one read from the upstream).
const FRAME_BYTES: usize = 16 * 1024;

/// One stream's events in the wire format the client asked in (OpenAI chunks, Anthropic
/// message events).
pub(crate) trait StreamEncoder: Send {
    /// The opening events, before any content.
    fn start(&self) -> Vec<u8>;
    /// Appends the events for one chunk (none when it only carries metadata).
    fn chunk(&mut self, chunk: &Chunk, out: &mut Vec<u8>);
    /// The closing events, terminal marker included.
    fn finish(&mut self) -> Vec<u8>;
    /// One error event, ending a stream that already started.
    fn error(&self, message: &str, kind: &str, code: Option<&str>) -> Vec<u8>;
    /// Usage reported so far.
    fn usage(&self) -> Option<Usage>;
    /// The finish reason reported so far.
    fn finish_reason(&self) -> Option<&FinishReason>;
}

impl StreamEncoder for ChunkEncoder {
    fn start(&self) -> Vec<u8> {
        self.role()
    }
    fn chunk(&mut self, chunk: &Chunk, out: &mut Vec<u8>) {
        ChunkEncoder::chunk(self, chunk, out);
    }
    fn finish(&mut self) -> Vec<u8> {
        ChunkEncoder::finish(self)
    }
    fn error(&self, message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
        wire::error_event(message, kind, code)
    }
    fn usage(&self) -> Option<Usage> {
        ChunkEncoder::usage(self)
    }
    fn finish_reason(&self) -> Option<&FinishReason> {
        ChunkEncoder::finish_reason(self)
    }
}

/// Everything a streamed response needs between chunks.
struct StreamState {
    stream: Option<FallbackStream>,
    encoder: Box<dyn StreamEncoder>,
    /// The opening events, sent in the first frame with whatever content is ready.
    first: Option<Vec<u8>>,
    request_id: String,
    /// The chain's series (tokens are counted when the stream ends).
    metrics: std::sync::Arc<ChainMetrics>,
    chain: String,
    provider: String,
    /// The attempts, taken from the stream when it ends, for the log line (not copied at
    /// the start: 10,000 open streams would hold 10,000 copies).
    attempts: Vec<backstop::Attempt>,
    started: Instant,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Resumes already announced to the client.
    resumes: usize,
    /// The providers that continued the stream, for the log line.
    resumed: Vec<backstop::Contribution>,
    /// The `max_in_flight` slot, released when the stream ends or is dropped.
    _slot: OwnedSemaphorePermit,
    /// The request's HTTP span, ended when the body is (see `Drop`), not at the first byte.
    http_span: tracing::Span,
    /// The request's key-limit tokens: settled with the usage when the stream ends whole,
    /// kept (dropped unsettled) when it breaks, since part of them was spent.
    reserved: Option<Reservation>,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // The chain's stream (and its request span) first, so the HTTP span ends after it;
        // an OpenTelemetry span ends when it was last exited.
        self.stream = None;
        self.http_span.in_scope(|| {});
    }
}

impl StreamState {
    /// The next SSE bytes: content events, then the finish events and `[DONE]`, or one
    /// OpenAI-shaped error event if the committed stream fails or the gateway stops. Events
    /// already there are sent in one frame (up to [`FRAME_BYTES`]); the next one is never
    /// waited for while some are ready to go.
    async fn next(&mut self) -> Option<Bytes> {
        let mut out = self.first.take().unwrap_or_default();
        let Some(stream) = self.stream.as_mut() else {
            return (!out.is_empty()).then(|| Bytes::from(out));
        };
        loop {
            // An item already there is taken without setting up the wait for the end of
            // the grace period (a `Notified` per item was 2% of a stream's instructions);
            // the flag is still checked before each one.
            let item = if *self.stopping.borrow() {
                None
            } else if let Poll::Ready(item) =
                Pin::new(&mut *stream).poll_next(&mut Context::from_waker(Waker::noop()))
            {
                Some(item)
            } else if !out.is_empty() {
                return Some(Bytes::from(out));
            } else {
                tokio::select! {
                    item = stream.next() => Some(item),
                    _ = self.stopping.wait_for(|s| *s) => None,
                }
            };
            let Some(item) = item else {
                // Dropping the stream cancels the upstream request (neutral for its breaker).
                self.end_stream();
                self.log(503);
                tracing::info!(chain = %self.chain, provider = %self.provider, "stream ended: the gateway is shutting down");
                out.append(&mut self.encoder.error(
                    "the gateway is shutting down; the answer is incomplete",
                    "server_error",
                    Some("server_shutting_down"),
                ));
                return Some(Bytes::from(out));
            };
            match item {
                Some(Ok(chunk)) => {
                    let at = out.len();
                    self.encoder.chunk(&chunk, &mut out);
                    let resumes = stream.resumes();
                    if resumes > self.resumes && out.len() > at {
                        // An SSE comment (ignored by SDKs) marks where another provider took over.
                        self.resumes = resumes;
                        if let Some(c) = stream.contributions().last() {
                            let seam = format!(
                                ": backstop resumed on {} at offset {}\n\n",
                                c.provider, c.offset
                            );
                            out.splice(at..at, seam.into_bytes());
                        }
                    }
                    if out.len() >= FRAME_BYTES {
                        return Some(Bytes::from(out));
                    }
                }
                Some(Err(e)) => {
                    self.end_stream();
                    self.log(200);
                    tracing::warn!(chain = %self.chain, provider = %self.provider, error = %e, "stream failed after it started");
                    let message = format!("{}: {e}", self.provider);
                    out.append(&mut self.encoder.error(
                        &message,
                        "server_error",
                        Some(e.kind.as_str()),
                    ));
                    return Some(Bytes::from(out));
                }
                None => {
                    self.end_stream();
                    let usage = self.encoder.usage();
                    if let Some(u) = &usage {
                        self.metrics
                            .tokens(&self.provider, u.input_tokens, u.output_tokens);
                    }
                    if let (Some(reserved), Some(u)) = (self.reserved.take(), &usage) {
                        // Boxed: the fleet store's call is a large future, and inline it would
                        // size every open stream's body.
                        let used = u64::from(u.input_tokens) + u64::from(u.output_tokens);
                        Box::pin(reserved.settle(Some(used))).await;
                    }
                    self.log(200);
                    out.append(&mut self.encoder.finish());
                    return Some(Bytes::from(out));
                }
            }
        }
    }

    /// Drops the chain's stream, keeping its attempts and the providers that continued it
    /// for the log line.
    fn end_stream(&mut self) {
        if let Some(stream) = self.stream.take() {
            self.attempts = stream.attempts().to_vec();
            self.resumed = stream.contributions().get(1..).unwrap_or_default().to_vec();
        }
    }

    fn log(&self, status: u16) {
        RequestLog {
            request_id: &self.request_id,
            chain: &self.chain,
            provider: Some(&self.provider),
            attempts: self
                .stream
                .as_ref()
                .map_or(&self.attempts, |s| s.attempts()),
            started: self.started,
            status,
            stream: true,
            finish_reason: self.encoder.finish_reason(),
            resumed: &self.resumed,
        }
        .emit();
    }
}

/// The SSE response of a committed stream: role event, content chunks, then either the
/// finish events and `[DONE]`, or one error event (never a silent truncation).
pub(crate) fn stream_response(
    app: Shared,
    metrics: std::sync::Arc<ChainMetrics>,
    req: Box<GatewayRequest>,
    stream: FallbackStream,
    started: Instant,
    slot: OwnedSemaphorePermit,
    reserved: Option<Reservation>,
) -> Response {
    let provider = stream.provider_used().to_owned();
    // The same `model` as a non-streamed answer: the provider's word, else the configured
    // upstream model (not the provider's name in the config).
    let model = stream
        .model()
        .or_else(|| app.provider_models.get(&provider).map(String::as_str))
        .unwrap_or(&provider)
        .to_owned();
    let encoder: Box<dyn StreamEncoder> = match req.api {
        ApiFormat::Anthropic => Box::new(crate::messages_response::MessageEncoder::new(
            &app.next_id(),
            &model,
        )),
        _ => Box::new(ChunkEncoder::new(
            &app.next_id(),
            unix_now(),
            &model,
            req.include_usage,
        )),
    };
    let mut r = Response::new(Body::empty());
    attempt_headers(&mut r, Some(&provider), stream.attempts());
    let state = StreamState {
        first: Some(encoder.start()),
        attempts: Vec::new(),
        stream: Some(stream),
        encoder,
        stopping: app.stopping.subscribe(),
        resumes: 0,
        resumed: Vec::new(),
        request_id: req.request_id().to_owned(),
        metrics,
        chain: req.chain,
        provider,
        started,
        _slot: slot,
        http_span: tracing::Span::current(),
        reserved,
    };
    // Boxed: `unfold` moves its state into each item's future and back out, and the state is
    // large (memcpy was 9% of a stream's instructions).
    let body = futures_util::stream::unfold(Box::new(state), |mut state| async move {
        let bytes = state.next().await?;
        Some((Ok::<Bytes, Infallible>(bytes), state))
    });
    *r.body_mut() = Body::from_stream(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx (and proxies that follow it) would otherwise buffer the stream.
    h.insert(
        const { HeaderName::from_static("x-accel-buffering") },
        HeaderValue::from_static("no"),
    );
    r
}
