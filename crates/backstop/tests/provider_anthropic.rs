//! `AnthropicLlm` against `backstop-sim` over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[macro_use]
mod provider_support;

provider_suite!(Wire::Anthropic);

use backstop::providers::AnthropicLlm;
use backstop::{ChatRequest, LlmConfig, Message, Provider};

#[tokio::test]
async fn status_529_overloaded_error_is_overloaded() {
    let e = complete_err(Fault::Status(529)).await;
    assert_eq!((e.kind, e.status), (ErrorKind::Overloaded, Some(529)));
    assert_eq!(e.message, "Overloaded");
}

#[tokio::test]
async fn in_band_529_is_overloaded() {
    let got = stream_with(Fault::InBandError {
        after_chunks: 2,
        status: 529,
    })
    .await;
    assert_eq!(got.content_chunks(), 2);
    assert_eq!(got.error.expect("error event").kind, ErrorKind::Overloaded);
}

#[tokio::test]
async fn refusal_is_a_content_filter_finish() {
    let sim = sim().await;
    let p = provider(WIRE, &sim);
    sim.fail_next(1, Fault::ContentFilter);
    let c = p.complete(&req()).await.expect("refusal is an answer");
    assert_eq!(c.finish_reason, Some(FinishReason::ContentFilter));
    assert_eq!(c.text, "");
    sim.fail_next(1, Fault::ContentFilter);
    let got = collect(p.stream(&req()).await.expect("stream")).await;
    assert!(got.error.is_none());
    assert_eq!(got.content_chunks(), 0);
    assert!(
        got.chunks
            .iter()
            .any(|c| c.finish_reason == Some(FinishReason::ContentFilter))
    );
}

#[tokio::test]
async fn request_body_and_headers_follow_the_mapping() {
    let sim = sim().await;
    let p = AnthropicLlm::new("claude-3-5-haiku-latest")
        .base_url(format!("{}//", sim.base_url()))
        .api_key(KEY);
    let request = ChatRequest::new(vec![
        Message::system("be terse"),
        Message::user("hi"),
        Message::assistant("hello"),
        Message::user("again"),
    ])
    .config(LlmConfig::default().temperature(0.4).stop("END").top_p(0.9));
    p.complete(&request).await.expect("complete");
    collect(p.stream(&request).await.expect("stream")).await;
    let recorded = sim.requests();
    let plain = &recorded[0];
    assert_eq!(plain.path, "/v1/messages");
    assert_eq!(plain.header("x-api-key"), Some("sk-test-loopback-key"));
    assert_eq!(plain.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(plain.header("authorization"), None);
    let b = &plain.body;
    assert_eq!(b["model"], "claude-3-5-haiku-latest");
    assert_eq!(b["system"], "be terse");
    assert_eq!(b["max_tokens"], 1024);
    assert_eq!(b["stop_sequences"], serde_json::json!(["END"]));
    assert!((b["temperature"].as_f64().unwrap() - 0.4).abs() < 1e-6);
    let roles: Vec<&str> = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert!(b.get("stream").is_none());
    assert_eq!(recorded[1].body["stream"], true);
    assert!(recorded[1].body.get("stream_options").is_none());
}

#[tokio::test]
async fn provider_max_tokens_is_used_when_the_request_has_none() {
    let sim = sim().await;
    let p = AnthropicLlm::new("claude")
        .base_url(sim.base_url())
        .api_key(KEY)
        .config(LlmConfig::new(0.1, 300))
        .name("claude-primary");
    assert_eq!(Provider::name(&p), "claude-primary");
    p.complete(&ChatRequest::user("hi"))
        .await
        .expect("complete");
    p.complete(&ChatRequest::user("hi").config(LlmConfig::default().max_tokens(5)))
        .await
        .expect("complete");
    let recorded = sim.requests();
    assert_eq!(recorded[0].body["max_tokens"], 300);
    assert_eq!(recorded[1].body["max_tokens"], 5);
}
