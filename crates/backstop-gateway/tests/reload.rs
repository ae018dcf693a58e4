//! Hot reload over HTTP (`POST /v1/admin/reload`): a new chain appears; an invalid file
//! changes nothing and says where; a stream in flight is not cut; unchanged providers keep their
//! breaker (an open one stays open) while a changed one starts afresh; settings that need a
//! restart are named, not silently ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::Duration;

use backstop_sim::SimConfig;
use futures_util::StreamExt;
use support::{
    ADMIN_KEY, Spec, TestGateway, chat_body, config_text, content_of, metric, sse_data, stream_body,
};

fn admin_gateway_spec() -> Spec {
    Spec {
        admin_only: true,
        ..Spec::default()
    }
}

/// The harness's config with more text appended.
fn config_plus(gw: &TestGateway, spec: &Spec, extra: &str) -> String {
    format!("{}{extra}", config_text(spec, &gw.sims))
}

async fn reload(gw: &TestGateway) -> (u16, serde_json::Value) {
    let r = gw
        .client
        .post(gw.at("/v1/admin/reload"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body)
}

async fn model_ids(gw: &TestGateway) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&gw.get_text("/v1/models").await).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_reload_serves_a_new_chain() {
    let spec = admin_gateway_spec();
    let gw = TestGateway::start_with(spec.clone()).await;
    assert_eq!(model_ids(&gw).await, ["default", "solo"]);
    let text = config_plus(
        &gw,
        &spec,
        "\n[chains.backup]\nproviders = [\"groq\", \"openai\"]\n",
    );
    std::fs::write(&gw.config_path, text).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reloaded"], true);
    assert_eq!(body["chains"]["added"], serde_json::json!(["backup"]));
    assert_eq!(
        body["chains"]["unchanged"],
        serde_json::json!(["default", "solo"])
    );
    assert_eq!(body["not_applied"], serde_json::json!([]));
    assert_eq!(model_ids(&gw).await, ["backup", "default", "solo"]);
    let r = gw.chat(&chat_body("backup", "hello")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(support::header(&r, "x-backstop-provider"), Some("groq"));
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "backstop_requests_total{chain=\"backup\",outcome=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "backstop_config_reloads_total{result=\"success\"}"),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn an_invalid_file_changes_nothing_and_says_where() {
    let spec = admin_gateway_spec();
    let gw = TestGateway::start_with(spec.clone()).await;
    let good = config_text(&spec, &gw.sims);
    // The chain `default` names a provider that does not exist.
    let bad = good.replacen(
        "providers = [\"openai\", \"anthropic\", \"groq\"]",
        "providers = [\"openai\", \"anthropc\", \"groq\"]",
        1,
    );
    assert_ne!(bad, good);
    let line = bad.lines().position(|l| l.contains("anthropc")).unwrap() + 1;
    let bad = format!("{bad}\n[chains.never]\nproviders = [\"openai\"]\n");
    std::fs::write(&gw.config_path, &bad).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["reloaded"], false);
    let e = &body["error"];
    assert_eq!(e["code"], "config_invalid");
    assert_eq!(e["line"], line);
    assert_eq!(e["key"], "chains.default.providers[1]");
    let message = e["message"].as_str().unwrap();
    let file = gw.config_path.display().to_string();
    assert!(
        message.contains(&format!("{file}:{line}:")),
        "file:line:col in {message}"
    );
    assert!(
        message.contains("unknown provider \"anthropc\""),
        "{message}"
    );
    assert!(message.contains("the running config stays"), "{message}");

    // A TOML syntax error is located too.
    std::fs::write(&gw.config_path, format!("{good}\n[chains.broken\n")).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TOML syntax error"),
        "{body}"
    );
    // A file that cannot be read.
    std::fs::remove_file(&gw.config_path).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "config_unreadable");

    // Nothing changed: same chains, requests answered.
    assert_eq!(model_ids(&gw).await, ["default", "solo"]);
    let r = gw.chat(&chat_body("default", "still here")).await;
    assert_eq!(r.status(), 200);
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "backstop_config_reloads_total{result=\"failure\"}"),
        3.0
    );
    assert_eq!(
        metric(&m, "backstop_config_reloads_total{result=\"success\"}"),
        0.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stream_in_flight_finishes_on_the_config_it_started_on() {
    let spec = Spec {
        admin_only: true,
        sim: SimConfig {
            chunks: 20,
            chunk_delay: Duration::from_millis(40),
            record: false,
            ..SimConfig::default()
        },
        ..Spec::default()
    };
    let gw = TestGateway::start_with(spec.clone()).await;
    let r = gw.chat(&stream_body("default", "a long answer")).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut seen = Vec::new();
    // The role event and the first content chunk have arrived: the stream is committed.
    while !String::from_utf8_lossy(&seen).contains("\"content\"") {
        seen.extend_from_slice(&body.next().await.expect("stream ended early").unwrap());
    }
    // A config without the chain the stream runs on.
    let without_default = config_text(&spec, &gw.sims).replace(
        "[chains.default]\nproviders = [\"openai\", \"anthropic\", \"groq\"]",
        "[chains.other]\nproviders = [\"groq\"]",
    );
    std::fs::write(&gw.config_path, without_default).unwrap();
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["chains"]["removed"], serde_json::json!(["default"]));
    // New requests see the new config ...
    let r = gw.chat(&chat_body("default", "x")).await;
    assert_eq!(r.status(), 404);
    // ... while the stream that started before the reload completes.
    while let Some(chunk) = body.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(seen).unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let expected = backstop_sim::reply_text("openai", "a long answer", 20).unwrap();
    assert_eq!(content_of(&events), expected);
    gw.shutdown().await;
}

