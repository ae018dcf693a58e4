//! The fallback chain: try providers in order, each behind its breaker, with retries and deadlines.

mod builder;
mod order;
mod stream;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use builder::{
    ChainBuildError, FallbackChainBuilder, Priority, ProviderOptions, Weighted, fallback_chain,
    weighted_fallback_chain,
};
pub use stream::FallbackStream;

use crate::{
    AllProvidersFailed, Attempt, AttemptOutcome, BoxFuture, ChatRequest, ChunkStream,
    CircuitBreaker, Completion, ErrorKind, FallbackResult, Observer, Permit, Provider,
    ProviderError, ProviderFailure, RequestSummary, RetryDecision, RetryPolicy,
};

/// A sequence of providers, each guarded by its own circuit breaker. Cheap to clone (shared).
#[derive(Clone)]
pub struct FallbackChain {
    inner: Arc<ChainInner>,
}

pub(crate) struct Entry {
    provider: Arc<dyn Provider>,
    breaker: CircuitBreaker,
    weight: f64,
    options: ProviderOptions,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Strategy {
    Priority,
    Weighted,
}

pub(crate) struct ChainInner {
    name: String,
    entries: Vec<Entry>,
    strategy: Strategy,
    retry: RetryPolicy,
    attempt_timeout: Option<Duration>,
    timeout: Option<Duration>,
    ttft_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    invalid_request_falls_through: bool,
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for FallbackChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackChain")
            .field("name", &self.inner.name)
            .field("strategy", &self.inner.strategy)
            .field(
                "providers",
                &self
                    .inner
                    .entries
                    .iter()
                    .map(|e| e.breaker.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What one attempt is: non-streaming completion, or opening a stream up to its first content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Complete,
    Stream,
}

/// A provider answered: the value, its still-open permit and the record so far.
struct Answer<T> {
    value: T,
    permit: Permit,
    entry: usize,
    attempts: Vec<Attempt>,
    started: Instant,
}

impl FallbackChain {
    /// A builder for a priority-ordered chain.
    pub fn builder() -> FallbackChainBuilder<Priority> {
        FallbackChainBuilder::new()
    }

    /// A builder for a chain that draws each request's order by weight.
    pub fn weighted() -> FallbackChainBuilder<Weighted> {
        FallbackChainBuilder::new()
    }

    /// The chain's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The breakers, in configured order (for dashboards and admin endpoints).
    pub fn breakers(&self) -> impl Iterator<Item = &CircuitBreaker> {
        self.inner.entries.iter().map(|e| &e.breaker)
    }

    /// Sends a prompt or request through the chain and returns the first answer.
    pub async fn generate(
        &self,
        request: impl Into<ChatRequest>,
    ) -> Result<FallbackResult, AllProvidersFailed> {
        let request = request.into();
        self.generate_request(&request).await
    }

    /// Like [`generate`](Self::generate), borrowing the request.
    pub async fn generate_request(
        &self,
        request: &ChatRequest,
    ) -> Result<FallbackResult, AllProvidersFailed> {
        let answer = self
            .run(request, Mode::Complete, |p, r| p.complete(r))
            .await?;
        let Answer {
            value: c,
            permit,
            entry,
            attempts,
            ..
        } = answer;
        permit.success();
        Ok(FallbackResult {
            text: c.text,
            provider_used: self.inner.entries[entry].breaker.name().to_owned(),
            model: c.model,
            usage: c.usage,
            finish_reason: c.finish_reason,
            attempts,
        })
    }

    /// Streams the answer from the first provider that produces content. Resolves once the first
    /// content chunk has arrived (the commit point): until then failures fall through to the next
    /// provider; after it, a failure is a terminal `Err` item on the stream.
    pub async fn stream(
        &self,
        request: impl Into<ChatRequest>,
    ) -> Result<FallbackStream, AllProvidersFailed> {
        let request = request.into();
        self.stream_request(&request).await
    }

    /// Like [`stream`](Self::stream), borrowing the request.
    pub async fn stream_request(
        &self,
        request: &ChatRequest,
    ) -> Result<FallbackStream, AllProvidersFailed> {
        let answer = self
            .run(request, Mode::Stream, stream::open_until_content)
            .await?;
        let deadline = request
            .timeout
            .or(self.inner.timeout)
            .map(|t| answer.started + t);
        let provider = self.inner.entries[answer.entry].breaker.name().to_owned();
        let ttft = answer
            .attempts
            .last()
            .map(|a| a.latency)
            .unwrap_or_default();
        if let Some(o) = &self.inner.observer {
            o.on_first_chunk(&self.inner.name, &provider, ttft);
        }
        let (stream, buffered) = answer.value;
        Ok(FallbackStream::new(
            stream,
            buffered,
            answer.permit,
            provider,
            answer.attempts,
            self.inner.idle_timeout,
            deadline,
            self.inner
                .observer
                .clone()
                .map(|o| (self.inner.name.clone(), o)),
        ))
    }

    /// The order for one request.
    fn order(&self) -> Vec<usize> {
        let entries = &self.inner.entries;
        match self.inner.strategy {
            Strategy::Priority => order::priority(entries.len()),
            Strategy::Weighted => {
                let weights: Vec<f64> = entries.iter().map(|e| e.weight).collect();
                order::weighted(&weights, |i| entries[i].breaker.admits(), &mut rand::rng())
            }
        }
    }

    /// Tries providers in order until one answers. `call` makes one attempt.
    async fn run<'s, T, F, Fut>(
        &'s self,
        request: &'s ChatRequest,
        mode: Mode,
        call: F,
    ) -> Result<Answer<T>, AllProvidersFailed>
    where
        F: Fn(&'s dyn Provider, &'s ChatRequest) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let inner = &*self.inner;
        let started = Instant::now();
        let deadline = request.timeout.or(inner.timeout).map(|t| started + t);
        let order = self.order();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut errors: Vec<ProviderFailure> = Vec::new();
        let mut deadline_exceeded = false;

        'providers: for (position, &index) in order.iter().enumerate() {
            let entry = &inner.entries[index];
            let name = entry.breaker.name();
            let max_retries = entry.options.retries.unwrap_or(inner.retry.max_retries);
            let policy = RetryPolicy {
                max_retries,
                ..inner.retry
            };
            let limit = match mode {
                Mode::Complete => entry.options.attempt_timeout.or(inner.attempt_timeout),
                Mode::Stream => inner
                    .ttft_timeout
                    .or(entry.options.attempt_timeout)
                    .or(inner.attempt_timeout),
            };
            let mut retries_done = 0;
            // The error that led to the pending retry: if the retry cannot be made (breaker
            // opened meanwhile, deadline), this is still the provider's real last error.
            let mut last_error: Option<ProviderError> = None;
            loop {
                let Ok(permit) = entry.breaker.try_acquire() else {
                    let error = ProviderError::circuit_open();
                    self.record(
                        &mut attempts,
                        name,
                        AttemptOutcome::Skipped,
                        Some(error.clone()),
                        Duration::ZERO,
                    );
                    errors.push(ProviderFailure {
                        provider: name.to_owned(),
                        error: last_error.take().unwrap_or(error),
                    });
                    continue 'providers;
                };
                let begun = Instant::now();
                let left = deadline.map(|d| d.saturating_duration_since(begun));
                if left == Some(Duration::ZERO) {
                    drop(permit);
                    if let Some(error) = last_error.take() {
                        errors.push(ProviderFailure {
                            provider: name.to_owned(),
                            error,
                        });
                    }
                    deadline_exceeded = true;
                    break 'providers;
                }
                // The attempt gets min(attempt timeout, time left); note which one binds.
                let (budget, deadline_binds) = match (limit, left) {
                    (Some(l), Some(r)) if r <= l => (Some(r), true),
                    (Some(l), _) => (Some(l), false),
                    (None, r) => (r, r.is_some()),
                };
                let fut = call(&*entry.provider, request);
                let result = match budget {
                    Some(b) => tokio::time::timeout(b, fut).await.unwrap_or_else(|_| {
                        Err(timeout_error(
                            mode,
                            deadline_binds,
                            if deadline_binds { started.elapsed() } else { b },
                        ))
                    }),
                    None => fut.await,
                };
                let latency = begun.elapsed();
                let error = match result {
                    Ok(value) => {
                        self.record(&mut attempts, name, AttemptOutcome::Success, None, latency);
                        let fell_back = position > 0;
                        if fell_back {
                            tracing::info!(
                                chain = %inner.name,
                                provider_used = name,
                                after = %FailureList(&attempts),
                                "answered by a fallback provider"
                            );
                        }
                        if let Some(o) = &inner.observer {
                            o.on_request(&RequestSummary {
                                chain: &inner.name,
                                provider_used: Some(name),
                                attempts: &attempts,
                                fell_back,
                                streamed: mode == Mode::Stream,
                                latency: started.elapsed(),
                            });
                        }
                        return Ok(Answer {
                            value,
                            permit,
                            entry: index,
                            attempts,
                            started,
                        });
                    }
                    Err(error) => error,
                };
                permit.record(error.kind.breaker_effect());
                self.record(
                    &mut attempts,
                    name,
                    AttemptOutcome::Failed,
                    Some(error.clone()),
                    latency,
                );
                if deadline_binds
                    && error.kind == ErrorKind::Timeout
                    && deadline.is_some_and(|d| Instant::now() >= d)
                {
                    errors.push(ProviderFailure {
                        provider: name.to_owned(),
                        error,
                    });
                    deadline_exceeded = true;
                    break 'providers;
                }
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let mut decision = policy.decide(error.kind, retries_done, left);
                // A failure that opened the breaker ends this provider's turn at once; only a
                // rate-limit cooldown (which opens it on purpose) is worth waiting out.
                if !matches!(error.kind, ErrorKind::RateLimited { .. }) && !entry.breaker.admits() {
                    decision = RetryDecision::GiveUp;
                }
                match decision {
                    RetryDecision::RetryAfter(wait) => {
                        last_error = Some(error);
                        tokio::time::sleep(wait).await;
                        retries_done += 1;
                    }
                    RetryDecision::GiveUp => {
                        let falls_through = error
                            .kind
                            .falls_through(inner.invalid_request_falls_through);
                        errors.push(ProviderFailure {
                            provider: name.to_owned(),
                            error,
                        });
                        if !falls_through {
                            break 'providers;
                        }
                        continue 'providers;
                    }
                }
            }
        }

