//! Building a chain: providers with their breakers, retries, timeouts and strategy.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::hedge::{HedgeAfter, Hedging};
use super::{ChainInner, Entry, FallbackChain, Strategy};
use crate::budget::Budget;
use crate::{CircuitBreaker, FallThrough, Observer, Provider, RetryBudget, RetryPolicy};

/// What a request does when every provider's breaker is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenAllOpen {
    /// Fail at once without a call (the seed's behaviour; the default).
    #[default]
    Fail,
    /// Send the request to the provider whose breaker opened longest ago, as one extra probe
    /// (Envoy's panic routing): a success closes that breaker.
    Probe,
}

/// Per-provider overrides of the chain-wide settings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProviderOptions {
    /// This provider's attempt timeout (else the chain's).
    pub attempt_timeout: Option<Duration>,
    /// This provider's retries (else the chain's `retries_per_provider`).
    pub retries: Option<u32>,
}

impl ProviderOptions {
    /// Sets the attempt timeout.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }
    /// Sets the retries.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }
}

/// A chain that cannot be built, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBuildError {
    /// The chain has no providers.
    #[error("a fallback chain needs at least one provider")]
    Empty,
    /// A weight is not a finite number above zero.
    #[error("provider `{provider}` has weight {weight}; weights must be finite and greater than 0")]
    InvalidWeight {
        /// The provider's (breaker's) name.
        provider: String,
        /// The rejected weight.
        weight: f64,
    },
    /// Two entries share a breaker name, so `provider_used` would be ambiguous.
    #[error("two providers are named `{0}`; give each breaker its own name")]
    DuplicateName(String),
}

/// Marker: providers are tried in the order given.
#[derive(Debug, Clone, Copy)]
pub struct Priority;
/// Marker: each request draws an order by weight.
#[derive(Debug, Clone, Copy)]
pub struct Weighted;

/// Builds a [`FallbackChain`]. Start with [`FallbackChain::builder`] (priority order) or
/// [`FallbackChain::weighted`].
#[must_use = "a builder does nothing until `.build()`"]
pub struct FallbackChainBuilder<S> {
    /// The chain being built; `strategy` is set by `build`.
    chain: ChainInner,
    strategy: PhantomData<S>,
}

impl<S> FallbackChainBuilder<S> {
    pub(crate) fn new() -> Self {
        Self {
            chain: ChainInner {
                name: "chain".to_owned(),
                entries: Vec::new(),
                strategy: Strategy::Priority,
                retry: RetryPolicy::none(),
                budget: Some(Budget::new(RetryBudget::default())),
                attempt_timeout: None,
                timeout: None,
                ttft_timeout: None,
                idle_timeout: None,
                fall_through: FallThrough::default(),
                when_all_open: WhenAllOpen::Fail,
                stream_resume: false,
                max_resumes: 3,
                hedging: None,
                observer: None,
            },
            strategy: PhantomData,
        }
    }

    fn push(
        mut self,
        provider: Arc<dyn Provider>,
        breaker: CircuitBreaker,
        weight: f64,
        options: ProviderOptions,
    ) -> Self {
        self.chain.entries.push(Entry {
            provider,
            breaker,
            weight,
            options,
            resume_form: Default::default(),
            latencies: Default::default(),
        });
        self
    }

