//! Prometheus metrics, kept per gateway instance: an [`Observer`] that counts into
//! pre-registered atomic cells and renders the text exposition format on demand.
//!
//! We do not use the global `metrics` recorder: every label value (chain, provider) is known
//! at start-up, so fixed arrays of atomics are cheaper on the request path, and a registry
//! per instance keeps several gateways in one process (tests) apart.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop::{Attempt, AttemptOutcome, CircuitBreaker, Observer, ProviderError, RequestSummary};

/// Latency buckets in seconds (upper bounds), shared by the attempt and TTFT histograms.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram with fixed buckets; sums kept in microseconds.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The outcomes a request is counted under.
const REQUEST_OUTCOMES: [&str; 3] = ["success", "fallback", "failed"];
const ATTEMPT_OUTCOMES: [AttemptOutcome; 4] = [
    AttemptOutcome::Success,
    AttemptOutcome::Failed,
    AttemptOutcome::Skipped,
    AttemptOutcome::Cancelled,
];

#[derive(Default)]
struct ChainCells {
    requests: [AtomicU64; REQUEST_OUTCOMES.len()],
    stream_errors: AtomicU64,
    retries_granted: AtomicU64,
    retries_denied: AtomicU64,
    resumes: AtomicU64,
    /// Hedges by result: the first provider won, the hedge won, neither answered.
    hedges: [AtomicU64; 3],
}

#[derive(Default)]
struct ProviderCells {
    attempts: [AtomicU64; ATTEMPT_OUTCOMES.len()],
    latency: Histogram,
    ttft: Histogram,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    holds: AtomicU64,
    skipped_events: AtomicU64,
}

/// The gateway's metrics registry.
pub struct Metrics {
    chain_index: HashMap<String, usize>,
    chains: Vec<(String, ChainCells)>,
    provider_index: HashMap<String, usize>,
    providers: Vec<(String, ProviderCells)>,
    breakers: Vec<CircuitBreaker>,
    http: [AtomicU64; 5],
    shed: [AtomicU64; SHED_REASONS.len()],
    write_timeouts: AtomicU64,
}

/// Why the gateway refused work to protect itself.
const SHED_REASONS: [&str; 2] = ["connections", "in_flight"];

