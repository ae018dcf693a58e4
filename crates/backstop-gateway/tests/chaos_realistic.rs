//! Chaos at realistic rates (the partial-failure issue's profile): every provider answers 15% of
//! requests with 429 + `Retry-After: 1`, 10% with 500, 5% with 503; streams are cut after
//! content 10% of the time, truncated 5%, stalled 3%. 1,200 requests (1,000 non-streamed, 200
//! streamed), 40 in flight, with the default breaker and with a count breaker that never trips.
//! Asserted: no hung request, no mixed answer, no silent truncation, non-streamed success ≥
//! 99.5% and streamed success at least the fault model's prediction. Figures are printed (`--nocapture`)
//! and copied into RELIABILITY.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use backstop_sim::{Fault, Scope, SimConfig};
use futures_util::StreamExt;
use reliability_support::traffic::{Outcome, one_as};
use reliability_support::{Gateway, PROVIDERS, client, provider_section, start_sims};

/// Enough non-streamed requests that the 99.5% floor (five failures in 1,000) is a test of the
/// chain, not of luck: at the model's 0.04% failure rate the odds of six or more are ~4·10⁻⁶.
const REQUESTS: usize = 1200;
/// Every sixth request is streamed (200 of 1,200) where the streamed floor is the fault model's;
/// every second one (600) in the resume run, whose floor is a flat 99%. A committed stream
/// breaks with P = 17.1% (see `check`), so the default three resumes lose one in ~1,200 to a
/// fourth break (0.171⁴) and a few more to the chain's pre-commit failures: measured 0–4 of
/// 600 lost, where the floor allows six. (With two resumes, 0.171³ ≈ 0.5%, runs lost up to 9.)
const STREAM_EVERY: usize = 6;
const RESUME_STREAM_EVERY: usize = 2;
const CONCURRENCY: usize = 40;
const CHUNKS: usize = 8;
/// Per-attempt timeout (the issue measured 4 s; shorter here so stalls cost CI less).
const ATTEMPT_TIMEOUT: &str = "1s";
const CHAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// (fault, rate, requests it applies to), drawn per provider request in order, first hit wins.
fn faults() -> Vec<(Fault, f64, Scope)> {
    let retry_after_1s = Fault::RateLimited {
        retry_after_secs: Some(1),
        retry_after_ms: None,
        retry_after_http_date: false,
    };
    vec![
        (retry_after_1s, 0.15, Scope::All),
        (Fault::Status(500), 0.10, Scope::All),
        (Fault::Status(503), 0.05, Scope::All),
        (Fault::Disconnect { after_chunks: 3 }, 0.10, Scope::Stream),
        (Fault::Truncate { after_chunks: 3 }, 0.05, Scope::Stream),
        (Fault::Stall { after_chunks: 3 }, 0.03, Scope::Stream),
    ]
}

/// Per attempt: P(a fault before any content) and, for streams, P(a fault after content).
fn fault_model() -> (f64, f64, f64) {
    let mut none_ns = 1.0;
    let mut none_s = 1.0;
    let (mut pre, mut post) = (0.0, 0.0);
    for (f, rate, scope) in faults() {
        let after_content = !matches!(f, Fault::RateLimited { .. } | Fault::Status(_));
        if scope != Scope::Stream {
            none_ns *= 1.0 - rate;
        }
        let p = none_s * rate;
        if after_content {
            post += p;
        } else {
            pre += p;
        }
        none_s *= 1.0 - rate;
    }
    (1.0 - none_ns, pre, post)
}

fn config(sims: &[backstop_sim::SimHandle], breaker: &str, chain_extra: &str) -> String {
    let mut t = String::from("[server]\n");
    for (name, sim) in PROVIDERS.iter().zip(sims) {
        t.push_str(&provider_section(
            name,
            sim,
            &format!("timeout = \"{ATTEMPT_TIMEOUT}\"\nretries = 1\n{breaker}"),
        ));
    }
    t.push_str(&format!(
        "\n[chains.default]\nproviders = [\"openai\", \"anthropic\", \"groq\"]\n\
         timeout = \"{}s\"\nidle_timeout = \"500ms\"\n{chain_extra}\n",
        CHAIN_TIMEOUT.as_secs()
    ));
    t
}

