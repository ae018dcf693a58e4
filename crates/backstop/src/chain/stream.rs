//! Streaming with failover up to the first content chunk, and guarded streaming after it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::time::{Instant, Sleep};
use tracing::{Instrument, Span};

use super::resume::{Contribution, Resumer, Seam, Takeover, TakeoverFuture};
use super::trace;
use crate::{Attempt, ChatRequest, Chunk, ChunkStream, Observer, Permit, Provider, ProviderError};

/// One streaming attempt: open the stream and read until the first content chunk (the commit
/// point). Anything that goes wrong before then is an ordinary attempt failure, so the chain
/// falls through. A stream that ends cleanly after a finish reason but without content is a
/// complete (empty, or filtered) answer; one that ends with neither is a protocol error.
pub(super) async fn open_until_content(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> Result<(ChunkStream, Vec<Chunk>), ProviderError> {
    let mut stream = provider.stream(request).await?;
    let mut buffered: Vec<Chunk> = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(chunk)) => {
                let content = chunk.is_content();
                buffered.push(chunk);
                if content {
                    return Ok((stream, buffered));
                }
            }
            Some(Err(e)) => return Err(e),
            None if buffered.iter().any(|c| c.finish_reason.is_some()) => {
                return Ok((Box::pin(futures_util::stream::empty()), buffered));
            }
            None => return Err(ProviderError::protocol("stream ended before any content")),
        }
    }
}

/// A committed stream. Yields the committing provider's chunks; a failure after the commit
/// point (error, idle stall, deadline) is recorded on that provider's breaker and then either
/// resumed on the next provider (with `stream_resume`: the caller sees one seamless stream)
/// or ends the stream with one terminal `Err` item — never a silent truncation. A clean end
/// records a success, and so does dropping the stream once the finish reason was delivered
/// (the answer is whole), or a failure after it (the connection's end, not the answer's:
/// never resumed or reported); dropping it earlier is neutral.
///
/// The request deadline counts only time spent waiting on providers: from handing a chunk to
/// the caller until the caller asks for the next one, the clock is the caller's, so a slow
/// reader never makes a healthy provider time out.
pub struct FallbackStream {
    inner: ChunkStream,
    buffered: VecDeque<Chunk>,
    permit: Option<Permit>,
    provider_used: String,
    current: String,
    model: Option<String>,
    attempts: Vec<Attempt>,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// When the last chunk was handed to the caller (or the stream to its owner), until the
    /// next poll: the deadline moves out by that time.
    handed_at: Option<Instant>,
    done: bool,
    /// A chunk with a finish reason was handed to the caller.
    finished: bool,
    observer: Option<(String, Arc<dyn Observer>)>,
    resume: Option<ResumeState>,
    contributions: Vec<Contribution>,
    /// The request's span: open until the stream is dropped, and ended then (see `Drop`).
    span: Span,
}

/// What a resumable stream keeps: the text delivered so far, the seam of the current
/// continuation, a takeover in progress and the failure that started it.
struct ResumeState {
    resumer: Resumer,
    delivered: String,
    /// A tool-call fragment reached the caller: such a stream is never resumed (a call
    /// continued by another model is not one call).
    tool_call: bool,
    seam: Option<Seam>,
    takeover: Option<TakeoverFuture>,
    broken: Option<ProviderError>,
}

/// Everything a committed stream starts from.
pub(super) struct Committed {
    pub(super) stream: ChunkStream,
    pub(super) buffered: Vec<Chunk>,
    pub(super) permit: Permit,
    pub(super) provider: String,
    pub(super) attempts: Vec<Attempt>,
    pub(super) idle: Option<Duration>,
    pub(super) deadline: Option<Instant>,
    pub(super) observer: Option<(String, Arc<dyn Observer>)>,
    pub(super) resumer: Option<Resumer>,
    pub(super) span: Span,
}

impl std::fmt::Debug for FallbackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackStream")
            .field("provider_used", &self.provider_used)
            .field("attempts", &self.attempts.len())
            .field("contributions", &self.contributions)
            .field("done", &self.done)
            .finish()
    }
}

