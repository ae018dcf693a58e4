//! The ledger of one request: every attempt, each provider's last error, whether the deadline
//! passed — and, when nothing answered, the [`AllProvidersFailed`] that says why, naming every
//! provider of the chain.

use std::time::Duration;

use tokio::time::Instant;

use tracing::Span;

use super::{ChainInner, Mode, trace};
use crate::{
    AllProvidersFailed, Attempt, AttemptOutcome, ErrorKind, ProviderError, ProviderFailure,
    RequestSummary,
};

pub(super) struct Ledger<'c> {
    chain: &'c ChainInner,
    /// The request's span: how the request ended is recorded on it.
    span: Span,
    started: Instant,
    mode: Mode,
    pub(super) attempts: Vec<Attempt>,
    failures: Vec<ProviderFailure>,
    deadline_exceeded: bool,
    /// The error that ended the request early (a kind that does not fall through).
    stopped_by: Option<(String, ErrorKind)>,
}

impl<'c> Ledger<'c> {
    pub(super) fn new(chain: &'c ChainInner, started: Instant, mode: Mode, span: &Span) -> Self {
        Self {
            chain,
            span: span.clone(),
            started,
            mode,
            attempts: Vec::new(),
            failures: Vec::new(),
            deadline_exceeded: false,
            stopped_by: None,
        }
    }

    /// Records one attempt (and tells the observer). The provider's id for the call comes from
    /// the error, else `upstream_id` (read off the answer).
    pub(super) fn attempt(
        &mut self,
        provider: &str,
        outcome: AttemptOutcome,
        error: Option<ProviderError>,
        latency: Duration,
        upstream_id: Option<&str>,
    ) {
        tracing::debug!(
            chain = %self.chain.name,
            provider,
            outcome = outcome.as_str(),
            error = error.as_ref().map(tracing::field::display),
            latency_us = latency.as_micros() as u64,
            "attempt"
        );
        let upstream_id = error
            .as_ref()
            .and_then(|e| e.upstream_request_id.clone())
            .or_else(|| upstream_id.map(str::to_owned));
        let mut attempt = Attempt::new(provider, outcome, error, latency);
        attempt.upstream_request_id = upstream_id;
        if let Some(o) = &self.chain.observer {
            o.on_attempt(&self.chain.name, &attempt);
        }
        self.attempts.push(attempt);
    }

    /// The provider is done for this request: it failed with `error` (its last one).
    pub(super) fn failed(&mut self, provider: &str, error: ProviderError) {
        self.settle(ProviderFailure::attempted(provider, error));
    }

    /// Keeps one entry per provider: a later verdict replaces an earlier one.
    fn settle(&mut self, failure: ProviderFailure) {
        match self
            .failures
            .iter_mut()
            .find(|f| f.provider == failure.provider)
        {
            Some(f) => *f = failure,
            None => self.failures.push(failure),
        }
    }

    /// The provider was skipped: its breaker refused. `last` is its earlier error in this
    /// request (a retry refused after the breaker opened), which stays its real failure.
    pub(super) fn skipped(&mut self, provider: &str, last: Option<ProviderError>) {
        let error = ProviderError::circuit_open();
        self.attempt(
            provider,
            AttemptOutcome::Skipped,
            Some(error.clone()),
            Duration::ZERO,
            None,
        );
        self.settle(match last {
            Some(e) => ProviderFailure::attempted(provider, e),
            None => ProviderFailure::not_attempted(provider, error),
        });
    }

    /// The provider cannot serve this request: skipped without a call, with the reason.
    pub(super) fn unsupported(&mut self, provider: &str, why: &crate::Unsupported) {
        let error = why.to_error();
        self.attempt(
            provider,
            AttemptOutcome::Skipped,
            Some(error.clone()),
            Duration::ZERO,
            None,
        );
        self.settle(ProviderFailure::not_attempted(provider, error));
    }

    /// A hedge was started beside the first attempt.
    pub(super) fn hedged(&self) {
        if !self.span.is_disabled() {
            self.span.record("backstop.hedged", true);
        }
    }

    pub(super) fn deadline_passed(&mut self) {
        self.deadline_exceeded = true;
    }

    pub(super) fn stopped(&mut self, provider: &str, kind: ErrorKind) {
        self.stopped_by = Some((provider.to_owned(), kind));
    }

    /// True when no provider was called and at least one was skipped for an open breaker
    /// (the others cannot serve the request).
    pub(super) fn all_skipped(&self) -> bool {
        self.attempts
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Skipped)
            && self.attempts.iter().any(|a| {
                a.error
                    .as_ref()
                    .is_some_and(|e| e.kind == ErrorKind::CircuitOpen)
            })
    }

    /// An answer came from `provider`: logs a fallback and tells the observer.
    pub(super) fn answered(&self, provider: &str, fell_back: bool) {
        trace::answered(&self.span, provider, fell_back, self.attempts.len());
        if fell_back {
            tracing::info!(
                chain = %self.chain.name,
                provider_used = provider,
                after = %FailureList(&self.attempts),
                "answered by a fallback provider"
            );
        }
        self.report(Some(provider), &self.attempts, fell_back);
    }

    /// Tells the observer how the request ended.
    fn report(&self, provider_used: Option<&str>, attempts: &[Attempt], fell_back: bool) {
        if let Some(o) = &self.chain.observer {
            o.on_request(&RequestSummary {
                chain: &self.chain.name,
                provider_used,
                attempts,
                fell_back,
                streamed: self.mode == Mode::Stream,
                latency: self.started.elapsed(),
            });
        }
    }

    /// Nothing answered. `never_reached` are the providers the request did not get to.
    pub(super) fn finish(
        mut self,
        never_reached: impl Iterator<Item = usize>,
    ) -> AllProvidersFailed {
        let chain = self.chain;
        let mut failures = std::mem::take(&mut self.failures);
        let why = match (&self.stopped_by, self.deadline_exceeded) {
            (_, true) => "not tried: request deadline passed".to_owned(),
            (Some((provider, kind)), false) => {
                format!("not tried: the chain stopped after {kind} from {provider}")
            }
            (None, false) => "not tried".to_owned(),
        };
        let kind = match &self.stopped_by {
            Some((_, k)) if !self.deadline_exceeded => *k,
            _ => ErrorKind::Timeout,
        };
        for i in never_reached {
            let name = chain.entries[i].breaker.name();
            if !failures.iter().any(|f| f.provider == name) {
                failures.push(ProviderFailure::not_attempted(
                    name,
                    ProviderError::new(kind, why.clone()),
                ));
            }
        }
        let retry_after = chain
            .entries
            .iter()
            .map(|e| {
                let hold = e.breaker.hold().remaining().unwrap_or_default();
                e.breaker.time_to_admit().max(hold)
            })
            .min()
            .filter(|d| !d.is_zero());
        let attempts = std::mem::take(&mut self.attempts);
        let mut failure = AllProvidersFailed::new(failures, attempts, self.deadline_exceeded);
        failure.retry_after = retry_after;
        tracing::warn!(chain = %chain.name, error = %failure, "all providers failed");
        trace::all_failed(&self.span, &failure);
        self.report(None, &failure.attempts, false);
        failure
    }
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
