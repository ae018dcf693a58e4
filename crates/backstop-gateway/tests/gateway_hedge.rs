//! Hedged requests over HTTP: a primary slow to its first token is answered by the fallback
//! about `hedge_after` later instead of after the TTFT timeout; the budget caps how many
//! requests are hedged; a primary that answers in time is never hedged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::time::{Duration, Instant};

use backstop_sim::SimConfig;
use reliability_support::{
    Gateway, ask_chain_c, client, expected_reply, gateway_over_three, parse_stream,
};

const CHUNKS: usize = 4;

/// A gateway whose chain `c` tries openai then anthropic, with `chain_extra` (the hedge keys).
async fn gateway(chain_extra: &str) -> Gateway {
    let sim = SimConfig {
        chunks: CHUNKS,
        chunk_delay: Duration::from_millis(1),
        ..SimConfig::default()
    };
    gateway_over_three(
        sim,
        "timeout = \"30s\"\nretries = 0\nbreaker = { failure_threshold = 100 }",
        &format!(
            "\n[chains.c]\nproviders = [\"openai\", \"anthropic\"]\nttft_timeout = \"30s\"\ntimeout = \"40s\"\n{chain_extra}\n"
        ),
        "sk-hedge",
    )
    .await
}

/// The value of the hedge counter for `result`.
fn hedges(gw: &Gateway, result: &str) -> u64 {
    let want = format!("backstop_hedges_total{{chain=\"c\",result=\"{result}\"}} ");
    gw.app
        .metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&want).map(|v| v.parse().unwrap()))
        .unwrap_or_else(|| panic!("no {want} in the metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_token_is_answered_by_the_hedge_not_after_the_ttft_timeout() {
    let gw = gateway("hedge_after = \"200ms\"\nhedge_budget = 1.0").await;
    gw.sim("openai").set_ttft(Duration::from_secs(20));
    gw.sim("openai").set_latency(Duration::from_secs(20));

    let started = Instant::now();
    let (provider, body) = ask_chain_c(&gw, "slow stream", true).await;
    let took = started.elapsed();
    assert_eq!(provider, "anthropic");
    assert_eq!(
        parse_stream(&body).unwrap().text,
        expected_reply("anthropic", "slow stream", CHUNKS)
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "answered after {took:?}: the hedge starts at 200 ms, the TTFT timeout is 30 s"
    );

    let started = Instant::now();
    let (provider, body) = ask_chain_c(&gw, "slow answer", false).await;
    let took = started.elapsed();
    assert_eq!(provider, "anthropic");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        expected_reply("anthropic", "slow answer", CHUNKS)
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");

    assert_eq!(hedges(&gw, "hedge_won"), 2);
    assert_eq!(hedges(&gw, "primary_won"), 0);
    assert_eq!(gw.sim("openai").request_count(), 2, "the primary was asked");
    // The cancelled primary is neutral: its breaker saw no failure.
    let body = client(1)
        .get(gw.url("/v1/breakers"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let openai = v["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "openai")
        .unwrap();
    assert_eq!(openai["state"], "closed");
    assert_eq!(openai["failures_in_window"], 0, "{openai}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_answers_in_time_is_not_hedged() {
    let gw = gateway("hedge_after = \"2s\"").await;
    for i in 0..5 {
        let (provider, _) = ask_chain_c(&gw, &format!("quick {i}"), i % 2 == 0).await;
        assert_eq!(provider, "openai");
    }
    assert_eq!(gw.sim("anthropic").request_count(), 0);
    assert_eq!(hedges(&gw, "primary_won") + hedges(&gw, "hedge_won"), 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hedge_budget_caps_the_share_of_hedged_requests() {
    // Every request is slow past the hedge delay; a 10% budget hedges 2 of 20.
    let gw = gateway("hedge_after = \"20ms\"\nhedge_budget = 0.1").await;
    gw.sim("openai").set_ttft(Duration::from_millis(150));
    for i in 0..20 {
        ask_chain_c(&gw, &format!("r{i}"), true).await;
    }
    let hedged = hedges(&gw, "primary_won") + hedges(&gw, "hedge_won") + hedges(&gw, "neither");
    assert_eq!(hedged, 2, "10% of 20 requests");
    assert_eq!(gw.sim("anthropic").request_count(), 2);
    gw.stop().await;
}
