//! Streaming with failover up to the first content chunk, and guarded streaming after it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::time::{Instant, Sleep};

use crate::{Attempt, ChatRequest, Chunk, ChunkStream, Observer, Permit, Provider, ProviderError};

/// One streaming attempt: open the stream and read until the first content chunk (the commit
/// point). Anything that goes wrong before then is an ordinary attempt failure, so the chain
/// falls through; a stream that ends with no content at all is a protocol error.
pub(super) async fn open_until_content(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> Result<(ChunkStream, Vec<Chunk>), ProviderError> {
    let mut stream = provider.stream(request).await?;
    let mut buffered = Vec::new();
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
            None => return Err(ProviderError::protocol("stream ended before any content")),
        }
    }
}

/// A committed stream from one provider. Yields that provider's chunks only; a failure after
/// the commit point (error, idle stall, deadline) is one terminal `Err` item and is recorded on
/// the provider's breaker. A clean end records a success; dropping it early is neutral.
///
/// The request deadline counts only time spent waiting on the provider: from handing a chunk
/// to the caller until the caller asks for the next one, the clock is the caller's, so a slow
/// reader never makes a healthy provider time out.
pub struct FallbackStream {
    inner: ChunkStream,
    buffered: std::vec::IntoIter<Chunk>,
    permit: Option<Permit>,
    provider_used: String,
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
    observer: Option<(String, Arc<dyn Observer>)>,
}

impl std::fmt::Debug for FallbackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackStream")
            .field("provider_used", &self.provider_used)
            .field("attempts", &self.attempts.len())
            .field("done", &self.done)
            .finish()
    }
}

impl FallbackStream {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        inner: ChunkStream,
        buffered: Vec<Chunk>,
        permit: Permit,
        provider_used: String,
        attempts: Vec<Attempt>,
        idle: Option<Duration>,
        deadline: Option<Instant>,
        observer: Option<(String, Arc<dyn Observer>)>,
    ) -> Self {
        let timer = (idle.is_some() || deadline.is_some())
            .then(|| Box::pin(tokio::time::sleep_until(far_future())));
        Self {
            inner,
            model: buffered.iter().find_map(|c| c.model.clone()),
            buffered: buffered.into_iter(),
            permit: Some(permit),
            provider_used,
            attempts,
            idle,
            deadline,
            timer,
            waiting: false,
            handed_at: Some(Instant::now()),
            done: false,
            observer,
        }
    }

    /// The name of the provider (breaker) streaming the answer.
    pub fn provider_used(&self) -> &str {
        &self.provider_used
    }

    /// The model the provider reported on its first chunks, if it did.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Every attempt made before the stream was committed, the successful one last.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    fn fail(&mut self, error: ProviderError) -> ProviderError {
        self.done = true;
        if let Some(permit) = self.permit.take() {
            permit.record(error.kind.breaker_effect());
        }
        tracing::warn!(provider = %self.provider_used, error = %error, "stream failed after the first chunk");
        if let Some((chain, o)) = &self.observer {
            o.on_stream_error(chain, &self.provider_used, &error);
        }
        error
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
}

/// A timer target that never fires in practice, for a sleep armed only while waiting.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

impl Stream for FallbackStream {
    type Item = Result<Chunk, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(handed) = this.handed_at.take()
            && let Some(deadline) = this.deadline.as_mut()
        {
            // The caller held the last chunk this long: not the provider's time.
            *deadline += handed.elapsed();
        }
        if let Some(chunk) = this.buffered.next() {
            this.handed_at = Some(Instant::now());
            return Poll::Ready(Some(Ok(chunk)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.waiting = false;
                this.handed_at = Some(Instant::now());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(this.fail(e)))),
            Poll::Ready(None) => {
                this.done = true;
                if let Some(permit) = this.permit.take() {
                    permit.success();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(timer) = this.timer.as_mut() else {
                    return Poll::Pending;
                };
                if !this.waiting {
                    // The idle clock runs only while we wait on the provider, not on a slow reader.
                    this.waiting = true;
                    let now = Instant::now();
                    let idle_at = this.idle.map(|d| now + d);
                    let target = match (idle_at, this.deadline) {
                        (Some(a), Some(b)) => a.min(b),
                        (a, b) => a.or(b).unwrap_or_else(far_future),
                    };
                    timer.as_mut().reset(target);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    let error = this.timeout_error(Instant::now());
                    return Poll::Ready(Some(Err(this.fail(error))));
                }
                Poll::Pending
            }
        }
    }
}