struct Run {
    non_stream: (usize, usize),
    stream: (usize, usize),
    by_kind: BTreeMap<(bool, String), usize>,
    violations: Vec<String>,
}

async fn run(label: &str, breaker: &str, chain_extra: &str, seed: u64, stream_every: usize) -> Run {
    let sim_configs: Vec<SimConfig> = (0..3)
        .map(|n| SimConfig {
            ttft: Duration::from_millis(5),
            chunk_delay: Duration::from_millis(2),
            chunks: CHUNKS,
            seed: seed + n,
            record: false,
            ..SimConfig::default()
        })
        .collect();
    let sims = start_sims(&sim_configs).await;
    let text = config(&sims, breaker, chain_extra);
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
    for sim in &gw.sims {
        for (f, rate, scope) in faults() {
            sim.set_random_for(f, rate, scope);
        }
    }
    let client = client(CONCURRENCY);
    let url = gw.url("/v1/chat/completions");
    let started = tokio::time::Instant::now();
    let results: Vec<Result<(bool, String, Outcome), String>> =
        futures_util::stream::iter(0..REQUESTS)
            .map(|i| {
                let client = client.clone();
                let url = url.clone();
                tokio::spawn(one_as(
                    client,
                    url,
                    i,
                    i.is_multiple_of(stream_every),
                    "default",
                    CHUNKS,
                    CHAIN_TIMEOUT + Duration::from_secs(3),
                ))
            })
            .buffer_unordered(CONCURRENCY)
            .map(|j| j.unwrap_or_else(|e| Err(format!("request task panicked: {e}"))))
            .collect()
            .await;
    let elapsed = started.elapsed();
    let mut r = Run {
        non_stream: (0, 0),
        stream: (0, 0),
        by_kind: BTreeMap::new(),
        violations: Vec::new(),
    };
    for res in results {
        match res {
            Ok((stream, key, outcome)) => {
                *r.by_kind.entry((stream, key)).or_default() += 1;
                let ok = usize::from(matches!(outcome, Outcome::Answer));
                let cell = if stream {
                    &mut r.stream
                } else {
                    &mut r.non_stream
                };
                cell.0 += ok;
                cell.1 += 1;
            }
            Err(e) => r.violations.push(e),
        }
    }
    let applied: Vec<u64> = gw
        .sims
        .iter()
        .map(backstop_sim::SimHandle::faults_applied)
        .collect();
    let received: Vec<u64> = gw
        .sims
        .iter()
        .map(backstop_sim::SimHandle::request_count)
        .collect();
    let metrics = gw.app.metrics.render();
    println!("realistic[{label}]: {REQUESTS} requests, {CONCURRENCY} in flight, {elapsed:.1?}");
    println!("realistic[{label}]: provider requests {received:?}, faults applied {applied:?}");
    for ((stream, key), n) in &r.by_kind {
        let mode = if *stream { "stream" } else { "non-stream" };
        println!("realistic[{label}]: {mode:10} {key:40} {n}");
    }
    for line in metrics.lines().filter(|l| {
        l.starts_with("backstop_breaker_state")
            || l.starts_with("backstop_retries_total")
            || l.starts_with("backstop_rate_limit_holds_total")
    }) {
        println!("realistic[{label}]: {line}");
    }
    gw.stop().await;
    r
}

