//! The status page and its data: behind the client keys (Bearer, or Basic with the key as the
//! password, which is how a browser sends it); every chain and provider of the running config;
//! a tripped breaker reads open with its time to half-open; a failover is listed with its
//! reason; rates cover the requests made. The page itself is checked in headless Chromium by
//! `tests/browser/status_page.py` (run by `.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use backstop_sim::Fault;
use support::{ADMIN_KEY, CLIENT_KEY, Spec, TestGateway, chat_body};

async fn status(gw: &TestGateway) -> serde_json::Value {
    let r = gw
        .client
        .get(gw.at("/v1/status"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn entry<'a>(v: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}: {v}"))
}

#[tokio::test]
async fn the_status_page_and_its_data_need_a_key_and_a_browser_may_send_it_as_basic() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    for path in ["/status", "/v1/status"] {
        let r = gw.client.get(gw.at(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let challenge = support::header(&r, "www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Basic "), "{path}: {challenge}");
        let r = gw
            .client
            .get(gw.at(path))
            .basic_auth("anyone", Some("not-a-key"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}: a wrong password");
        for key in [CLIENT_KEY, ADMIN_KEY] {
            let r = gw
                .client
                .get(gw.at(path))
                .basic_auth("status", Some(key))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path} with Basic");
        }
    }
    let r = gw
        .client
        .get(gw.at("/status"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        support::header(&r, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = support::header(&r, "content-security-policy")
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("/v1/status"),
        "the page polls its data endpoint"
    );
    for external in ["http://", "https://", "//cdn", "<link", "src=\""] {
        assert!(!html.contains(external), "self-contained: found {external}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_status_data_shows_every_provider_a_tripped_breaker_and_the_last_failover() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    let before = status(&gw).await;
    let names: Vec<&str> = before["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anthropic", "groq", "openai"]);
    let chains: Vec<&str> = before["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(chains, ["default", "solo"]);
    assert_eq!(
        entry(&before, "chains", "default")["providers"],
        serde_json::json!(["openai", "anthropic", "groq"])
    );
    assert!(entry(&before, "providers", "openai")["state"] == "closed");
    assert_eq!(before["failovers"], serde_json::json!([]));

    // One plain answer (no failover) ...
    let r = gw.chat(&chat_body("default", "first")).await;
    assert_eq!(support::header(&r, "x-backstop-provider"), Some("openai"));
    // ... and one failover: openai answers 503, anthropic answers.
    gw.sim("openai").fail_next(1, Fault::Status(503));
    let r = gw.chat(&chat_body("default", "hello")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        support::header(&r, "x-backstop-provider"),
        Some("anthropic")
    );
    // And openai tripped by the admin.
    gw.admin("openai", "trip").await;

    let after = status(&gw).await;
    let openai = entry(&after, "providers", "openai");
    assert_eq!(openai["state"], "open");
    let left = openai["until_half_open_ms"].as_u64().unwrap();
    assert!(left > 0 && left <= 10_000, "{openai}");
    assert_eq!(
        openai["errors"],
        serde_json::json!([{"kind": "overloaded", "count": 1}])
    );
    assert_eq!(openai["failed_share"], 0.5);
    assert!(openai["latency_p50_ms"].as_f64().is_some(), "{openai}");
    let anthropic = entry(&after, "providers", "anthropic");
    assert_eq!(anthropic["state"], "closed");
    assert_eq!(anthropic["failed_share"], 0.0);
    let p50 = anthropic["latency_p50_ms"].as_f64().unwrap();
    let p99 = anthropic["latency_p99_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99, "{anthropic}");
    assert!(anthropic["attempts_per_s"].as_f64().unwrap() > 0.0);

    let default = entry(&after, "chains", "default");
    assert_eq!(default["requests_total"], 2);
    assert_eq!(default["fallbacks_total"], 1);
    assert_eq!(default["fallback_rate"], 0.5);
    assert!(default["requests_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(
        entry(&after, "chains", "solo")["fallback_rate"],
        serde_json::Value::Null
    );

    let failovers = after["failovers"].as_array().unwrap();
    assert_eq!(
        failovers.len(),
        1,
        "the plain answer is no failover: {after}"
    );
    let f = &failovers[0];
    assert_eq!(f["chain"], "default");
    assert_eq!(f["to"], "anthropic");
    assert_eq!(f["reasons"][0]["provider"], "openai");
    assert_eq!(f["reasons"][0]["kind"], "overloaded");
    assert!(f["at_ms"].as_u64().unwrap() > 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_status_data_follows_a_reload() {
    let spec = Spec {
        admin_only: true,
        ..Spec::default()
    };
    let gw = TestGateway::start_with(spec.clone()).await;
    let text = format!(
        "{}\n[chains.backup]\nproviders = [\"groq\"]\n",
        support::config_text(&spec, &gw.sims)
    );
    std::fs::write(&gw.config_path, text).unwrap();
    let r = gw
        .client
        .post(gw.at("/v1/admin/reload"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = gw
        .client
        .get(gw.at("/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let backup = entry(&v, "chains", "backup");
    assert_eq!(backup["providers"], serde_json::json!(["groq"]));
    gw.shutdown().await;
}
