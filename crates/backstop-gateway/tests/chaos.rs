//! Chaos suite: the gateway in front of three simulators injecting seeded random faults, under
//! concurrent mixed (streamed and not) traffic. Every response is checked: no hang, no silent
//! truncation, no mixed answers, breaker probes bounded, success rate above the fault model's
//! prediction, and full recovery once the faults stop. Figures are printed (`--nocapture`) and
//! copied into RELIABILITY.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::{BreakerState, Observer, StateChange};
use backstop_sim::{Fault, SimConfig, SimHandle};
use futures_util::StreamExt;
use reliability_support::traffic::{Outcome, one};
use reliability_support::{Gateway, PROVIDERS, client, provider_section, start_sims};
use tokio::time::Instant;

/// Requests sent under chaos (half streamed).
const REQUESTS: usize = 5_000;
/// Time between request starts (at most 500 requests/s).
const PACE: Duration = Duration::from_millis(2);
/// Requests in flight at most.
const CONCURRENCY: usize = 100;
/// Content chunks per simulated reply.
const CHUNKS: usize = 8;
/// Retries per provider (config `retries`).
const RETRIES: u32 = 1;
/// Whole-request deadline of the chains.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How late past the deadline a response may still end.
const MARGIN: Duration = Duration::from_secs(3);
/// Breaker recovery timeout.
const RECOVERY: Duration = Duration::from_millis(300);
/// The longest Retry-After the faults send (a provider may be held this long).
const LONGEST_RETRY_AFTER: Duration = Duration::from_millis(20);
/// Failures within the 200 ms window that open a breaker (random faults alone rarely do;
/// the outage bursts do).
const THRESHOLD: u32 = 30;
/// Consecutive failures in each outage burst.
const BURST: u32 = 60;
/// Half-open probes per breaker.
const PROBES: u64 = 2;

/// The fault model: drawn per provider request in this order, first hit wins.
fn faults() -> Vec<(Fault, f64)> {
    vec![
        (Fault::Status(500), 0.025),
        (Fault::Status(503), 0.02),
        // 429 with `retry-after-ms`: a short rate-limit hold, never a breaker failure.
        (
            Fault::RateLimited {
                retry_after_secs: None,
                retry_after_ms: Some(20),
                retry_after_http_date: false,
            },
            0.005,
        ),
        (Fault::Hang, 0.003),
        // Connection reset before any content.
        (Fault::Disconnect { after_chunks: 0 }, 0.015),
        (Fault::MalformedBody, 0.015),
        (
            Fault::InBandError {
                after_chunks: 0,
                status: 500,
            },
            0.007,
        ),
        // Mid-stream failures (after content: the stream is committed).
        (Fault::Disconnect { after_chunks: 3 }, 0.012),
        (Fault::Truncate { after_chunks: 3 }, 0.01),
        (
            Fault::InBandError {
                after_chunks: 3,
                status: 529,
            },
            0.01,
        ),
    ]
}

/// Whether a fault, on a streamed request, fails after the first content chunk.
fn post_commit(f: &Fault) -> bool {
    match f {
        Fault::Disconnect { after_chunks }
        | Fault::Truncate { after_chunks }
        | Fault::MalformedChunk { after_chunks }
        | Fault::Stall { after_chunks } => *after_chunks > 0,
        Fault::InBandError { after_chunks, .. } => *after_chunks > 0,
        _ => false,
    }
}

/// Probabilities per attempt: (any fault, pre-commit stream fault, post-commit stream fault).
fn fault_probabilities() -> (f64, f64, f64) {
    let mut none = 1.0;
    let (mut pre, mut post) = (0.0, 0.0);
    for (f, rate) in faults() {
        let p = none * rate;
        if post_commit(&f) {
            post += p;
        } else {
            pre += p;
        }
        none *= 1.0 - rate;
    }
    (1.0 - none, pre, post)
}

/// Records breaker transitions with the time they were observed.
struct Transitions {
    log: Mutex<Vec<(String, BreakerState, BreakerState, std::time::Instant)>>,
}

impl Observer for Transitions {
    fn on_breaker_change(&self, c: &StateChange<'_>) {
        let now = std::time::Instant::now();
        self.log
            .lock()
            .unwrap()
            .push((c.breaker.to_owned(), c.from, c.to, now));
    }
}

/// Every provider attempt the chains made (from their `attempt` debug events):
/// (provider, start, end). Skipped attempts are left out.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<(String, std::time::Instant, std::time::Instant)>>>);