impl Metrics {
    /// A registry for these chains and breakers (one per provider).
    pub fn new(chains: &[String], breakers: Vec<CircuitBreaker>) -> Self {
        let chain_index = chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        let provider_index = breakers
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name().to_owned(), i))
            .collect();
        Self {
            chain_index,
            chains: chains
                .iter()
                .map(|c| (c.clone(), ChainCells::default()))
                .collect(),
            provider_index,
            providers: breakers
                .iter()
                .map(|b| (b.name().to_owned(), ProviderCells::default()))
                .collect(),
            breakers,
            http: Default::default(),
            shed: Default::default(),
            write_timeouts: AtomicU64::new(0),
        }
    }

    fn chain(&self, name: &str) -> Option<&ChainCells> {
        self.chain_index.get(name).map(|&i| &self.chains[i].1)
    }

    fn provider(&self, name: &str) -> Option<&ProviderCells> {
        self.provider_index.get(name).map(|&i| &self.providers[i].1)
    }

    /// Counts tokens reported for an answer from `provider`.
    pub fn tokens(&self, provider: &str, input: u32, output: u32) {
        if let Some(p) = self.provider(provider) {
            p.input_tokens
                .fetch_add(u64::from(input), Ordering::Relaxed);
            p.output_tokens
                .fetch_add(u64::from(output), Ordering::Relaxed);
        }
    }

    /// Counts an HTTP response by status class.
    pub fn http_status(&self, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.http[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection or request shed at a limit (`connections` or `in_flight`).
    pub fn shed(&self, reason: &str) {
        if let Some(i) = SHED_REASONS.iter().position(|r| *r == reason) {
            self.shed[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a client disconnected for reading nothing for `client_write_timeout`.
    pub fn write_timeout(&self) {
        self.write_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str("# HELP backstop_requests_total Requests by chain and outcome (fallback = answered by a later provider).\n# TYPE backstop_requests_total counter\n");
        for (chain, cells) in &self.chains {
            for (i, outcome) in REQUEST_OUTCOMES.iter().enumerate() {
                let n = cells.requests[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "backstop_requests_total{{chain=\"{chain}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP backstop_fallbacks_total Requests answered by a provider other than the first in their order.\n# TYPE backstop_fallbacks_total counter\n");
        for (chain, cells) in &self.chains {
            let n = cells.requests[1].load(Ordering::Relaxed);
            let _ = writeln!(out, "backstop_fallbacks_total{{chain=\"{chain}\"}} {n}");
        }
        out.push_str("# HELP backstop_stream_errors_total Streams that failed after their first chunk.\n# TYPE backstop_stream_errors_total counter\n");
        for (chain, cells) in &self.chains {
            let n = cells.stream_errors.load(Ordering::Relaxed);
            let _ = writeln!(out, "backstop_stream_errors_total{{chain=\"{chain}\"}} {n}");
        }
        out.push_str("# HELP backstop_retries_total Same-provider retries the chain wanted, by result (budget_exhausted: refused by the retry budget, the chain moved on).\n# TYPE backstop_retries_total counter\n");
        for (chain, cells) in &self.chains {
            for (result, n) in [
                ("granted", &cells.retries_granted),
                ("budget_exhausted", &cells.retries_denied),
            ] {
                let _ = writeln!(
                    out,
                    "backstop_retries_total{{chain=\"{chain}\",result=\"{result}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP backstop_stream_resumes_total Broken streams continued by another provider.\n# TYPE backstop_stream_resumes_total counter\n");
        for (chain, cells) in &self.chains {
            let _ = writeln!(
                out,
                "backstop_stream_resumes_total{{chain=\"{chain}\"}} {}",
                cells.resumes.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP backstop_hedges_total Hedged requests by result (primary_won, hedge_won, neither).\n# TYPE backstop_hedges_total counter\n");
        for (chain, cells) in &self.chains {
            for (i, result) in ["primary_won", "hedge_won", "neither"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "backstop_hedges_total{{chain=\"{chain}\",result=\"{result}\"}} {}",
                    cells.hedges[i].load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP backstop_attempts_total Provider attempts by outcome.\n# TYPE backstop_attempts_total counter\n");
        for (provider, cells) in &self.providers {
            for (i, outcome) in ATTEMPT_OUTCOMES.iter().enumerate() {
                let n = cells.attempts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "backstop_attempts_total{{provider=\"{provider}\",outcome=\"{}\"}} {n}",
                    outcome.as_str()
                );
            }
        }
        out.push_str("# HELP backstop_breaker_state Circuit breaker state per provider (0 closed, 1 open, 2 half-open).\n# TYPE backstop_breaker_state gauge\n");
        for b in &self.breakers {
            let v = match b.state() {
                backstop::BreakerState::Closed => 0,
                backstop::BreakerState::Open => 1,
                backstop::BreakerState::HalfOpen => 2,
            };
            let _ = writeln!(
                out,
                "backstop_breaker_state{{provider=\"{}\"}} {v}",
                b.name()
            );
        }
        out.push_str("# HELP backstop_rate_limit_hold_seconds Time left on each provider's rate-limit hold (0: not held).\n# TYPE backstop_rate_limit_hold_seconds gauge\n");
        for b in &self.breakers {
            let left = b.hold().remaining().unwrap_or_default().as_secs_f64();
            let _ = writeln!(
                out,
                "backstop_rate_limit_hold_seconds{{provider=\"{}\"}} {left}",
                b.name()
            );
        }
        out.push_str("# HELP backstop_rate_limit_holds_total 429s that put a provider on a rate-limit hold.\n# TYPE backstop_rate_limit_holds_total counter\n");
        for (provider, cells) in &self.providers {
            let _ = writeln!(
                out,
                "backstop_rate_limit_holds_total{{provider=\"{provider}\"}} {}",
                cells.holds.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP backstop_stream_events_skipped_total Unreadable stream events skipped (the stream went on).\n# TYPE backstop_stream_events_skipped_total counter\n");
        for (provider, cells) in &self.providers {
            let _ = writeln!(
                out,
                "backstop_stream_events_skipped_total{{provider=\"{provider}\"}} {}",
                cells.skipped_events.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP backstop_attempt_duration_seconds Latency of provider attempts.\n# TYPE backstop_attempt_duration_seconds histogram\n");
        for (provider, cells) in &self.providers {
            cells.latency.render(
                &mut out,
                "backstop_attempt_duration_seconds",
                &format!("provider=\"{provider}\""),
            );
        }
        out.push_str("# HELP backstop_time_to_first_token_seconds Time from request to first streamed content.\n# TYPE backstop_time_to_first_token_seconds histogram\n");
        for (provider, cells) in &self.providers {
            cells.ttft.render(
                &mut out,
                "backstop_time_to_first_token_seconds",
                &format!("provider=\"{provider}\""),
            );
        }
        out.push_str("# HELP backstop_tokens_total Tokens reported by providers.\n# TYPE backstop_tokens_total counter\n");
        for (provider, cells) in &self.providers {
            let i = cells.input_tokens.load(Ordering::Relaxed);
            let o = cells.output_tokens.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "backstop_tokens_total{{provider=\"{provider}\",type=\"input\"}} {i}"
            );
            let _ = writeln!(
                out,
                "backstop_tokens_total{{provider=\"{provider}\",type=\"output\"}} {o}"
            );
        }
        out.push_str("# HELP backstop_http_responses_total HTTP responses by status class.\n# TYPE backstop_http_responses_total counter\n");
        for (i, n) in self.http.iter().enumerate() {
            let _ = writeln!(
                out,
                "backstop_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP backstop_shed_total Connections and requests refused with 503 at the gateway's own limits.\n# TYPE backstop_shed_total counter\n");
        for (i, reason) in SHED_REASONS.iter().enumerate() {
            let n = self.shed[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "backstop_shed_total{{reason=\"{reason}\"}} {n}");
        }
        out.push_str("# HELP backstop_client_write_timeouts_total Clients disconnected for reading nothing for client_write_timeout.\n# TYPE backstop_client_write_timeouts_total counter\n");
        let _ = writeln!(
            out,
            "backstop_client_write_timeouts_total {}",
            self.write_timeouts.load(Ordering::Relaxed)
        );
        out
    }
}

impl Observer for Metrics {
    fn on_attempt(&self, _chain: &str, attempt: &Attempt) {
        if let Some(p) = self.provider(&attempt.provider) {
            let i = ATTEMPT_OUTCOMES
                .iter()
                .position(|o| *o == attempt.outcome)
                .unwrap_or(1);
            p.attempts[i].fetch_add(1, Ordering::Relaxed);
            if attempt.outcome != AttemptOutcome::Skipped {
                p.latency.observe(attempt.latency);
            }
        }
    }

    fn on_first_chunk(&self, _chain: &str, provider: &str, ttft: Duration) {
        if let Some(p) = self.provider(provider) {
            p.ttft.observe(ttft);
        }
    }

    fn on_hold(&self, _chain: &str, provider: &str, _length: Duration) {
        if let Some(p) = self.provider(provider) {
            p.holds.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_retry(&self, chain: &str, _provider: &str, granted: bool) {
        if let Some(c) = self.chain(chain) {
            let cell = if granted {
                &c.retries_granted
            } else {
                &c.retries_denied
            };
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_stream_resume(&self, chain: &str, _from: &str, _to: &str, _offset: usize) {
        if let Some(c) = self.chain(chain) {
            c.resumes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_hedge(&self, chain: &str, primary: &str, _hedge: &str, winner: Option<&str>) {
        if let Some(c) = self.chain(chain) {
            let i = match winner {
                Some(w) if w == primary => 0,
                Some(_) => 1,
                None => 2,
            };
            c.hedges[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_skipped_events(&self, _chain: &str, provider: &str, count: u32) {
        if let Some(p) = self.provider(provider) {
            p.skipped_events
                .fetch_add(u64::from(count), Ordering::Relaxed);
        }
    }

    fn on_stream_error(&self, chain: &str, _provider: &str, _error: &ProviderError) {
        if let Some(c) = self.chain(chain) {
            c.stream_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_request(&self, s: &RequestSummary<'_>) {
        if let Some(c) = self.chain(s.chain) {
            let i = match (s.provider_used, s.fell_back) {
                (Some(_), false) => 0,
                (Some(_), true) => 1,
                (None, _) => 2,
            };
            c.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}