#[tokio::test]
async fn unchanged_providers_keep_their_breaker_and_changed_ones_start_afresh() {
    let spec = admin_gateway_spec();
    let gw = TestGateway::start_with(spec.clone()).await;
    gw.admin("openai", "trip").await;
    gw.admin("groq", "trip").await;
    // groq's timeout changes; openai and anthropic are untouched.
    let text = config_text(&spec, &gw.sims);
    let groq_at = text.find("[providers.groq]").unwrap();
    let (head, tail) = text.split_at(groq_at);
    let tail = tail.replacen("timeout = \"2s\"", "timeout = \"3s\"", 1);
    std::fs::write(&gw.config_path, format!("{head}{tail}")).unwrap();
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["providers"]["changed"], serde_json::json!(["groq"]));
    assert_eq!(
        report["providers"]["unchanged"],
        serde_json::json!(["anthropic", "openai"])
    );
    assert_eq!(report["chains"]["changed"], serde_json::json!(["default"]));
    assert_eq!(report["chains"]["unchanged"], serde_json::json!(["solo"]));

    assert_eq!(
        gw.breaker("openai").await["state"],
        "open",
        "kept, still open"
    );
    assert_eq!(
        gw.breaker("groq").await["state"],
        "closed",
        "new settings, new breaker"
    );
    assert_eq!(gw.breaker("anthropic").await["state"], "closed");
    // The rebuilt chain uses the kept breaker: openai is skipped without a call.
    let r = gw.chat(&chat_body("default", "who answers")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        support::header(&r, "x-backstop-provider"),
        Some("anthropic")
    );
    assert_eq!(gw.sim("openai").request_count(), 0);
    // So does the chain kept whole.
    let r = gw.chat(&chat_body("solo", "x")).await;
    assert_eq!(r.status(), 503, "solo's only provider is still open");
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "backstop_breaker_state{provider=\"openai\",state=\"open\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "backstop_breaker_state{provider=\"groq\",state=\"closed\"}"
        ),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn settings_that_need_a_restart_are_named_and_the_rest_applies() {
    let spec = admin_gateway_spec();
    let gw = TestGateway::start_with(spec.clone()).await;
    let text = config_text(&spec, &gw.sims).replacen(
        "[server]\n",
        "[server]\nlisten = \"127.0.0.1:1\"\nmax_in_flight = 3\nmax_body_bytes = 100\n",
        1,
    );
    std::fs::write(&gw.config_path, text).unwrap();
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    let not_applied = report["not_applied"].as_array().unwrap();
    let keys: Vec<&str> = not_applied
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["server.listen", "server.max_in_flight"], "{report}");
    assert_eq!(not_applied[0]["running"], "127.0.0.1:8080");
    assert_eq!(not_applied[0]["configured"], "127.0.0.1:1");
    assert_eq!(not_applied[1]["configured"], "3");
    // The reloadable setting took effect: a 200-byte body is now too large.
    let big = chat_body("default", &"x".repeat(200));
    let r = gw.chat(&big).await;
    assert_eq!(r.status(), 413);
    // And a second reload of the same file says the same (the running values did not move).
    let (_, again) = reload(&gw).await;
    assert_eq!(again["not_applied"], report["not_applied"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_state_section_added_by_a_reload_is_named_as_needing_a_restart() {
    let spec = admin_gateway_spec();
    let gw = TestGateway::start_with(spec.clone()).await;
    let extra = "\n[state]\nredis_url_env = \"BACKSTOP_REDIS_URL\"\n";
    std::fs::write(&gw.config_path, config_plus(&gw, &spec, extra)).unwrap();
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["not_applied"],
        serde_json::json!([{
            "key": "state",
            "running": "(none)",
            "configured": "redis_url_env = BACKSTOP_REDIS_URL, on_redis_error = Allow, timeout = 50ms",
        }]),
        "{report}"
    );
    assert!(
        gw.live.app().fleet.is_none(),
        "no fleet link started by a reload"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_gateway_without_a_config_file_says_there_is_nothing_to_reload() {
    use backstop_gateway::reload::{Live, ReloadError};
    let gw = TestGateway::start_with(admin_gateway_spec()).await;
    let fixed = Live::fixed(gw.app.clone());
    let e = fixed.reload().unwrap_err();
    assert!(matches!(e, ReloadError::NoFile), "{e}");
    assert!(e.to_string().contains("--demo"), "{e}");
    gw.shutdown().await;
}