    /// The chain's name, used in logs, metrics and as its `Provider::name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.chain.name = name.into();
        self
    }
    /// Extra attempts on the same provider for retryable errors (default 0).
    pub fn retries_per_provider(mut self, n: u32) -> Self {
        self.chain.retry.max_retries = n;
        self
    }
    /// The whole retry policy (backoff, caps); `retries_per_provider` sets its `max_retries`.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.chain.retry = policy;
        self
    }
    /// Longest single attempt (non-streaming) or wait for the first token (streaming).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.chain.attempt_timeout = Some(d);
        self
    }
    /// Overall deadline per request, across every attempt and backoff. Its expiry counts as a
    /// timeout on the provider being tried.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.chain.timeout = Some(d);
        self
    }
    /// Streaming: longest wait from the request to the first content chunk. It applies to every
    /// provider and wins over per-provider attempt timeouts, which are sized for whole
    /// non-streamed answers (default: the attempt timeout).
    pub fn ttft_timeout(mut self, d: Duration) -> Self {
        self.chain.ttft_timeout = Some(d);
        self
    }
    /// Streaming: longest gap between chunks once the stream has started.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.chain.idle_timeout = Some(d);
        self
    }
    /// Whether an `InvalidRequest` error tries the next provider (default true).
    pub fn invalid_request_falls_through(mut self, yes: bool) -> Self {
        self.chain.fall_through.invalid_request = yes;
        self
    }
    /// Whether a `ContentFiltered` refusal tries the next provider (default false: the caller
    /// gets the provider's refusal).
    pub fn content_filtered_falls_through(mut self, yes: bool) -> Self {
        self.chain.fall_through.content_filtered = yes;
        self
    }
    /// The whole fall-through policy for the configurable kinds.
    pub fn fall_through(mut self, policy: FallThrough) -> Self {
        self.chain.fall_through = policy;
        self
    }
    /// Limits same-provider retries to a share of recent requests (on by default:
    /// [`RetryBudget::default`]); `None` turns the budget off.
    pub fn retry_budget(mut self, budget: Option<RetryBudget>) -> Self {
        self.chain.budget = budget.map(Budget::new);
        self
    }
    /// Streaming: when a committed stream breaks (disconnect, truncation, in-band error, idle
    /// timeout), continue the answer on another provider, so the caller sees one stream
    /// (default off): providers not yet tried first, then those that failed before the commit,
    /// the broken one last; each is retried under the chain's policy and budget. See
    /// [`crate::FallbackStream::contributions`].
    pub fn stream_resume(mut self, yes: bool) -> Self {
        self.chain.stream_resume = yes;
        self
    }
    /// Streaming: at most this many resumes per request (default 3).
    pub fn max_resumes(mut self, n: u32) -> Self {
        self.chain.max_resumes = n;
        self
    }
    /// Hedged requests: when the first provider has not answered (streaming: sent its first
    /// token) by `after`, start the next provider beside it and take whichever answers first;
    /// the other is cancelled, neutral for its breaker. At most `budget` of the requests (a
    /// share, e.g. 0.1) are hedged, so a slow provider does not double the load on the rest.
    pub fn hedge(mut self, after: HedgeAfter, budget: f64) -> Self {
        self.chain.hedging = Some(Hedging {
            after,
            budget: Budget::new(RetryBudget {
                ratio: budget,
                min_per_second: 0,
                ttl: Duration::from_secs(10),
            }),
        });
        self
    }
    /// [`hedge`](Self::hedge) after a fixed delay, with a 10% budget.
    pub fn hedge_after(self, after: Duration) -> Self {
        self.hedge(HedgeAfter::Fixed(after), 0.1)
    }
    /// What a request does when every breaker is open (default [`WhenAllOpen::Fail`]).
    pub fn when_all_open(mut self, what: WhenAllOpen) -> Self {
        self.chain.when_all_open = what;
        self
    }
    /// Receives attempt and request events (for metrics).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.chain.observer = Some(observer);
        self
    }

    fn finish(self, strategy: Strategy) -> Result<FallbackChain, ChainBuildError> {
        if self.chain.entries.is_empty() {
            return Err(ChainBuildError::Empty);
        }
        for (i, e) in self.chain.entries.iter().enumerate() {
            let name = e.breaker.name();
            if self.chain.entries[..i]
                .iter()
                .any(|o| o.breaker.name() == name)
            {
                return Err(ChainBuildError::DuplicateName(name.to_owned()));
            }
            if matches!(strategy, Strategy::Weighted) && !(e.weight.is_finite() && e.weight > 0.0) {
                return Err(ChainBuildError::InvalidWeight {
                    provider: name.to_owned(),
                    weight: e.weight,
                });
            }
        }
        let mut chain = self.chain;
        chain.strategy = strategy;
        Ok(FallbackChain {
            inner: Arc::new(chain),
        })
    }
}

impl FallbackChainBuilder<Priority> {
    /// Adds the next provider in priority order, guarded by `breaker`.
    pub fn provider(self, llm: impl Provider + 'static, breaker: CircuitBreaker) -> Self {
        self.push(Arc::new(llm), breaker, 1.0, ProviderOptions::default())
    }
    /// Adds a shared provider with per-provider options.
    pub fn provider_with(
        self,
        llm: Arc<dyn Provider>,
        breaker: CircuitBreaker,
        options: ProviderOptions,
    ) -> Self {
        self.push(llm, breaker, 1.0, options)
    }
    /// Builds the chain.
    pub fn build(self) -> Result<FallbackChain, ChainBuildError> {
        self.finish(Strategy::Priority)
    }
}

impl FallbackChainBuilder<Weighted> {
    /// Adds a provider drawn first with probability proportional to `weight`.
    pub fn provider(
        self,
        llm: impl Provider + 'static,
        breaker: CircuitBreaker,
        weight: f64,
    ) -> Self {
        self.push(Arc::new(llm), breaker, weight, ProviderOptions::default())
    }
    /// Adds a shared provider with a weight and per-provider options.
    pub fn provider_with(
        self,
        llm: Arc<dyn Provider>,
        breaker: CircuitBreaker,
        weight: f64,
        options: ProviderOptions,
    ) -> Self {
        self.push(llm, breaker, weight, options)
    }
    /// Builds the chain; rejects weights that are not finite and positive.
    pub fn build(self) -> Result<FallbackChain, ChainBuildError> {
        self.finish(Strategy::Weighted)
    }
}

/// The seed's `fallback_chain(providers=[(llm, breaker), ...], retries_per_provider=n)`.
pub fn fallback_chain<P: Provider + 'static>(
    providers: impl IntoIterator<Item = (P, CircuitBreaker)>,
    retries_per_provider: u32,
) -> Result<FallbackChain, ChainBuildError> {
    providers
        .into_iter()
        .fold(FallbackChain::builder(), |b, (llm, breaker)| {
            b.provider(llm, breaker)
        })
        .retries_per_provider(retries_per_provider)
        .build()
}

/// The seed's `weighted_fallback_chain(providers=[(llm, breaker, weight), ...])`.
pub fn weighted_fallback_chain<P: Provider + 'static>(
    providers: impl IntoIterator<Item = (P, CircuitBreaker, f64)>,
) -> Result<FallbackChain, ChainBuildError> {
    providers
        .into_iter()
        .fold(FallbackChain::weighted(), |b, (llm, breaker, w)| {
            b.provider(llm, breaker, w)
        })
        .build()
}
