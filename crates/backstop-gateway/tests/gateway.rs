//! The gateway over HTTP against simulators: answers, failover, breakers, error statuses,
//! models, health, breaker admin and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::Duration;

use backstop_sim::Fault;
use reqwest::Method;
use serde_json::{Value, json};
use support::{Spec, TestGateway, chat_body, expect_error, header, metric, wait_until};

async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The answering provider and attempt count of a successful chat request.
async fn ask(gw: &TestGateway, prompt: &str) -> (String, usize, Value) {
    let r = gw.chat(&chat_body("default", prompt)).await;
    assert_eq!(r.status(), 200, "chat status");
    let provider = header(&r, "x-backstop-provider")
        .expect("x-backstop-provider")
        .to_owned();
    let attempts = header(&r, "x-backstop-attempts")
        .expect("x-backstop-attempts")
        .parse()
        .expect("attempts is a number");
    (provider, attempts, json_of(r).await)
}

/// Fault every request of this simulator.
fn always(gw: &TestGateway, provider: &str, fault: Fault) {
    gw.sim(provider).set_random(fault, 1.0);
}

#[tokio::test]
async fn non_stream_answer_has_openai_shape_and_attempt_headers() {
    let gw = TestGateway::start().await;
    let r = gw.chat(&chat_body("default", "What is a monad?")).await;
    assert_eq!(r.status(), 200);
    assert!(
        header(&r, "content-type").is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers()
    );
    assert_eq!(header(&r, "x-backstop-provider"), Some("openai"));
    assert_eq!(header(&r, "x-backstop-attempts"), Some("1"));
    let v = json_of(r).await;
    assert!(
        v["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-")),
        "{v}"
    );
    assert_eq!(v["object"], "chat.completion");
    assert!(
        v["created"].as_u64().is_some_and(|c| c > 1_600_000_000),
        "{v}"
    );
    assert_eq!(v["model"], "openai-model", "the upstream model is reported");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().expect("content");
    assert!(
        content.starts_with("Simulated answer from openai to: What is a monad?"),
        "{content}"
    );
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &v["usage"];
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt_tokens");
    let completion = usage["completion_tokens"]
        .as_u64()
        .expect("completion_tokens");
    assert!(prompt >= 1 && completion >= 1, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
    assert_eq!(v["choices"].as_array().map(Vec::len), Some(1));

    // Two requests get two different ids.
    let (_, _, second) = ask(&gw, "again").await;
    assert_ne!(second["id"], v["id"]);
    assert_eq!(gw.sim("openai").request_count(), 2);
    assert_eq!(gw.sim("anthropic").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn failover_when_the_primary_returns_503() {
    let gw = TestGateway::start().await;
    always(&gw, "openai", Fault::Status(503));
    let (provider, attempts, v) = ask(&gw, "hello").await;
    assert_eq!(provider, "anthropic");
    assert_eq!(
        attempts, 2,
        "one failed openai attempt, one anthropic success"
    );
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("Simulated answer from anthropic"),
        "{content}"
    );
    assert_eq!(gw.sim("openai").request_count(), 1);
    assert_eq!(gw.sim("anthropic").request_count(), 1);
    assert_eq!(gw.sim("groq").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn open_breaker_stops_traffic_to_the_primary() {
    // failure_threshold = 2, no retries: two failed requests open the breaker.
    let gw = TestGateway::start().await;
    always(&gw, "openai", Fault::Status(503));
    for _ in 0..2 {
        assert_eq!(ask(&gw, "x").await.0, "anthropic");
    }
    assert_eq!(gw.breaker("openai").await["state"], "open");
    let primary = gw.sim("openai").request_count();
    assert_eq!(primary, 2);
    for _ in 0..5 {
        let (provider, attempts, _) = ask(&gw, "y").await;
        assert_eq!(provider, "anthropic");
        // The skipped provider is still listed as an attempt.
        assert_eq!(attempts, 2);
    }
    assert_eq!(
        gw.sim("openai").request_count(),
        primary,
        "an open breaker must keep requests away from the primary"
    );
    assert_eq!(gw.sim("anthropic").request_count(), 7);
    gw.shutdown().await;
}

#[tokio::test]
async fn primary_answers_again_after_the_recovery_timeout() {
    let gw = TestGateway::start_with(Spec {
        recovery: "500ms",
        ..Spec::default()
    })
    .await;
    always(&gw, "openai", Fault::Status(503));
    for _ in 0..2 {
        assert_eq!(ask(&gw, "x").await.0, "anthropic");
    }
    let b = gw.breaker("openai").await;
    assert_eq!(b["state"], "open");
    let until = b["until_half_open_ms"]
        .as_u64()
        .expect("until_half_open_ms");
    assert!(until > 0 && until <= 500, "{b}");
    // Still open right away: anthropic answers.
    gw.sim("openai").clear_faults();
    assert_eq!(ask(&gw, "x").await.0, "anthropic");
    wait_until(
        Duration::from_secs(3),
        "the breaker to leave open",
        || async { gw.breaker("openai").await["state"] != "open" },
    )
    .await;
    assert_eq!(gw.breaker("openai").await["state"], "half_open");
    let (provider, attempts, _) = ask(&gw, "back?").await;
    assert_eq!(provider, "openai");
    assert_eq!(attempts, 1);
    assert_eq!(gw.breaker("openai").await["state"], "closed");
    assert_eq!(ask(&gw, "and stays").await.0, "openai");
    assert_eq!(gw.sim("openai").request_count(), 4);
    gw.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let gw = TestGateway::start().await;
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("content-type", "application/json")
        .body(r#"{"model":"default","messages":[{"role":"user","content":"hi"}"#)
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400).await;
    assert_eq!(e["type"], "invalid_request_error");
    assert!(
        e["message"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("content-type", "application/json")
        .body("not json at all")
        .send()
        .await
        .unwrap();
    expect_error(r, 400).await;
    assert_eq!(gw.sim("openai").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn invalid_fields_are_400_naming_the_field() {
    let gw = TestGateway::start().await;
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"model": "default", "messages": user, "max_tokens": -1}),
            "max_tokens",
        ),
        (
            json!({"model": "default", "messages": user, "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "default", "messages": user, "tools": [{"type": "function"}]}),
            "tools[0].function",
        ),
        // No provider serves several choices: refused by the chain, naming it.
        (json!({"model": "default", "messages": user, "n": 2}), "n"),
        (
            json!({"model": "default", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "ftp://example.invalid/x.png"}}
            ]}]}),
            "messages[0].content[1].image_url.url",
        ),
        (json!({"model": "default", "messages": []}), "messages"),
        (
            json!({"model": "default", "messages": user, "audio": {"voice": "alloy", "format": "wav"}}),
            "audio",
        ),
        (
            json!({"model": "default", "messages": user, "temperature": 5}),
            "temperature",
        ),
        (
            json!({"model": "default", "messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "default", "messages": user, "max_tokens": "ten"}),
            "max_tokens",
        ),
    ];
    for (body, param) in cases {
        let r = gw.chat(&body).await;
        let e = expect_error(r, 400).await;
        assert_eq!(e["type"], "invalid_request_error", "{body}");
        assert_eq!(e["param"], param, "{body} -> {e}");
    }
    // A missing required field is a 400 too, and says which.
    let e = expect_error(gw.chat(&json!({"model": "default"})).await, 400).await;
    assert!(e["message"].as_str().unwrap().contains("messages"), "{e}");
    for p in support::PROVIDERS {
        assert_eq!(
            gw.sim(p).request_count(),
            0,
            "no invalid request reaches {p}"
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() {
    let gw = TestGateway::start().await;
    let e = expect_error(gw.chat(&chat_body("gpt-9", "hi")).await, 404).await;
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["param"], "model");
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"].as_str().unwrap().contains("gpt-9"), "{e}");
    gw.shutdown().await;
}

#[tokio::test]
async fn body_over_max_body_bytes_is_413() {
    let gw = TestGateway::start_with(Spec {
        max_body_bytes: Some(1024),
        ..Spec::default()
    })
    .await;
    // Under the limit: answered.
    let (provider, _, _) = ask(&gw, &"a".repeat(500)).await;
    assert_eq!(provider, "openai");
    let r = gw.chat(&chat_body("default", &"a".repeat(4000))).await;
    let e = expect_error(r, 413).await;
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"].as_str().unwrap().contains("1024"), "{e}");
    assert_eq!(gw.sim("openai").request_count(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = TestGateway::start_with(Spec {
        body_timeout: Some("200ms"),
        ..Spec::default()
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n\
          content-type: application/json\r\ncontent-length: 200\r\n\r\n{\"model\":",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(3), async {
        while !String::from_utf8_lossy(&buf).contains("\r\n\r\n{") {
            let n = conn.read(&mut piece).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&piece[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert_eq!(gw.sim("openai").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn all_providers_rate_limited_is_429() {
    let gw = TestGateway::start().await;
    for p in support::PROVIDERS {
        always(
            &gw,
            p,
            Fault::RateLimited {
                retry_after_secs: Some(30),
                retry_after_ms: None,
                retry_after_http_date: false,
            },
        );
    }
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(header(&r, "x-backstop-attempts"), Some("3"));
    let retry_after: u64 = header(&r, "retry-after")
        .expect("retry-after on a 429")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let e = expect_error(r, 429).await;
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "rate_limit_exceeded");
    let msg = e["message"].as_str().unwrap();
    for p in support::PROVIDERS {
        assert!(msg.contains(p), "summary names {p}: {msg}");
    }
    assert!(!msg.contains("sk-test"), "no secrets in errors: {msg}");
    gw.shutdown().await;
}

#[tokio::test]
async fn some_providers_rate_limited_is_not_429() {
    let gw = TestGateway::start().await;
    always(
        &gw,
        "openai",
        Fault::RateLimited {
            retry_after_secs: Some(30),
            retry_after_ms: None,
            retry_after_http_date: false,
        },
    );
    always(&gw, "anthropic", Fault::Status(503));
    always(&gw, "groq", Fault::Status(500));
    let r = gw.chat(&chat_body("default", "hi")).await;
    let status = r.status().as_u16();
    assert!(
        status == 502 || status == 503,
        "only some providers were rate limited: expected 502/503, got {status}"
    );
    let e = expect_error(r, status).await;
    assert_eq!(e["type"], "server_error");

    // Two rate limited, one overloaded: still not a 429.
    let gw2 = TestGateway::start().await;
    for p in ["openai", "groq"] {
        always(
            &gw2,
            p,
            Fault::RateLimited {
                retry_after_secs: Some(30),
                retry_after_ms: None,
                retry_after_http_date: false,
            },
        );
    }
    always(&gw2, "anthropic", Fault::Status(529));
    let r = gw2.chat(&chat_body("default", "hi")).await;
    let status = r.status().as_u16();
    assert!(status == 502 || status == 503, "got {status}");
    assert!(header(&r, "retry-after").is_none());
    expect_error(r, status).await;
    gw.shutdown().await;
    gw2.shutdown().await;
}

#[tokio::test]
async fn all_providers_failing_with_5xx_is_502() {
    let gw = TestGateway::start().await;
    for p in support::PROVIDERS {
        always(&gw, p, Fault::Status(500));
    }
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(header(&r, "x-backstop-attempts"), Some("3"));
    let e = expect_error(r, 502).await;
    assert_eq!(e["type"], "server_error");
    assert_eq!(e["code"], "all_providers_failed");
    let msg = e["message"].as_str().unwrap();
    for p in support::PROVIDERS {
        assert!(msg.contains(p), "per-provider summary names {p}: {msg}");
    }
    assert!(!msg.contains("sk-test"), "{msg}");
    for p in support::PROVIDERS {
        assert_eq!(gw.sim(p).request_count(), 1);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn every_breaker_open_is_503() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    for p in support::PROVIDERS {
        let b = gw.admin(p, "trip").await;
        assert_eq!(b["state"], "open");
    }
    let r = gw.chat(&chat_body("default", "hi")).await;
    let e = expect_error(r, 503).await;
    assert_eq!(e["type"], "server_error");
    for p in support::PROVIDERS {
        assert_eq!(gw.sim(p).request_count(), 0, "{p} was skipped");
    }
    // Resetting one breaker brings the chain back.
    gw.admin("groq", "reset").await;
    assert_eq!(ask(&gw, "hi").await.0, "groq");
    gw.shutdown().await;
}

#[tokio::test]
async fn chain_deadline_is_504() {
    let gw = TestGateway::start_with(Spec {
        chain_timeout: "300ms",
        ..Spec::default()
    })
    .await;
    for p in support::PROVIDERS {
        always(&gw, p, Fault::Hang);
    }
    let started = std::time::Instant::now();
    let r = gw.chat(&chat_body("default", "hi")).await;
    let elapsed = started.elapsed();
    let e = expect_error(r, 504).await;
    assert_eq!(e["type"], "timeout_error");
    assert_eq!(e["code"], "deadline_exceeded");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn models_lists_the_chains() {
    let gw = TestGateway::start().await;
    let r = gw.request(Method::GET, "/v1/models").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            m["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids, ["default", "solo"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn healthz_and_readyz() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    // Health endpoints need no key.
    let r = gw.client.get(gw.at("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = gw.client.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Opening the only breaker of chain `solo` makes the gateway not ready.
    gw.admin("openai", "trip").await;
    let r = gw.client.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(text.contains("solo"), "{text}");
    assert!(
        !text.contains("default"),
        "default still has open providers: {text}"
    );
    // Still healthy: liveness does not depend on upstreams.
    let r = gw.client.get(gw.at("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    gw.admin("openai", "reset").await;
    let r = gw.client.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn breakers_endpoint_shows_states_and_failures_in_window() {
    let gw = TestGateway::start().await;
    let all = gw.breakers().await;
    let list = all["breakers"].as_array().unwrap();
    let mut names: Vec<&str> = list.iter().map(|b| b["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["anthropic", "groq", "openai"]);
    for b in list {
        assert_eq!(b["state"], "closed", "{b}");
        assert_eq!(b["failures_in_window"], 0, "{b}");
        assert_eq!(b["failure_threshold"], 2, "{b}");
        assert_eq!(b["recovery_timeout_ms"], 10_000, "{b}");
        assert!(b["until_half_open_ms"].is_null(), "{b}");
    }
    always(&gw, "openai", Fault::Status(500));
    ask(&gw, "one").await;
    let b = gw.breaker("openai").await;
    assert_eq!(b["state"], "closed");
    assert_eq!(b["failures_in_window"], 1);
    assert_eq!(gw.breaker("anthropic").await["failures_in_window"], 0);
    ask(&gw, "two").await;
    let b = gw.breaker("openai").await;
    assert_eq!(b["state"], "open");
    assert!(b["until_half_open_ms"].as_u64().is_some(), "{b}");
    gw.shutdown().await;
}

#[tokio::test]
async fn admin_trip_and_reset_change_the_state() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    let b = gw.admin("openai", "trip").await;
    assert_eq!(b["name"], "openai");
    assert_eq!(b["state"], "open");
    assert_eq!(gw.breaker("openai").await["state"], "open");
    // Tripped: traffic goes to anthropic without touching openai.
    assert_eq!(ask(&gw, "hi").await.0, "anthropic");
    assert_eq!(gw.sim("openai").request_count(), 0);
    let b = gw.admin("openai", "reset").await;
    assert_eq!(b["state"], "closed");
    assert_eq!(gw.breaker("openai").await["state"], "closed");
    assert_eq!(ask(&gw, "hi").await.0, "openai");
    // An unknown breaker is a 404 in OpenAI's shape.
    let r = gw
        .client
        .post(gw.at("/v1/breakers/nope/trip"))
        .bearer_auth(support::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    expect_error(r, 404).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn metrics_change_after_a_failover() {
    let gw = TestGateway::start().await;
    let requests =
        |o: &str| format!("backstop_requests_total{{chain=\"default\",outcome=\"{o}\"}}");
    let attempts =
        |p: &str, o: &str| format!("backstop_attempts_total{{provider=\"{p}\",outcome=\"{o}\"}}");
    let state =
        |p: &str, s: &str| format!("backstop_breaker_state{{provider=\"{p}\",state=\"{s}\"}}");

    ask(&gw, "warm up").await;
    let before = gw.metrics().await;
    assert_eq!(metric(&before, &requests("success")), 1.0);
    assert_eq!(metric(&before, &requests("fallback")), 0.0);
    assert_eq!(metric(&before, &attempts("openai", "success")), 1.0);
    assert_eq!(metric(&before, &attempts("openai", "failed")), 0.0);
    assert_eq!(metric(&before, &state("openai", "closed")), 1.0);
    assert_eq!(metric(&before, &state("openai", "open")), 0.0);
    assert!(
        metric(
            &before,
            "backstop_token_usage_sum{provider=\"openai\",type=\"output\"}"
        ) > 0.0
    );
    assert_eq!(
        metric(
            &before,
            "backstop_token_usage_count{provider=\"openai\",type=\"output\"}"
        ),
        1.0,
        "one answer"
    );

    always(&gw, "openai", Fault::Status(503));
    for _ in 0..2 {
        assert_eq!(ask(&gw, "x").await.0, "anthropic");
    }
    let after = gw.metrics().await;
    assert_eq!(metric(&after, &requests("fallback")), 2.0);
    assert_eq!(metric(&after, &requests("success")), 1.0);
    assert_eq!(metric(&after, &requests("failed")), 0.0);
    assert_eq!(
        metric(&after, "backstop_fallbacks_total{chain=\"default\"}"),
        2.0
    );
    assert_eq!(metric(&after, &attempts("openai", "failed")), 2.0);
    assert_eq!(metric(&after, &attempts("anthropic", "success")), 2.0);
    assert_eq!(
        metric(&after, &state("openai", "open")),
        1.0,
        "breaker opened"
    );
    assert_eq!(metric(&after, &state("openai", "closed")), 0.0);
    assert_eq!(metric(&after, &state("openai", "half_open")), 0.0);
    assert_eq!(metric(&after, &state("anthropic", "closed")), 1.0);
    assert_eq!(
        metric(
            &after,
            "backstop_attempt_errors_total{provider=\"openai\",kind=\"overloaded\"}"
        ),
        2.0,
        "503 is overloaded"
    );
    assert_eq!(
        metric(
            &after,
            "backstop_breaker_transitions_total{provider=\"openai\",to=\"open\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &after,
            "backstop_attempt_duration_seconds_count{provider=\"openai\"}"
        ),
        3.0
    );

    // With the breaker open the primary is skipped, and that is counted too.
    ask(&gw, "y").await;
    let skipped = gw.metrics().await;
    assert_eq!(metric(&skipped, &attempts("openai", "skipped")), 1.0);
    assert_eq!(
        metric(
            &skipped,
            "backstop_attempt_errors_total{provider=\"openai\",kind=\"circuit_open\"}"
        ),
        1.0
    );
    assert_eq!(metric(&skipped, &requests("fallback")), 3.0);
    assert!(metric(&skipped, "backstop_http_responses_total{class=\"2xx\"}") >= 4.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_endpoint_is_404_json() {
    let gw = TestGateway::start().await;
    let r = gw
        .request(Method::GET, "/v1/does-not-exist")
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 404).await;
    assert_eq!(e["type"], "invalid_request_error");
    let r = gw
        .request(Method::POST, "/v2/chat/completions")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404).await;
    // A known path with the wrong method is a 405, also in OpenAI's shape.
    let r = gw
        .request(Method::GET, "/v1/chat/completions")
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 405).await;
    assert_eq!(e["type"], "invalid_request_error");
    gw.shutdown().await;
}

/// A connection is dealt to one worker thread and its requests use that worker's upstream
/// connections: four client connections, one after another, over two workers reach the
/// provider over exactly two connections (one would mean the workers share a pool, or one got
/// them all).
#[tokio::test]
async fn each_worker_reaches_the_provider_over_its_own_connections() {
    let gw = TestGateway::start_with(Spec {
        sim: backstop_sim::SimConfig {
            record: true,
            ..backstop_sim::SimConfig::default()
        },
        server_extra: "workers = 2\n".into(),
        ..Spec::default()
    })
    .await;
    for _ in 0..4 {
        // A client of its own: one connection to the gateway, closed when it is dropped.
        let client = support::client();
        for _ in 0..3 {
            let r = client
                .post(gw.at("/v1/chat/completions"))
                .json(&chat_body("solo", "hi"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            json_of(r).await;
        }
    }
    let requests = gw.sim("openai").requests();
    assert_eq!(requests.len(), 12);
    let upstream: std::collections::BTreeSet<_> =
        requests.iter().map(|r| r.peer.expect("peer")).collect();
    assert_eq!(upstream.len(), 2, "upstream connections: {upstream:?}");
    gw.shutdown().await;
}