impl Attempts {
    /// Installs the recorder as the process's subscriber, listening to `backstop::chain` only.
    fn install() -> Attempts {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::{Layer, filter::Targets};
        let a = Attempts::default();
        let filter = Targets::new().with_target("backstop::chain", tracing::Level::DEBUG);
        let subscriber = tracing_subscriber::registry().with(a.clone().with_filter(filter));
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        a
    }
}

#[derive(Default)]
struct AttemptFields {
    attempt: bool,
    provider: Option<String>,
    outcome: Option<String>,
    latency_us: Option<u64>,
}

impl tracing::field::Visit for AttemptFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.attempt = format!("{value:?}") == "attempt";
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "provider" => self.provider = Some(value.to_owned()),
            "outcome" => self.outcome = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "latency_us" {
            self.latency_us = Some(value);
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Attempts {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let end = std::time::Instant::now();
        let mut f = AttemptFields::default();
        event.record(&mut f);
        if let (true, Some(p), Some(o), Some(us)) = (f.attempt, f.provider, f.outcome, f.latency_us)
            && o != "skipped"
        {
            let start = end - Duration::from_micros(us);
            self.0.lock().unwrap().push((p, start, end));
        }
    }
}

fn config(sims: &[SimHandle]) -> String {
    let mut t = String::from("[server]\n");
    for (name, sim) in PROVIDERS.iter().zip(sims) {
        t.push_str(&provider_section(
            name,
            sim,
            &format!(
                "timeout = \"1s\"\nretries = {RETRIES}\nbreaker = {{ failure_threshold = {THRESHOLD}, \
                 window = \"200ms\", recovery_timeout = \"{}ms\", half_open_probes = {PROBES} }}",
                RECOVERY.as_millis()
            ),
        ));
    }
    let timing = format!(
        "timeout = \"{}s\"\nidle_timeout = \"1s\"\n",
        CHAIN_TIMEOUT.as_secs()
    );
    t.push_str(&format!(
        "\n[chains.default]\nproviders = [\"openai\", \"anthropic\", \"groq\"]\n{timing}"
    ));
    t.push_str(&format!(
        "\n[chains.weighted]\nstrategy = \"weighted\"\nproviders = [{{ name = \"openai\", weight = 0.5 }}, \
         {{ name = \"anthropic\", weight = 0.3 }}, {{ name = \"groq\", weight = 0.2 }}]\n{timing}"
    ));
    for name in PROVIDERS {
        t.push_str(&format!(
            "\n[chains.solo_{name}]\nproviders = [\"{name}\"]\n{timing}"
        ));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_under_random_faults() {
    let requests: usize = std::env::var("CHAOS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REQUESTS);
    let bursts = std::env::var("CHAOS_BURSTS").is_ok();
    let sim_configs: Vec<SimConfig> = (0..3)
        .map(|n| SimConfig {
            ttft: Duration::from_millis(2),
            chunk_delay: Duration::from_millis(1),
            chunks: CHUNKS,
            seed: 0xC4A05 + n,
            record: false,
            ..SimConfig::default()
        })
        .collect();
    let sims = start_sims(&sim_configs).await;
    let text = config(&sims);
    let env: HashMap<String, String> = PROVIDERS
        .iter()
        .map(|p| {
            (
                format!("REL_{}_KEY", p.to_uppercase()),
                "sk-chaos".to_owned(),
            )
        })
        .collect();
    let gw = Gateway::start(sims, &text, env, Duration::from_secs(5)).await;
    let transitions = Arc::new(Transitions {
        log: Mutex::new(Vec::new()),
    });
    let attempts_log = Attempts::install();
    for b in &gw.app.breakers {
        b.observe(transitions.clone());
    }
    for sim in &gw.sims {
        for (f, rate) in faults() {
            sim.set_random(f, rate);
        }
    }

    let client = client(CONCURRENCY);
    let url = gw.url("/v1/chat/completions");
    let started = Instant::now();
    let results: Vec<Result<(bool, String, Outcome), String>> =
        futures_util::stream::iter(0..requests)
            // Paced: the breakers' thresholds count failures per window, so the request rate,
            // not the machine's speed, must set the failure density they see.
            .then(|i| async move {
                tokio::time::sleep_until(started + PACE * u32::try_from(i).unwrap()).await;
                i
            })
            .map(|i| {
                if bursts && i == requests * 3 / 10 {
                    gw.sim("openai").fail_next(BURST, Fault::Status(503));
                }
                if bursts && i == requests * 6 / 10 {
                    gw.sim("anthropic")
                        .fail_next(BURST, Fault::Disconnect { after_chunks: 0 });
                }
                let client = client.clone();
                let url = url.clone();
                let chain = if i % 4 == 1 { "weighted" } else { "default" };
                tokio::spawn(one(client, url, i, chain, CHUNKS, CHAIN_TIMEOUT + MARGIN))
            })
            .buffer_unordered(CONCURRENCY)
            .map(|j| j.unwrap_or_else(|e| Err(format!("request task panicked: {e}"))))
            .collect()
            .await;
    let elapsed = started.elapsed();

    // Tally.
    let mut by_kind: BTreeMap<(bool, String), usize> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut samples = Vec::new();
    let (mut ok_s, mut ok_ns, mut n_s, mut n_ns) = (0usize, 0usize, 0usize, 0usize);
    for r in &results {
        match r {
            Ok((stream, key, outcome)) => {
                let n = by_kind.entry((*stream, key.clone())).or_default();
                *n += 1;
                if let Outcome::Error(m) = outcome
                    && *n <= 2
                {
                    samples.push(format!("{key}: {m}"));
                }
                let ok = matches!(outcome, Outcome::Answer);
                if *stream {
                    n_s += 1;
                    ok_s += usize::from(ok);
                } else {
                    n_ns += 1;
                    ok_ns += usize::from(ok);
                }
            }
            Err(e) => violations.push(e.clone()),
        }
    }
    let faults_applied: Vec<u64> = gw.sims.iter().map(SimHandle::faults_applied).collect();
    let sim_requests: Vec<u64> = gw.sims.iter().map(SimHandle::request_count).collect();
    let metrics = gw.app.metrics.render();

    println!("chaos: {requests} requests, concurrency {CONCURRENCY}, in {elapsed:.1?}");
    println!(
        "chaos: provider requests {sim_requests:?} (openai, anthropic, groq), faults applied {faults_applied:?} (total {})",
        faults_applied.iter().sum::<u64>()
    );
    for ((stream, key), n) in &by_kind {
        let mode = if *stream { "stream" } else { "non-stream" };
        println!("chaos: {mode:10} {key:45} {n}");
    }
    for m in &samples {
        println!("chaos: sample {m}");
    }
    for line in metrics.lines().filter(|l| {
        l.starts_with("backstop_attempts_total")
            || l.starts_with("backstop_stream_errors_total")
            || l.starts_with("backstop_requests_total")
    }) {
        println!("chaos: {line}");
    }
    assert!(
        violations.is_empty(),
        "{} invariant violations, first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(n_s + n_ns, requests);

    // Success rate versus the fault model. Conservative: count only two attempts per request
    // (the first provider and its one retry, or one fallback when the first one's breaker
    // opens) although three providers stand behind each chain; then take four standard
    // deviations off.
    let (q, pre, post) = fault_probabilities();
    let attempts = f64::from(RETRIES + 1);
    let predict_ns = 1.0 - q.powf(attempts);
    let predict_s = (1.0 - pre - post) * (1.0 - pre.powf(attempts)) / (1.0 - pre);
    let full = 3.0 * attempts;
    let ideal_ns = 1.0 - q.powf(full);
    let ideal_s = (1.0 - pre - post) * (1.0 - pre.powf(full)) / (1.0 - pre);
    let rate_ns = ok_ns as f64 / n_ns as f64;
    let rate_s = ok_s as f64 / n_s as f64;
    let sigma = |p: f64, n: usize| (p * (1.0 - p) / n as f64).sqrt();
    let floor_ns = predict_ns - 4.0 * sigma(predict_ns, n_ns);
    let floor_s = predict_s - 4.0 * sigma(predict_s, n_s);
    println!(
        "chaos: fault rate per provider request {q:.4} (stream: {pre:.4} before content, {post:.4} after)"
    );
    println!(
        "chaos: non-stream success {ok_ns}/{n_ns} = {rate_ns:.4}; model: ≥ {predict_ns:.4} with 2 attempts (floor {floor_ns:.4}), {ideal_ns:.6} with all 6"
    );
    println!(
        "chaos: stream success {ok_s}/{n_s} = {rate_s:.4}; model: ≥ {predict_s:.4} with 2 attempts (floor {floor_s:.4}), {ideal_s:.4} with all 6"
    );
    // Breakers: legal transitions only, and a half-open breaker admits at most its probes:
    // attempts (from the chains' attempt events) that started between a breaker entering
    // half-open and leaving it. Attempts admitted before it opened may still be in flight then
    // (they started earlier, so they do not count). A transition is observed just after the
    // breaker's lock is released, so an attempt admitted by the new closed state can start a
    // few microseconds before the HalfOpen -> Closed notice: those within SLACK of it are not
    // counted.
    const SLACK: Duration = Duration::from_millis(1);
    let log = transitions.log.lock().unwrap().clone();
    let attempts = attempts_log.0.lock().unwrap().clone();
    let mut per_breaker: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut worst_half_open = 0;
    let mut half_open_periods = 0;
    let mut probes_total = 0;
    for name in PROVIDERS {
        let starts: Vec<std::time::Instant> = attempts
            .iter()
            .filter(|a| a.0 == name)
            .map(|a| a.1)
            .collect();
        let mut entered: Option<std::time::Instant> = None;
        for (b, from, to, at) in log.iter().filter(|t| t.0 == name) {
            *per_breaker
                .entry(b.clone())
                .or_default()
                .entry(format!("{from}->{to}"))
                .or_default() += 1;
            let legal = matches!(
                (from, to),
                (BreakerState::Closed, BreakerState::Open)
                    | (BreakerState::Open, BreakerState::HalfOpen)
                    | (BreakerState::HalfOpen, BreakerState::Open)
                    | (BreakerState::HalfOpen, BreakerState::Closed)
            );
            assert!(legal, "{b}: illegal transition {from} -> {to}");
            match (from, to) {
                (_, BreakerState::HalfOpen) => entered = Some(*at),
                (BreakerState::HalfOpen, _) => {
                    if let Some(t0) = entered.take() {
                        half_open_periods += 1;
                        let t1 = if *to == BreakerState::Closed {
                            at.checked_sub(SLACK).unwrap_or(*at)
                        } else {
                            *at
                        };
                        let through = starts.iter().filter(|s| **s > t0 && **s < t1).count();
                        probes_total += through;
                        worst_half_open = worst_half_open.max(through);
                        assert!(
                            through as u64 <= PROBES,
                            "{b}: {through} attempts started while half-open (probes: {PROBES}); \
                             period {:?} ending {from} -> {to}",
                            *at - t0
                        );
                    }
                }
                _ => {}
            }
        }
    }
    // The attempt events agree with the simulators' request logs: every attempt the chains
    // made reached its simulator, and nothing else did.
    let mut lost = Vec::new();
    for name in PROVIDERS {
        let made = attempts.iter().filter(|a| a.0 == name).count() as u64;
        let received = gw.sim(name).request_count();
        assert!(
            received <= made && made - received <= 1 + made / 1000,
            "{name}: {made} attempts made, {received} requests received by the simulator"
        );
        lost.push(made - received);
    }
    println!(
        "chaos: attempts that never reached their simulator (stale pooled connection): {lost:?}"
    );
    println!(
        "chaos: breaker transitions {per_breaker:?}; {half_open_periods} half-open periods, {probes_total} probes, at most {worst_half_open} in one"
    );

    assert!(
        rate_ns >= floor_ns,
        "non-stream success {rate_ns} below model floor {floor_ns}"
    );
    assert!(
        rate_s >= floor_s,
        "stream success {rate_s} below model floor {floor_s}"
    );
    // Every fault the model says is survivable leaves room: at least one fault hit each sim.
    assert!(faults_applied.iter().all(|n| *n > 0));

    // Recovery: faults stop; after the recovery timeout (or the longest Retry-After cooldown,
    // whichever is longer) one request per provider closes every breaker.
    for sim in &gw.sims {
        sim.clear_faults();
    }
    let wait = RECOVERY.max(LONGEST_RETRY_AFTER);
    for b in &gw.app.breakers {
        let s = b.snapshot();
        if let Some(until) = s.until_half_open {
            assert!(
                until <= wait,
                "{}: opens for {until:?}, more than {wait:?}",
                s.name
            );
        }
    }
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    for name in PROVIDERS {
        let body = serde_json::json!({
            "model": format!("solo_{name}"),
            "messages": [{"role": "user", "content": format!("recovery {name}")}],
        });
        let r = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "{name} after faults stopped: {:?}",
            r.text().await
        );
    }
    let states: Vec<(String, BreakerState)> = gw
        .app
        .breakers
        .iter()
        .map(|b| (b.name().to_owned(), b.state()))
        .collect();
    println!("chaos: after recovery {states:?}");
    assert!(
        states.iter().all(|(_, s)| *s == BreakerState::Closed),
        "breakers not closed after recovery: {states:?}"
    );
    gw.stop().await;
}
