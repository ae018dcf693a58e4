//! Fault planning (queue, random), counters, the request log and the `/_sim/` API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::time::Duration;

use backstop_sim::{Fault, SimConfig, SimHandle, Simulator};
use common::*;
use serde_json::{Value, json};

async fn statuses(sim: &SimHandle, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(call(sim, Route::OpenAi, false).await.status().as_u16());
    }
    out
}

#[tokio::test]
async fn fail_next_applies_to_exactly_n_requests_fifo() {
    let sim = sim().await;
    sim.fail_next(2, Fault::Status(500));
    sim.fail_next(1, Fault::Status(503));
    sim.fail_next(0, Fault::Status(401)); // no-op
    assert_eq!(statuses(&sim, 5).await, [500, 500, 503, 200, 200]);
    assert_eq!(sim.request_count(), 5);
    assert_eq!(sim.faults_applied(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn random_faults_are_seeded_and_near_their_rate() {
    async fn run(seed: u64) -> Vec<u16> {
        let sim = Simulator::start(SimConfig {
            seed,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        sim.set_random(Fault::Status(503), 0.3);
        let s = statuses(&sim, 200).await;
        sim.shutdown().await;
        s
    }
    let a = run(7).await;
    let b = run(7).await;
    let c = run(8).await;
    assert_eq!(a, b, "same seed, same order: same faults");
    assert_ne!(a, c);
    let failures = a.iter().filter(|s| **s == 503).count();
    assert!(
        (30..=90).contains(&failures),
        "{failures} of 200 at rate 0.3"
    );
    assert!(a.iter().all(|s| *s == 503 || *s == 200));
}

#[tokio::test]
async fn queue_wins_over_random_and_clear_reseeds() {
    let sim = sim().await;
    sim.set_random(Fault::Status(503), 1.0);
    sim.fail_next(1, Fault::Status(401));
    assert_eq!(statuses(&sim, 3).await, [401, 503, 503]);
    sim.clear_faults();
    assert_eq!(statuses(&sim, 2).await, [200, 200]);

    sim.set_random(Fault::Status(500), 0.5);
    let first = statuses(&sim, 20).await;
    sim.clear_faults();
    sim.set_random(Fault::Status(500), 0.5);
    assert_eq!(statuses(&sim, 20).await, first);
    sim.shutdown().await;
}

#[tokio::test]
async fn request_log_records_everything() {
    let sim = sim().await;
    sim.fail_next(1, Fault::Truncate { after_chunks: 1 });
    let resp = client()
        .post(Route::Anthropic.url(&sim))
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .header("X-Custom", "abc")
        .body(serde_json::to_vec(&Route::Anthropic.body(true)).unwrap())
        .send()
        .await
        .unwrap();
    read_all(resp).await;
    call(&sim, Route::Groq, false).await;

    let log = sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(sim.request_count(), 2);
    let first = &log[0];
    assert_eq!(first.path, "/v1/messages");
    assert!(first.stream);
    assert_eq!(first.model.as_deref(), Some("claude-test"));
    assert_eq!(first.header("x-api-key"), Some("sk-test"));
    assert_eq!(first.header("x-custom"), Some("abc"));
    assert_eq!(first.body, Route::Anthropic.body(true));
    assert_eq!(first.fault, Some(Fault::Truncate { after_chunks: 1 }));
    assert_eq!(log[1].path, "/openai/v1/chat/completions");
    assert!(!log[1].stream);
    assert_eq!(log[1].fault, None);

    sim.reset();
    assert_eq!(sim.request_count(), 0);
    assert!(sim.requests().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn recording_can_be_off() {
    let sim = Simulator::start(SimConfig {
        record: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(call(&sim, Route::OpenAi, false).await.status(), 200);
    assert_eq!(sim.request_count(), 1);
    assert!(sim.requests().is_empty());
    sim.shutdown().await;
}

async fn control(sim: &SimHandle, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
    let resp = client()
        .request(method, format!("{}/_sim/{path}", sim.base_url()))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, json_of(resp).await)
}

#[tokio::test]
async fn control_api() {
    use reqwest::Method;
    let sim = sim().await;
    let (status, stats) = control(
        &sim,
        Method::POST,
        "faults",
        r#"{"next":[{"count":2,"fault":{"status":503}},{"count":1,"fault":{"rate_limited":{"retry_after_secs":1}}}],
            "random":[{"rate":0.0,"fault":"hang"}]}"#,
    )
    .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["queued_faults"], 3);
    assert_eq!(stats["random"][0]["fault"], "hang");
    assert_eq!(statuses(&sim, 4).await, [503, 503, 429, 200]);

    let (_, stats) = control(&sim, Method::GET, "stats", "").await;
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["faults_applied"], 3);
    assert_eq!(stats["queued_faults"], 0);

    let (_, stats) = control(&sim, Method::DELETE, "faults", "").await;
    assert_eq!(stats["random"], json!([]));

    let (status, stats) = control(
        &sim,
        Method::POST,
        "timing",
        r#"{"latency_ms":0,"ttft_ms":5,"chunk_delay_ms":1,"chunks":4}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stats["timing"]["ttft_ms"], 5.0);
    assert_eq!(stats["chunks"], 4);
    let v = json_of(call(&sim, Route::OpenAi, false).await).await;
    assert_eq!(v["usage"]["completion_tokens"], 4);

    let (status, log) = control(&sim, Method::GET, "requests", "").await;
    assert_eq!(status, 200);
    assert_eq!(log.as_array().unwrap().len(), 5);
    assert_eq!(log[0]["path"], "/v1/chat/completions");
    assert_eq!(log[0]["fault"], json!({"status": 503}));
    assert_eq!(log[0]["body"]["model"], "gpt-test");

    let (status, stats) = control(&sim, Method::POST, "reset", "").await;
    assert_eq!(status, 200);
    assert_eq!(stats["requests"], 0);
    assert_eq!(stats["recorded"], 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn control_api_rejects_bad_input_without_changes() {
    use reqwest::Method;
    let sim = sim().await;
    for (path, body, needle) in [
        ("faults", "{not json", "invalid /_sim/faults body"),
        (
            "faults",
            r#"{"next":[{"count":1,"fault":{"explode":1}}]}"#,
            "explode",
        ),
        ("faults", r#"{"nxt":[]}"#, "nxt"),
        (
            "faults",
            r#"{"random":[{"rate":1.5,"fault":{"status":500}}]}"#,
            "rate",
        ),
        (
            "faults",
            r#"{"next":[{"count":1,"fault":{"status":200}}]}"#,
            "status 200",
        ),
        (
            "faults",
            r#"{"next":[{"count":0,"fault":"hang"}]}"#,
            "count",
        ),
        ("timing", r#"{"latency":5}"#, "latency"),
        ("timing", r#"{"chunks":0}"#, "chunks"),
    ] {
        let (status, v) = control(&sim, Method::POST, path, body).await;
        assert_eq!(status, 400, "{body}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
    let (_, stats) = control(&sim, Method::GET, "stats", "").await;
    assert_eq!(stats["queued_faults"], 0);
    assert_eq!(stats["random"], json!([]));
    assert_eq!(stats["chunks"], 8);
    assert_eq!(
        stats["requests"], 0,
        "control calls are not provider requests"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn runtime_latency_setter() {
    let sim = sim().await;
    sim.set_latency(Duration::from_millis(60));
    let start = std::time::Instant::now();
    assert_eq!(call(&sim, Route::Anthropic, false).await.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(60));
    sim.set_latency(Duration::ZERO);
    sim.shutdown().await;
}
