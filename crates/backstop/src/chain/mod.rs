//! The fallback chain: try providers in order, each behind its breaker, with retries and deadlines.
//!
//! One request reads top-down in [`FallbackChain::run`]: the [plan](plan) hands out the next
//! provider (priority or weighted order, rate-limit holds pushed back); one
//! [attempt](attempt) runs it within its time budget and charges its breaker; the
//! [policy step](policy) decides between a retry, the next provider and stopping; the
//! [ledger](ledger) keeps the record and, when nothing answered, builds the error.

mod attempt;
mod builder;
mod deadline;
mod hedge;
mod ledger;
mod plan;
mod policy;
mod resume;
mod routed;
mod stream;
mod trace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{Instrument, Span};

pub use builder::{
    ChainBuildError, FallbackChainBuilder, Priority, ProviderOptions, Weighted, WhenAllOpen,
    fallback_chain, weighted_fallback_chain,
};
pub use hedge::HedgeAfter;
pub use resume::Contribution;
pub use stream::FallbackStream;

use crate::budget::Budget;
use crate::{
    AllProvidersFailed, AttemptOutcome, BoxFuture, ChatRequest, ChunkStream, CircuitBreaker,
    Completion, EmbeddingRequest, EmbeddingResult, Embeddings, ErrorKind, FallThrough,
    FallbackResult, Observer, Permit, Provider, ProviderError, RetryPolicy, Unsupported, time,
};
use attempt::{Limits, Outcome, Reply};
use ledger::Ledger;
use plan::Plan;
use policy::{Facts, Step};
use routed::Routed;
use trace::{AttemptMeta, Role};

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
    /// Which continuation form this provider takes (learned on the first resume).
    resume_form: resume::FormMemory,
    /// Recent answer times, for percentile hedging.
    latencies: hedge::Latencies,
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
    budget: Option<Budget>,
    attempt_timeout: Option<Duration>,
    timeout: Option<Duration>,
    ttft_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    fall_through: FallThrough,
    when_all_open: WhenAllOpen,
    stream_resume: bool,
    max_resumes: u32,
    hedging: Option<hedge::Hedging>,
    observer: Option<Arc<dyn Observer>>,
}

impl ChainInner {
    /// A retry may be made if the retry budget has a token; the observer hears either way.
    fn retry_granted(&self, provider: &str) -> bool {
        let granted = self.budget.as_ref().is_none_or(Budget::try_withdraw);
        if let Some(o) = &self.observer {
            o.on_retry(&self.name, provider, granted);
        }
        if !granted {
            tracing::debug!(chain = %self.name, provider, "retry budget spent: moving on");
        }
        granted
    }

    /// After a failed attempt on `entry`: retry it (the budget granting), move on, or stop.
    /// One rule for first attempts and continuations.
    fn next_step(
        &self,
        entry: &Entry,
        kind: ErrorKind,
        policy: &RetryPolicy,
        retries_done: u32,
        deadline: Option<Instant>,
    ) -> Step {
        let facts = Facts {
            retries_done,
            time_left: deadline.map(|d| d.saturating_duration_since(Instant::now())),
            admits: entry.breaker.admits(),
        };
        match policy::after_failure(kind, policy, self.fall_through, facts) {
            Step::Retry(wait) if self.retry_granted(entry.breaker.name()) => Step::Retry(wait),
            Step::Retry(_) => Step::Next,
            step => step,
        }
    }