/// Non-streamed requests fail only when every attempt does (the model: q^6 ≈ 0.04%, more when
/// the retry budget refuses a retry); so do resumed streams, nearly. The floors: 99.5%
/// non-streamed, 99% streamed with resume.
const NON_STREAM_FLOOR: f64 = 0.995;
const RESUMED_STREAM_FLOOR: f64 = 0.99;
/// The resume run's non-streamed half shares the chain's retry budget with 600 streams and
/// their resumes: the budget refuses ~60 retries there (~9 in the other runs), so 0.1–0.7% of
/// its 600 fail (measured 0–4). The 99.5% floor is asserted over 1,000 by the other two runs;
/// here the resume floor applies to both halves.
const RESUME_RUN_NON_STREAM_FLOOR: f64 = 0.99;

fn check(label: &str, r: &Run) {
    assert!(
        r.violations.is_empty(),
        "{label}: {} invariant violations (hung, truncated, mixed or malformed), first ones:\n{}",
        r.violations.len(),
        r.violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (q, pre, post) = fault_model();
    let (ok_ns, n_ns) = r.non_stream;
    let (ok_s, n_s) = r.stream;
    let rate_ns = ok_ns as f64 / n_ns as f64;
    let rate_s = ok_s as f64 / n_s as f64;
    // Streams: once a provider gets past its pre-content faults the stream is committed, and
    // a fault after content ends it with an error event (no resume in this run). With up to six
    // attempts a stream almost surely commits; it then succeeds with P = (1 - pre - post) / (1 - pre).
    let predict_s = (1.0 - pre - post) / (1.0 - pre) * (1.0 - pre.powi(6));
    let sigma = (predict_s * (1.0 - predict_s) / n_s as f64).sqrt();
    let floor_s = predict_s - 4.0 * sigma;
    println!(
        "realistic[{label}]: fault rate per attempt {q:.3} (streams: {pre:.3} before content, {post:.3} after)"
    );
    println!(
        "realistic[{label}]: non-stream {ok_ns}/{n_ns} = {rate_ns:.4} (floor {NON_STREAM_FLOOR}); stream {ok_s}/{n_s} = {rate_s:.4} (model {predict_s:.4}, floor {floor_s:.4})"
    );
    assert!(
        rate_ns >= NON_STREAM_FLOOR,
        "{label}: non-stream success {rate_ns}"
    );
    assert!(
        rate_s >= floor_s,
        "{label}: stream success {rate_s} below {floor_s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_partial_failure_keeps_answering_with_the_default_breaker() {
    let r = run("default breaker", "", "", 0x5EA1, STREAM_EVERY).await;
    check("default breaker", &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_partial_failure_keeps_answering_with_a_count_breaker() {
    let r = run(
        "failure_threshold = 1000",
        "breaker = { failure_threshold = 1000 }",
        "",
        0x5EA2,
        STREAM_EVERY,
    )
    .await;
    check("failure_threshold = 1000", &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_partial_failure_with_stream_resume_answers_streams_too() {
    let r = run(
        "stream_resume",
        "",
        "stream_resume = true",
        0x5EA3,
        RESUME_STREAM_EVERY,
    )
    .await;
    assert!(
        r.violations.is_empty(),
        "{} invariant violations, first ones:\n{}",
        r.violations.len(),
        r.violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (ok_ns, n_ns) = r.non_stream;
    let (ok_s, n_s) = r.stream;
    let resumed: usize = r
        .by_kind
        .iter()
        .filter(|((stream, key), _)| *stream && key.contains("resumed"))
        .map(|(_, n)| n)
        .sum();
    println!(
        "realistic[stream_resume]: non-stream {ok_ns}/{n_ns}, stream {ok_s}/{n_s} ({resumed} answered after a resume)"
    );
    assert!(
        ok_ns as f64 / n_ns as f64 >= RESUME_RUN_NON_STREAM_FLOOR,
        "non-stream {ok_ns}/{n_ns}"
    );
    assert!(
        ok_s as f64 / n_s as f64 >= RESUMED_STREAM_FLOOR,
        "stream {ok_s}/{n_s}: faults after the first token are recoverable"
    );
    assert!(resumed > 0, "resumes happened");
}