        if deadline_exceeded {
            for &index in &order {
                let name = inner.entries[index].breaker.name();
                if !errors.iter().any(|f| f.provider == name) {
                    errors.push(ProviderFailure {
                        provider: name.to_owned(),
                        error: ProviderError::timeout("not tried: request deadline passed"),
                    });
                }
            }
        }
        let failure = AllProvidersFailed {
            errors,
            attempts,
            deadline_exceeded,
        };
        tracing::warn!(chain = %inner.name, error = %failure, "all providers failed");
        if let Some(o) = &inner.observer {
            o.on_request(&RequestSummary {
                chain: &inner.name,
                provider_used: None,
                attempts: &failure.attempts,
                fell_back: false,
                streamed: mode == Mode::Stream,
                latency: started.elapsed(),
            });
        }
        Err(failure)
    }

    fn record(
        &self,
        attempts: &mut Vec<Attempt>,
        provider: &str,
        outcome: AttemptOutcome,
        error: Option<ProviderError>,
        latency: Duration,
    ) {
        tracing::debug!(
            chain = %self.inner.name,
            provider,
            outcome = outcome.as_str(),
            error = error.as_ref().map(tracing::field::display),
            latency_us = latency.as_micros() as u64,
            "attempt"
        );
        let attempt = Attempt {
            provider: provider.to_owned(),
            outcome,
            error,
            latency,
        };
        if let Some(o) = &self.inner.observer {
            o.on_attempt(&self.inner.name, &attempt);
        }
        attempts.push(attempt);
    }
}

fn timeout_error(mode: Mode, deadline: bool, after: Duration) -> ProviderError {
    let ms = after.as_millis();
    ProviderError::timeout(match (deadline, mode) {
        (true, _) => format!("request deadline passed after {ms}ms"),
        (false, Mode::Complete) => format!("attempt timed out after {ms}ms"),
        (false, Mode::Stream) => format!("no first token within {ms}ms"),
    })
}

/// Formats the failed attempts before a fallback answer, for the info log line.
struct FailureList<'a>(&'a [Attempt]);

impl std::fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for a in self
            .0
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Success)
        {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            match &a.error {
                Some(e) => write!(f, "{}: {}", a.provider, e.kind)?,
                None => write!(f, "{}: {}", a.provider, a.outcome.as_str())?,
            }
        }
        Ok(())
    }
}

impl Provider for FallbackChain {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            self.generate_request(request)
                .await
                .map(FallbackResult::into_completion)
                .map_err(|e| e.to_provider_error())
        })
    }

    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            match self.stream_request(request).await {
                Ok(s) => Ok(Box::pin(s) as ChunkStream),
                Err(e) => Err(e.to_provider_error()),
            }
        })
    }
}
