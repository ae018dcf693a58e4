//! Prometheus metrics on `prometheus-client`: one registry per gateway (several gateways in
//! one process, as in tests, stay apart), families registered once at start-up, and the
//! handles of every label set resolved when a config is built ([`ChainMetrics`],
//! [`ProviderMetrics`]), so the request path increments atomics without a map lookup or an
//! allocation. The families survive reloads: a chain or provider that stays keeps its series,
//! one that goes has them removed.
//!
//! `/metrics` answers the Prometheus text format (0.0.4), or OpenMetrics when the scraper asks
//! for it; label values are escaped by the library. Every family is listed in the README.

mod breakers;
mod failovers;
mod histogram;
mod observer;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use backstop::{AttemptOutcome, BreakerState, CircuitBreaker, ErrorKind};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use failovers::{Failover, FailoverLog, PassedOver};
pub use histogram::{AtomicHistogram, HistogramSnapshot, LATENCY_BOUNDS, TOKEN_BOUNDS};
pub use observer::BreakerWatch;

/// A label set of one label.
type L1 = [(&'static str, String); 1];
/// A label set of two labels.
type L2 = [(&'static str, String); 2];
type Histograms<L> = Family<L, AtomicHistogram, fn() -> AtomicHistogram>;

/// How a request through a chain ended, in `backstop_requests_total{outcome}` order.
pub const REQUEST_OUTCOMES: [&str; 3] = ["success", "fallback", "failed"];
/// Attempt outcomes, in `backstop_attempts_total{outcome}` order.
pub const ATTEMPT_OUTCOMES: [AttemptOutcome; 4] = [
    AttemptOutcome::Success,
    AttemptOutcome::Failed,
    AttemptOutcome::Skipped,
    AttemptOutcome::Cancelled,
];
/// Retry decisions, in `backstop_retries_total{result}` order.
const RETRY_RESULTS: [&str; 2] = ["granted", "budget_exhausted"];
/// Hedge results, in `backstop_hedges_total{result}` order.
const HEDGE_RESULTS: [&str; 3] = ["primary_won", "hedge_won", "neither"];
/// Breaker states, in `backstop_breaker_state{state}` order.
pub const BREAKER_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];
/// Error kinds of failed and skipped attempts (`backstop_attempt_errors_total{kind}`); the
/// last, `other`, takes kinds a newer library adds.
pub const ERROR_KINDS: [&str; 15] = [
    "timeout",
    "connect",
    "rate_limited",
    "quota_exhausted",
    "overloaded",
    "server",
    "auth",
    "invalid_request",
    "context_length_exceeded",
    "content_filtered",
    "protocol",
    "cancelled",
    "circuit_open",
    "local_resource",
    "other",
];
/// Why the gateway refused work to protect itself.
const SHED_REASONS: [&str; 2] = ["connections", "in_flight"];
/// Reload results, in `backstop_config_reloads_total{result}` order.
const RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

/// The index of `kind` in [`ERROR_KINDS`].
pub fn error_kind_index(kind: ErrorKind) -> usize {
    ERROR_KINDS
        .iter()
        .position(|k| *k == kind.as_str())
        .unwrap_or(ERROR_KINDS.len() - 1)
}

/// The index of `state` in [`BREAKER_STATES`].
pub fn breaker_state_index(state: BreakerState) -> usize {
    BREAKER_STATES
        .iter()
        .position(|s| *s == state)
        .unwrap_or_default()
}

/// The gateway's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<L2, Counter>,
    fallbacks: Family<L1, Counter>,
    stream_errors: Family<L1, Counter>,
    retries: Family<L2, Counter>,
    resumes: Family<L1, Counter>,
    hedges: Family<L2, Counter>,
    attempts: Family<L2, Counter>,
    attempt_errors: Family<L2, Counter>,
    latency: Histograms<L1>,
    ttft: Histograms<L1>,
    tokens: Histograms<L2>,
    holds: Family<L1, Counter>,
    skipped_events: Family<L1, Counter>,
    transitions: Family<L2, Counter>,
    http: [Counter; 5],
    shed: [Counter; SHED_REASONS.len()],
    write_timeouts: Counter,
    reloads: [Counter; RELOAD_RESULTS.len()],
    state_up: Gauge,
    key_limited: Counter,
    /// The breakers of the running config, read at scrape time.
    breakers: Arc<ArcSwap<Vec<CircuitBreaker>>>,
    /// Names with series, so those a reload drops can be removed.
    known: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
    /// The last failovers (status page).
    failovers: Arc<FailoverLog>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn l1(k: &'static str, v: &str) -> L1 {
    [(k, v.to_owned())]
}

fn l2(k1: &'static str, v1: &str, k2: &'static str, v2: &str) -> L2 {
    [(k1, v1.to_owned()), (k2, v2.to_owned())]
}

/// Registers a family (or metric) and returns the handle kept by [`Metrics`].
fn reg<M: prometheus_client::registry::Metric + Clone>(
    r: &mut Registry,
    name: &str,
    help: &str,
    m: M,
) -> M {
    r.register(name, help, m.clone());
    m
}

impl Metrics {
    /// An empty registry with every family registered.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let lat: fn() -> AtomicHistogram = AtomicHistogram::latency;
        let tok: fn() -> AtomicHistogram = AtomicHistogram::tokens;
        let requests = reg(
            &mut r,
            "backstop_requests",
            "Requests by chain and outcome (fallback: answered by a provider other than the first in their order; failed: every provider failed)",
            Family::default(),
        );
        let fallbacks = reg(
            &mut r,
            "backstop_fallbacks",
            "Requests answered by a provider other than the first in their order",
            Family::default(),
        );
        let stream_errors = reg(
            &mut r,
            "backstop_stream_errors",
            "Streams that failed after their first chunk",
            Family::default(),
        );
        let retries = reg(
            &mut r,
            "backstop_retries",
            "Same-provider retries the chain wanted, by result (budget_exhausted: refused by the retry budget, the chain moved on)",
            Family::default(),
        );
        let resumes = reg(
            &mut r,
            "backstop_stream_resumes",
            "Broken streams continued by another provider",
            Family::default(),
        );
        let hedges = reg(
            &mut r,
            "backstop_hedges",
            "Hedged requests by result (primary_won, hedge_won, neither)",
            Family::default(),
        );
        let attempts = reg(
            &mut r,
            "backstop_attempts",
            "Provider attempts by outcome (skipped: breaker open, no call made; cancelled: a hedge answered first)",
            Family::default(),
        );
        let attempt_errors = reg(
            &mut r,
            "backstop_attempt_errors",
            "Failed and skipped attempts by provider and error kind",
            Family::default(),
        );
        let latency = reg(
            &mut r,
            "backstop_attempt_duration_seconds",
            "Latency of provider attempts (streams: until the first content chunk)",
            Family::new_with_constructor(lat),
        );
        let ttft = reg(
            &mut r,
            "backstop_time_to_first_token_seconds",
            "Time from request to first streamed content",
            Family::new_with_constructor(lat),
        );
        let tokens = reg(
            &mut r,
            "backstop_token_usage",
            "Tokens per answer as reported by the provider, by type (input, output); the sum is the total",
            Family::new_with_constructor(tok),
        );
        let holds = reg(
            &mut r,
            "backstop_rate_limit_holds",
            "429s that put a provider on a rate-limit hold",
            Family::default(),
        );
        let skipped_events = reg(
            &mut r,
            "backstop_stream_events_skipped",
            "Unreadable stream events skipped (the stream went on)",
            Family::default(),
        );
        let transitions = reg(
            &mut r,
            "backstop_breaker_transitions",
            "Circuit breaker state changes by provider and the state entered",
            Family::default(),
        );
        let http_family: Family<L1, Counter> = reg(
            &mut r,
            "backstop_http_responses",
            "Chat completion responses by HTTP status class",
            Family::default(),
        );
        let http = ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .map(|c| http_family.get_or_create_owned(&l1("class", c)));
        let shed_family: Family<L1, Counter> = reg(
            &mut r,
            "backstop_shed",
            "Connections and requests refused with 503 at the gateway's own limits",
            Family::default(),
        );
        let shed = SHED_REASONS.map(|s| shed_family.get_or_create_owned(&l1("reason", s)));
        let write_timeouts = reg(
            &mut r,
            "backstop_client_write_timeouts",
            "Clients disconnected for reading nothing for client_write_timeout",
            Counter::default(),
        );
        let reload_family: Family<L1, Counter> = reg(
            &mut r,
            "backstop_config_reloads",
            "Config reloads (SIGHUP or POST /v1/admin/reload) by result; a failed one changed nothing",
            Family::default(),
        );
        let reloads = RELOAD_RESULTS.map(|s| reload_family.get_or_create_owned(&l1("result", s)));
        let state_up = reg(
            &mut r,
            "backstop_state_backend_up",
            "1 while the fleet state backend ([state], Redis) answers; 0 when it does not or none is configured",
            Gauge::default(),
        );
        let key_limited = reg(
            &mut r,
            "backstop_key_limited",
            "Requests refused with 429 by server.key_limits",
            Counter::default(),
        );
        let breakers = Arc::new(ArcSwap::from_pointee(Vec::new()));
        r.register_collector(Box::new(breakers::BreakerCollector::new(breakers.clone())));
        Self {
            registry: r,
            requests,
            fallbacks,
            stream_errors,
            retries,
            resumes,
            hedges,
            attempts,
            attempt_errors,
            latency,
            ttft,
            tokens,
            holds,
            skipped_events,
            transitions,
            http,
            shed,
            write_timeouts,
            reloads,
            state_up,
            key_limited,
            breakers,
            known: Mutex::new((BTreeSet::new(), BTreeSet::new())),
            failovers: Arc::default(),
        }
    }

    /// Sets `backstop_state_backend_up`.
    pub fn state_backend_up(&self, up: bool) {
        self.state_up.set(i64::from(up));
    }

    /// Counts a request refused by `server.key_limits`.
    pub fn key_limited(&self) {
        self.key_limited.inc();
    }

    /// The handles of one provider's series (created when new, shared when it has some).
    pub fn provider(&self, name: &str) -> Arc<ProviderMetrics> {
        self.known_names().1.insert(name.to_owned());
        let p = |k: &'static str, v: &str| l2("provider", name, k, v);
        Arc::new(ProviderMetrics {
            name: name.to_owned(),
            attempts: ATTEMPT_OUTCOMES
                .map(|o| self.attempts.get_or_create_owned(&p("outcome", o.as_str()))),
            errors: ERROR_KINDS.map(|k| self.attempt_errors.get_or_create_owned(&p("kind", k))),
            latency: self.latency.get_or_create_owned(&l1("provider", name)),
            ttft: self.ttft.get_or_create_owned(&l1("provider", name)),
            input_tokens: self.tokens.get_or_create_owned(&p("type", "input")),
            output_tokens: self.tokens.get_or_create_owned(&p("type", "output")),
            holds: self.holds.get_or_create_owned(&l1("provider", name)),
            skipped_events: self
                .skipped_events
                .get_or_create_owned(&l1("provider", name)),
        })
    }

    /// The handles of one chain's series; `providers` are its members' handles, in order.
    pub fn chain(&self, name: &str, providers: Vec<Arc<ProviderMetrics>>) -> Arc<ChainMetrics> {
        self.known_names().0.insert(name.to_owned());
        let c = |k: &'static str, v: &str| l2("chain", name, k, v);
        let one = l1("chain", name);
        Arc::new(ChainMetrics {
            name: name.to_owned(),
            requests: REQUEST_OUTCOMES.map(|o| self.requests.get_or_create_owned(&c("outcome", o))),
            fallbacks: self.fallbacks.get_or_create_owned(&one),
            stream_errors: self.stream_errors.get_or_create_owned(&one),
            retries: RETRY_RESULTS.map(|r| self.retries.get_or_create_owned(&c("result", r))),
            resumes: self.resumes.get_or_create_owned(&one),
            hedges: HEDGE_RESULTS.map(|r| self.hedges.get_or_create_owned(&c("result", r))),
            providers,
            failovers: self.failovers.clone(),
        })
    }

    /// The last failovers, newest first.
    pub fn failovers(&self) -> Vec<Failover> {
        self.failovers.recent()
    }

    /// The observer that counts `breaker`'s transitions; register it once per breaker.
    pub fn breaker_watch(&self, breaker: &CircuitBreaker) -> BreakerWatch {
        let name = breaker.name();
        BreakerWatch::new(BREAKER_STATES.map(|s| {
            self.transitions
                .get_or_create_owned(&l2("provider", name, "to", s.as_str()))
        }))
    }

    /// The breakers whose state and hold `/metrics` reports (the running config's).
    pub fn set_breakers(&self, breakers: Vec<CircuitBreaker>) {
        self.breakers.store(Arc::new(breakers));
    }

    /// Removes the series of chains and providers not in these lists (after a reload).
    pub fn retain(&self, chains: &[&str], providers: &[&str]) {
        let mut known = self.known_names();
        let gone_chains: Vec<String> = known
            .0
            .iter()
            .filter(|c| !chains.contains(&c.as_str()))
            .cloned()
            .collect();
        let gone_providers: Vec<String> = known
            .1
            .iter()
            .filter(|p| !providers.contains(&p.as_str()))
            .cloned()
            .collect();
        for name in &gone_chains {
            let c = |k: &'static str, v: &str| l2("chain", name, k, v);
            for o in REQUEST_OUTCOMES {
                self.requests.remove(&c("outcome", o));
            }
            for r in RETRY_RESULTS {
                self.retries.remove(&c("result", r));
            }
            for r in HEDGE_RESULTS {
                self.hedges.remove(&c("result", r));
            }
            let one = l1("chain", name);
            self.fallbacks.remove(&one);
            self.stream_errors.remove(&one);
            self.resumes.remove(&one);
            known.0.remove(name);
        }
        for name in &gone_providers {
            let p = |k: &'static str, v: &str| l2("provider", name, k, v);
            for o in ATTEMPT_OUTCOMES {
                self.attempts.remove(&p("outcome", o.as_str()));
            }
            for k in ERROR_KINDS {
                self.attempt_errors.remove(&p("kind", k));
            }
            for t in ["input", "output"] {
                self.tokens.remove(&p("type", t));
            }
            for s in BREAKER_STATES {
                self.transitions.remove(&p("to", s.as_str()));
            }
            let one = l1("provider", name);
            self.latency.remove(&one);
            self.ttft.remove(&one);
            self.holds.remove(&one);
            self.skipped_events.remove(&one);
            known.1.remove(name);
        }
    }

    fn known_names(&self) -> std::sync::MutexGuard<'_, (BTreeSet<String>, BTreeSet<String>)> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an HTTP response by status class.
    pub fn http_status(&self, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.http[class].inc();
    }

    /// Counts a connection or request shed at a limit (`connections` or `in_flight`).
    pub fn shed(&self, reason: &str) {
        if let Some(i) = SHED_REASONS.iter().position(|r| *r == reason) {
            self.shed[i].inc();
        }
    }

    /// Counts a client disconnected for reading nothing for `client_write_timeout`.
    pub fn write_timeout(&self) {
        self.write_timeouts.inc();
    }

    /// Counts a config reload.
    pub fn reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].inc();
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `Content-Type` of [`Metrics::render`].
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of [`Metrics::render_openmetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One provider's series handles (shared by every chain that has it).
#[derive(Debug)]
pub struct ProviderMetrics {
    name: String,
    attempts: [Counter; ATTEMPT_OUTCOMES.len()],
    errors: [Counter; ERROR_KINDS.len()],
    latency: AtomicHistogram,
    ttft: AtomicHistogram,
    input_tokens: AtomicHistogram,
    output_tokens: AtomicHistogram,
    holds: Counter,
    skipped_events: Counter,
}

impl ProviderMetrics {
    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts the tokens an answer reported.
    pub fn tokens(&self, input: u32, output: u32) {
        self.input_tokens.observe_count(u64::from(input));
        self.output_tokens.observe_count(u64::from(output));
    }

    /// Attempts so far, in [`ATTEMPT_OUTCOMES`] order.
    pub fn attempt_counts(&self) -> [u64; ATTEMPT_OUTCOMES.len()] {
        self.attempts.each_ref().map(Counter::get)
    }

    /// Errors so far, in [`ERROR_KINDS`] order.
    pub fn error_counts(&self) -> [u64; ERROR_KINDS.len()] {
        self.errors.each_ref().map(Counter::get)
    }

    /// The attempt latency histogram.
    pub fn latency(&self) -> HistogramSnapshot {
        self.latency.snapshot()
    }
}

/// One chain's series handles, and its observer.
#[derive(Debug)]
pub struct ChainMetrics {
    name: String,
    requests: [Counter; REQUEST_OUTCOMES.len()],
    fallbacks: Counter,
    stream_errors: Counter,
    retries: [Counter; RETRY_RESULTS.len()],
    resumes: Counter,
    hedges: [Counter; HEDGE_RESULTS.len()],
    providers: Vec<Arc<ProviderMetrics>>,
    failovers: Arc<FailoverLog>,
}

impl ChainMetrics {
    /// The chain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A member's handles (a scan of the chain's few members, no map).
    pub fn provider(&self, name: &str) -> Option<&ProviderMetrics> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .map(AsRef::as_ref)
    }

    /// Counts the tokens an answer from `provider` reported.
    pub fn tokens(&self, provider: &str, input: u32, output: u32) {
        if let Some(p) = self.provider(provider) {
            p.tokens(input, output);
        }
    }

    /// Requests so far, in [`REQUEST_OUTCOMES`] order.
    pub fn request_counts(&self) -> [u64; REQUEST_OUTCOMES.len()] {
        self.requests.each_ref().map(Counter::get)
    }
}