impl FallbackStream {
    pub(super) fn new(c: Committed) -> Self {
        let timer = (c.idle.is_some() || c.deadline.is_some())
            .then(|| Box::pin(tokio::time::sleep_until(crate::time::far_future())));
        Self {
            inner: c.stream,
            model: c.buffered.iter().find_map(|c| c.model.clone()),
            buffered: c.buffered.into(),
            permit: Some(c.permit),
            current: c.provider.clone(),
            contributions: vec![Contribution {
                provider: c.provider.clone(),
                offset: 0,
            }],
            provider_used: c.provider,
            attempts: c.attempts,
            idle: c.idle,
            deadline: c.deadline,
            timer,
            waiting: false,
            handed_at: Some(Instant::now()),
            done: false,
            finished: false,
            observer: c.observer,
            resume: c.resumer.map(|resumer| ResumeState {
                resumer,
                delivered: String::new(),
                tool_call: false,
                seam: None,
                takeover: None,
                broken: None,
            }),
            span: c.span,
        }
    }

    /// The name of the provider (breaker) that committed the stream (its first content).
    pub fn provider_used(&self) -> &str {
        &self.provider_used
    }

    /// The provider streaming now: the committing one, or the last one that resumed it.
    pub fn current_provider(&self) -> &str {
        &self.current
    }

    /// The model the committing provider reported on its first chunks, if it did.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Every attempt made: those before the commit (the committing one last), then every try
    /// to resume the stream.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Who produced the answer, in order, with the byte offset of the text where each took
    /// over: the committing provider at 0, then one entry per resume.
    pub fn contributions(&self) -> &[Contribution] {
        &self.contributions
    }

    /// Times the stream was continued by another provider.
    pub fn resumes(&self) -> usize {
        self.contributions.len() - 1
    }

    /// Records `error` on the current provider's breaker and tells the observer.
    fn charge(&mut self, error: &ProviderError) {
        if let Some(permit) = self.permit.take() {
            permit.record(error.kind.breaker_effect());
        }
        tracing::warn!(provider = %self.current, error = %error, "stream failed after the first chunk");
        if let Some((chain, o)) = &self.observer {
            o.on_stream_error(chain, &self.current, error);
        }
    }

    /// The provider's stream ended with the answer: its permit succeeds.
    fn ended(&mut self) {
        self.done = true;
        if let Some(permit) = self.permit.take() {
            permit.success();
        }
    }

    /// The committed stream broke with `error`: resume it if the chain may, else end it.
    fn broke(&mut self, error: ProviderError) -> Option<ProviderError> {
        if self.finished {
            // The finish reason reached the caller: the answer is whole, and what broke was
            // the end of the connection, not the answer. Nothing to resume or report.
            tracing::debug!(provider = %self.current, error = %error, "stream broke after its finish reason; ended whole");
            self.ended();
            return None;
        }
        self.charge(&error);
        let deadline = self.deadline;
        let time_left = deadline.is_none_or(|d| Instant::now() < d);
        if let Some(r) = self.resume.as_mut()
            && time_left
            && r.resumer.left > 0
            && !r.resumer.candidates.is_empty()
            && !r.delivered.is_empty()
            && !r.tool_call
        {
            r.takeover = Some(Box::pin(
                r.resumer
                    .takeover(r.delivered.clone(), deadline)
                    .instrument(self.span.clone()),
            ));
            r.broken = Some(error);
            r.seam = None;
            return None;
        }
        self.done = true;
        Some(error)
    }

    fn timeout_error(&self, now: Instant) -> ProviderError {
        match (self.deadline, self.idle) {
            (Some(d), _) if now >= d => {
                ProviderError::timeout("request deadline passed mid-stream")
            }
            (_, Some(idle)) => {
                ProviderError::timeout(format!("stream idle for {}ms", idle.as_millis()))
            }
            _ => ProviderError::timeout("stream timed out"),
        }
    }

    /// Passes a chunk through the current seam and notes what it means for the record;
    /// `None` when nothing of it is left for the caller.
    fn deliver(&mut self, mut chunk: Chunk) -> Option<Chunk> {
        if let Some(r) = self.resume.as_mut() {
            if let Some(seam) = r.seam.as_mut() {
                let mut text = seam.push(&chunk.text);
                if chunk.finish_reason.is_some() {
                    text.push_str(&seam.flush());
                }
                chunk.text = text;
            }
            r.delivered.push_str(&chunk.text);
            r.tool_call |= !chunk.tool_calls.is_empty();
        }
        if chunk.skipped_events > 0
            && let Some((chain, o)) = &self.observer
        {
            o.on_skipped_events(chain, &self.current, chunk.skipped_events);
        }
        if !chunk.is_content()
            && chunk.finish_reason.is_none()
            && chunk.usage.is_none()
            && chunk.model.is_none()
        {
            return None;
        }
        if chunk.finish_reason.is_some() {
            self.finished = true;
        }
        trace::chunk(&self.span, &chunk);
        self.handed_at = Some(Instant::now());
        Some(chunk)
    }