    /// A 429 puts the provider on a rate-limit hold (never opens its breaker).
    fn note_rate_limit(&self, entry: &Entry, kind: ErrorKind) {
        if let ErrorKind::RateLimited { retry_after } = kind {
            let length = entry.breaker.hold().rate_limited(retry_after);
            if let Some(o) = &self.observer {
                o.on_hold(&self.name, entry.breaker.name(), length);
            }
        }
    }
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
    attempts: Vec<crate::Attempt>,
    deadline: Option<Instant>,
    /// Who may continue the stream if it breaks, best first (`Plan::resume_order`).
    remaining: Vec<usize>,
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
        let (answer, span) = self
            .run_in_span(request, Mode::Complete, |p, r| p.complete(r))
            .await?;
        trace::completion(&span, &answer.value);
        let (value, provider, attempts) = self.accept(answer);
        Ok(FallbackResult::new(value, provider, attempts))
    }

    /// Embeds the request's texts with the first provider that answers: the same breakers,
    /// holds, retries and deadline as a chat request. Providers that serve no embeddings
    /// are skipped without a call (`unsupported: embeddings`).
    pub async fn embed(
        &self,
        request: &EmbeddingRequest,
    ) -> Result<EmbeddingResult, AllProvidersFailed> {
        let (answer, span) = self
            .run_in_span(request, Mode::Complete, |p, r| p.embed(r))
            .await?;
        trace::embeddings(&span, &answer.value);
        let (value, provider, attempts) = self.accept(answer);
        Ok(EmbeddingResult::new(value, provider, attempts))
    }

    /// A whole answer is in: the provider's permit succeeds; its value, provider and attempts.
    fn accept<T>(&self, answer: Answer<T>) -> (T, &str, Vec<crate::Attempt>) {
        answer.permit.success();
        let provider = self.inner.entries[answer.entry].breaker.name();
        (answer.value, provider, answer.attempts)
    }

    /// Streams the answer from the first provider that produces content (or a finish reason).
    /// Resolves at that commit point: until then failures fall through to the next provider;
    /// after it, a failure is a terminal `Err` item on the stream.
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
        let (answer, span) = self
            .run_in_span(request, Mode::Stream, stream::open_until_content)
            .await?;
        for chunk in &answer.value.1 {
            trace::chunk(&span, chunk);
        }
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
        let resumer = self.inner.stream_resume.then(|| resume::Resumer {
            chain: self.inner.clone(),
            request: Arc::new(request.clone()),
            candidates: answer.remaining,
            left: self.inner.max_resumes,
            span: span.clone(),
        });
        Ok(FallbackStream::new(stream::Committed {
            stream,
            buffered,
            permit: answer.permit,
            provider,
            attempts: answer.attempts,
            idle: self.inner.idle_timeout,
            deadline: answer.deadline,
            observer: self
                .inner
                .observer
                .clone()
                .map(|o| (self.inner.name.clone(), o)),
            resumer,
            span,
        }))
    }

    /// `Ok` when one provider can serve `request`; otherwise the union of what each cannot.
    fn served_by_one(&self, request: &impl Routed) -> Result<(), Unsupported> {
        let mut all = Unsupported::new();
        for entry in &self.inner.entries {
            match request.check(&*entry.provider) {
                Ok(()) => return Ok(()),
                Err(u) => u.params.into_iter().for_each(|p| all.add(p)),
            }
        }
        all.into_result()
    }

    /// The request's absolute deadline: its own timeout (else the chain's) from `started`, and
    /// never later than the deadline of a chain this one is nested in.
    fn deadline(&self, request: &impl Routed, started: Instant) -> Option<Instant> {
        let own = request
            .timeout()
            .or(self.inner.timeout)
            .map(|t| time::after(started, t));
        deadline::earliest(own, deadline::inherited())
    }

    /// [`run`](Self::run) inside a new request span, returned beside the answer (a stream
    /// keeps it open).
    async fn run_in_span<'s, R: Routed, T, F, Fut>(
        &'s self,
        request: &'s R,
        mode: Mode,
        call: F,
    ) -> Result<(Answer<T>, Span), AllProvidersFailed>
    where
        T: Reply,
        F: Fn(&'s dyn Provider, &'s R) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let span = trace::request(&self.inner.name, mode, request);
        let answer = self
            .run(request, mode, call, &span)
            .instrument(span.clone())
            .await?;
        Ok((answer, span))
    }

    /// Tries providers until one answers. `call` makes one attempt.
    async fn run<'s, R: Routed, T, F, Fut>(
        &'s self,
        request: &'s R,
        mode: Mode,
        call: F,
        span: &Span,
    ) -> Result<Answer<T>, AllProvidersFailed>
    where
        T: Reply,
        F: Fn(&'s dyn Provider, &'s R) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let inner = &*self.inner;
        let started = Instant::now();
        let deadline = self.deadline(request, started);
        if let Some(b) = &inner.budget {
            b.deposit(started);
        }
        if let Some(h) = &inner.hedging {
            h.budget.deposit(started);
        }
        let mut plan = Plan::new(&inner.entries, inner.strategy);
        let mut ledger = Ledger::new(inner, started, mode, span);
        for (i, entry) in inner.entries.iter().enumerate() {
            if let Err(why) = request.check(&*entry.provider) {
                plan.exclude(i);
                ledger.unsupported(entry.breaker.name(), &why);
            }
        }

        'providers: while let Some(index) = plan.next(&inner.entries) {
            let entry = &inner.entries[index];
            let name = entry.breaker.name();
            let policy = inner
                .retry
                .max_retries(entry.options.retries.unwrap_or(inner.retry.max_retries));
            let limits = Limits {
                timeout: self.attempt_timeout(entry, mode),
                deadline,
                started,
            };
            let mut retries_done = 0;
            // The error that led to a pending retry: if the retry cannot be made (the breaker
            // opened meanwhile), it is still the provider's real last error.
            let mut last_error: Option<ProviderError> = None;
            loop {
                let meta = AttemptMeta {
                    chain: &inner.name,
                    breaker: &entry.breaker,
                    operation: request.operation(),
                    model: entry.provider.model(),
                    role: if plan.fell_back() {
                        Role::Fallback
                    } else {
                        Role::Primary
                    },
                    retry: retries_done,
                };
                let Ok(permit) = entry.breaker.try_acquire() else {
                    trace::skipped(&meta, span);
                    ledger.skipped(name, last_error.take());
                    continue 'providers;
                };
                let first = attempt::run(
                    &*entry.provider,
                    permit,
                    request,
                    &call,
                    mode,
                    limits,
                    meta,
                    span,
                );
                let hedge_delay = match &inner.hedging {
                    Some(h) if retries_done == 0 && !plan.fell_back() => {
                        h.after.delay(&entry.latencies).map(|d| (h, d))
                    }
                    _ => None,
                };
                let (outcome, latency) = match hedge_delay {
                    Some((h, delay)) => {
                        let hedge = || {
                            let (j, permit) = self.pick_hedge(h, &mut plan)?;
                            let e = &inner.entries[j];
                            let limits = Limits {
                                timeout: self.attempt_timeout(e, mode),
                                ..limits
                            };
                            let meta = AttemptMeta {
                                chain: &inner.name,
                                breaker: &e.breaker,
                                operation: request.operation(),
                                model: e.provider.model(),
                                role: Role::Hedge,
                                retry: 0,
                            };
                            let leg = attempt::run(
                                &*e.provider,
                                permit,
                                request,
                                &call,
                                mode,
                                limits,
                                meta,
                                span,
                            );
                            Some((j, leg))
                        };
                        // Boxed: racing two legs inline would double every chain future's
                        // size (2.6 KB of 3.1), and futures are moved whole.
                        match Box::pin(hedge::race((index, first), delay, hedge)).await {
                            Err(alone) => alone,
                            Ok(legs) => match self.settle_race(legs, &mut ledger, index) {
                                Ok((value, permit, winner)) => {
                                    ledger.answered(
                                        inner.entries[winner].breaker.name(),
                                        winner != index,
                                    );
                                    return Ok(Answer {
                                        value,
                                        permit,
                                        entry: winner,
                                        attempts: ledger.attempts,
                                        deadline,
                                        remaining: plan.resume_order(winner),
                                    });
                                }
                                Err(RaceEnd::Continue) => continue 'providers,
                                Err(RaceEnd::Stop) => break 'providers,
                            },
                        }
                    }
                    None => first.await,
                };
                let error = match outcome {
                    Outcome::Answered(value, permit) => {
                        let id = value.upstream_request_id();
                        ledger.attempt(name, AttemptOutcome::Success, None, latency, id);
                        if inner.hedging.is_some() {
                            entry.latencies.record(latency);
                        }
                        ledger.answered(name, plan.fell_back());
                        return Ok(Answer {
                            value,
                            permit,
                            entry: index,
                            attempts: ledger.attempts,
                            deadline,
                            remaining: plan.resume_order(index),
                        });
                    }
                    Outcome::DeadlinePassed => {
                        if let Some(e) = last_error.take() {
                            ledger.failed(name, e);
                        }
                        ledger.deadline_passed();
                        break 'providers;
                    }
                    Outcome::Failed(error) => error,
                };
                ledger.attempt(
                    name,
                    AttemptOutcome::Failed,
                    Some(error.clone()),
                    latency,
                    None,
                );
                inner.note_rate_limit(entry, error.kind);
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    ledger.failed(name, error);
                    ledger.deadline_passed();
                    break 'providers;
                }
                match inner.next_step(entry, error.kind, &policy, retries_done, deadline) {
                    Step::Retry(wait) => {
                        last_error = Some(error);
                        tokio::time::sleep(wait).await;
                        retries_done += 1;
                    }
                    Step::Next => {
                        ledger.failed(name, error);
                        continue 'providers;
                    }
                    Step::Stop => {
                        ledger.stopped(name, error.kind);
                        ledger.failed(name, error);
                        break 'providers;
                    }
                }
            }
        }

        if inner.when_all_open == WhenAllOpen::Probe
            && ledger.all_skipped()
            && let Some(answer) = self
                .last_resort(request, &call, mode, (deadline, started), &mut ledger, span)
                .await
        {
            return Ok(answer);
        }
        Err(ledger.finish(plan.remaining()))
    }

    /// The hedge for the request's first attempt: the next provider of the plan and its permit,
    /// if the hedge budget allows and its breaker admits a call.
    fn pick_hedge(&self, hedging: &hedge::Hedging, plan: &mut Plan) -> Option<(usize, Permit)> {
        let inner = &*self.inner;
        if !hedging.budget.try_withdraw() {
            tracing::debug!(chain = %inner.name, "hedge budget spent: waiting on the first provider");
            return None;
        }
        let index = plan.next_admitted(&inner.entries)?;
        let entry = &inner.entries[index];
        let permit = entry.breaker.try_acquire().ok()?;
        tracing::debug!(chain = %inner.name, hedge = entry.breaker.name(), "first provider slow: hedging");
        Some((index, permit))
    }

    /// Records both legs of a hedged race and finds the winner.
    fn settle_race<T: Reply>(
        &self,
        legs: hedge::Legs<T>,
        ledger: &mut Ledger<'_>,
        primary: usize,
    ) -> Result<(T, Permit, usize), RaceEnd> {
        let inner = &*self.inner;
        ledger.hedged();
        let mut winner = None;
        let mut end = RaceEnd::Continue;
        let hedge = legs.iter().map(|l| l.0).find(|i| *i != primary);
        for (index, leg, latency) in legs {
            let entry = &inner.entries[index];
            let name = entry.breaker.name();
            match leg {
                hedge::Leg::Answered(value, permit) => {
                    let id = value.upstream_request_id();
                    ledger.attempt(name, AttemptOutcome::Success, None, latency, id);
                    entry.latencies.record(latency);
                    winner = Some((value, permit, index));
                }
                hedge::Leg::Failed(error) => {
                    ledger.attempt(
                        name,
                        AttemptOutcome::Failed,
                        Some(error.clone()),
                        latency,
                        None,
                    );
                    inner.note_rate_limit(entry, error.kind);
                    if !error.kind.falls_through(inner.fall_through) {
                        ledger.stopped(name, error.kind);
                        end = RaceEnd::Stop;
                    }
                    ledger.failed(name, error);
                }
                hedge::Leg::NoTime => {
                    ledger.deadline_passed();
                    end = RaceEnd::Stop;
                }
                hedge::Leg::Cancelled => {
                    ledger.attempt(name, AttemptOutcome::Cancelled, None, latency, None);
                }
            }
        }
        if let (Some(o), Some(h)) = (&inner.observer, hedge) {
            let won = winner.as_ref().map(|w| inner.entries[w.2].breaker.name());
            o.on_hedge(
                &inner.name,
                inner.entries[primary].breaker.name(),
                inner.entries[h].breaker.name(),
                won,
            );
        }
        winner.ok_or(end)
    }

    /// The attempt timeout of `entry`: streaming attempts wait for the first token, under the
    /// chain's TTFT timeout when set.
    fn attempt_timeout(&self, entry: &Entry, mode: Mode) -> Option<Duration> {
        let inner = &self.inner;
        match mode {
            Mode::Complete => entry.options.attempt_timeout.or(inner.attempt_timeout),
            Mode::Stream => inner
                .ttft_timeout
                .or(entry.options.attempt_timeout)
                .or(inner.attempt_timeout),
        }
    }

    /// `when_all_open = probe`: every provider was skipped for an open breaker, so the one
    /// whose breaker opened longest ago gets one extra probe (Envoy's panic routing).
    async fn last_resort<'s, R: Routed, T, F, Fut>(
        &'s self,
        request: &'s R,
        call: &F,
        mode: Mode,
        (deadline, started): (Option<Instant>, Instant),
        ledger: &mut Ledger<'_>,
        span: &Span,
    ) -> Option<Answer<T>>
    where
        T: Reply,
        F: Fn(&'s dyn Provider, &'s R) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let inner = &*self.inner;
        let (index, entry) = inner
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| request.check(&*e.provider).is_ok())
            .max_by_key(|(_, e)| e.breaker.open_since().unwrap_or_default())?;
        let name = entry.breaker.name();
        tracing::info!(chain = %inner.name, provider = name, "every breaker open: probing the one open longest");
        let limits = Limits {
            timeout: self.attempt_timeout(entry, mode),
            deadline,
            started,
        };
        let permit = entry.breaker.force_probe();
        let meta = AttemptMeta {
            chain: &inner.name,
            breaker: &entry.breaker,
            operation: request.operation(),
            model: entry.provider.model(),
            role: Role::LastResort,
            retry: 0,
        };
        let (outcome, latency) = attempt::run(
            &*entry.provider,
            permit,
            request,
            call,
            mode,
            limits,
            meta,
            span,
        )
        .await;
        match outcome {
            Outcome::Answered(value, permit) => {
                let id = value.upstream_request_id();
                ledger.attempt(name, AttemptOutcome::Success, None, latency, id);
                ledger.answered(name, true);
                Some(Answer {
                    value,
                    permit,
                    entry: index,
                    attempts: std::mem::take(&mut ledger.attempts),
                    deadline,
                    remaining: Vec::new(),
                })
            }
            Outcome::Failed(error) => {
                ledger.attempt(
                    name,
                    AttemptOutcome::Failed,
                    Some(error.clone()),
                    latency,
                    None,
                );
                ledger.failed(name, error);
                None
            }
            Outcome::DeadlinePassed => {
                ledger.deadline_passed();
                None
            }
        }
    }
}

/// How a race without an answer ends the request's turn.
enum RaceEnd {
    /// Try the rest of the plan.
    Continue,
    /// Stop: a kind that does not fall through, or the deadline.
    Stop,
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

    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        Box::pin(async move {
            self.embed(request)
                .await
                .map(|r| r.embeddings)
                .map_err(|e| e.to_provider_error())
        })
    }

    /// A chain embeds when one of its providers does.
    fn check_embeddings(&self, request: &EmbeddingRequest) -> Result<(), Unsupported> {
        self.served_by_one(request)
    }

    /// A chain serves a request when one of its providers does; otherwise it cannot honour
    /// the union of what each of them cannot.
    fn check(&self, request: &ChatRequest) -> Result<(), Unsupported> {
        self.served_by_one(request)
    }
}