    /// A takeover finished: continue with its stream, or end with the original failure.
    fn took_over(
        &mut self,
        takeover: Option<Takeover>,
        tries: Vec<Attempt>,
    ) -> Option<ProviderError> {
        self.attempts.extend(tries);
        let r = self.resume.as_mut()?;
        let broken = r.broken.take();
        let Some(t) = takeover else {
            self.done = true;
            return broken;
        };
        let offset = r.delivered.len();
        r.seam = Some(Seam::new(&r.delivered));
        tracing::info!(from = %self.current, to = %t.provider, offset, "stream resumed on the next provider");
        if let Some((chain, o)) = &self.observer {
            o.on_stream_resume(chain, &self.current, &t.provider, offset);
        }
        self.contributions.push(Contribution {
            provider: t.provider.clone(),
            offset,
        });
        r.resumer.candidates = t.rest;
        trace::resumed(&self.span, self.contributions.len() - 1);
        self.current = t.provider;
        self.inner = t.stream;
        self.buffered = t.buffered.into();
        self.permit = Some(t.permit);
        self.waiting = false;
        None
    }
}

impl Drop for FallbackStream {
    fn drop(&mut self) {
        // The caller read the whole answer and went away before the end of the body: the
        // provider did its job.
        if self.finished
            && let Some(permit) = self.permit.take()
        {
            permit.success();
        }
        // An OpenTelemetry span ends when it was last exited: touch the request span so it
        // ends with the stream, not when the stream was committed.
        self.span.in_scope(|| {});
    }
}

impl Stream for FallbackStream {
    type Item = Result<Chunk, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(handed) = this.handed_at.take()
            && let Some(deadline) = this.deadline.as_mut()
        {
            // The caller held the last chunk this long: not the provider's time.
            *deadline = crate::time::after(*deadline, handed.elapsed());
        }
        loop {
            if let Some(takeover) = this.resume.as_mut().and_then(|r| r.takeover.as_mut()) {
                let (t, tries) = std::task::ready!(takeover.as_mut().poll(cx));
                if let Some(r) = this.resume.as_mut() {
                    r.takeover = None;
                }
                if let Some(e) = this.took_over(t, tries) {
                    return Poll::Ready(Some(Err(e)));
                }
                if this.done {
                    return Poll::Ready(None);
                }
                continue;
            }
            if let Some(chunk) = this.buffered.pop_front() {
                match this.deliver(chunk) {
                    Some(c) => return Poll::Ready(Some(Ok(c))),
                    None => continue,
                }
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.waiting = false;
                    if let Some(c) = this.deliver(chunk) {
                        return Poll::Ready(Some(Ok(c)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.waiting = false;
                    if let Some(e) = this.broke(e) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(None) => {
                    this.ended();
                    // A continuation held back at its seam is let through at the end.
                    let held = this
                        .resume
                        .as_mut()
                        .and_then(|r| r.seam.as_mut())
                        .map(Seam::flush)
                        .unwrap_or_default();
                    if held.is_empty() {
                        return Poll::Ready(None);
                    }
                    if let Some(r) = this.resume.as_mut() {
                        r.delivered.push_str(&held);
                    }
                    return Poll::Ready(Some(Ok(Chunk::text(held))));
                }
                Poll::Pending => {
                    let Some(timer) = this.timer.as_mut() else {
                        return Poll::Pending;
                    };
                    if !this.waiting {
                        // The idle clock runs only while we wait on the provider, not on a slow reader.
                        this.waiting = true;
                        let now = Instant::now();
                        let idle_at = this.idle.map(|d| crate::time::after(now, d));
                        let target = match (idle_at, this.deadline) {
                            (Some(a), Some(b)) => a.min(b),
                            (a, b) => a.or(b).unwrap_or_else(crate::time::far_future),
                        };
                        timer.as_mut().reset(target);
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        this.waiting = false;
                        let error = this.timeout_error(Instant::now());
                        if let Some(e) = this.broke(error) {
                            return Poll::Ready(Some(Err(e)));
                        }
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
