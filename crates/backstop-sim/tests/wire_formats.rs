//! Each route's non-streamed and streamed bodies follow the provider's wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use backstop_sim::{SimConfig, Simulator};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn openai_completion_object() {
    let sim = sim().await;
    let resp = call(&sim, Route::OpenAi, false).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers().contains_key("x-request-id"));
    let v = json_of(resp).await;
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-test");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("Simulated answer from openai to: {PROMPT}.")),
        "{text}"
    );
    // "You are terse." (3) + prompt (6 words)
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    assert_eq!(v["usage"]["completion_tokens"], 8);
    assert_eq!(v["usage"]["total_tokens"], 17);
    sim.shutdown().await;
}

#[tokio::test]
async fn anthropic_message_object() {
    let sim = sim().await;
    let resp = call(&sim, Route::Anthropic, false).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("request-id"));
    let v = json_of(resp).await;
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["model"], "claude-test");
    assert_eq!(v["content"][0]["type"], "text");
    assert!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Simulated answer from anthropic to: Hello")
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"]["input_tokens"], 9);
    assert_eq!(v["usage"]["output_tokens"], 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn groq_completion_has_x_groq() {
    let sim = sim().await;
    let v = json_of(call(&sim, Route::Groq, false).await).await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-test");
    assert!(v["x_groq"]["id"].is_string());
    assert!(full_text(Route::Groq, &v).starts_with("Simulated answer from groq to:"));
    assert_eq!(v["usage"]["completion_tokens"], 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_and_groq_streams() {
    let sim = sim().await;
    for route in [Route::OpenAi, Route::Groq] {
        let full = full_text(route, &json_of(call(&sim, route, false).await).await);
        let resp = call(&sim, route, true).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let (body, failed) = read_all(resp).await;
        assert!(!failed);
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        let events = parse_sse(&body);
        assert_eq!(events.last().unwrap().data, "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect();
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "gpt-test");
            assert_eq!(c["id"], chunks[0]["id"]);
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert!(
            last.get("usage").is_none(),
            "no usage without include_usage"
        );
        let (text, n) = content_text(&events);
        assert_eq!(n, 8);
        assert_eq!(text, full, "{route:?}");
        if route == Route::Groq {
            assert_eq!(last["x_groq"]["usage"]["completion_tokens"], 8);
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_include_usage_chunk() {
    let sim = sim().await;
    let mut body = Route::OpenAi.body(true);
    body["stream_options"] = json!({"include_usage": true});
    let (text, _) = read_all(post(&Route::OpenAi.url(&sim), &body).await).await;
    let events = parse_sse(&text);
    let n = events.len();
    assert_eq!(events[n - 1].data, "[DONE]");
    let usage: Value = serde_json::from_str(&events[n - 2].data).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 9);
    assert_eq!(usage["usage"]["completion_tokens"], 8);
    let finish: Value = serde_json::from_str(&events[n - 3].data).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], Value::Null);
    sim.shutdown().await;
}

#[tokio::test]
async fn anthropic_stream_event_sequence() {
    let sim = sim().await;
    let full = full_text(
        Route::Anthropic,
        &json_of(call(&sim, Route::Anthropic, false).await).await,
    );
    let resp = call(&sim, Route::Anthropic, true).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (body, failed) = read_all(resp).await;
    assert!(!failed);
    let events = parse_sse(&body);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", 8));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for e in &events {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["type"], e.event.as_deref().unwrap());
    }
    let start: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(start["message"]["model"], "claude-test");
    assert_eq!(start["message"]["usage"]["input_tokens"], 9);
    let delta: Value = serde_json::from_str(&events[3].data).unwrap();
    assert_eq!(delta["delta"]["type"], "text_delta");
    let md: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(md["delta"]["stop_reason"], "end_turn");
    assert_eq!(md["usage"]["output_tokens"], 8);
    let (text, n) = content_text(&events);
    assert_eq!(n, 8);
    assert_eq!(text, full);
    sim.shutdown().await;
}

#[tokio::test]
async fn echo_is_capped_at_60_chars_and_chunks_configurable() {
    let sim = Simulator::start(SimConfig {
        chunks: 3,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let long = "x".repeat(100);
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": long}]}
    ]});
    let v = json_of(post(&Route::OpenAi.url(&sim), &body).await).await;
    let text = full_text(Route::OpenAi, &v);
    assert!(text.starts_with(&format!(
        "Simulated answer from openai to: {}.",
        "x".repeat(60)
    )));
    assert!(!text.contains(&"x".repeat(61)));
    assert_eq!(v["usage"]["completion_tokens"], 3);

    let mut body = body;
    body["stream"] = json!(true);
    let (sse, _) = read_all(post(&Route::OpenAi.url(&sim), &body).await).await;
    let (streamed, n) = content_text(&parse_sse(&sse));
    assert_eq!(n, 3);
    assert_eq!(streamed, text);
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_json_is_a_provider_400() {
    let sim = sim().await;
    for route in ROUTES {
        let resp = client()
            .post(route.url(&sim))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let v = json_of(resp).await;
        match route {
            Route::Anthropic => {
                assert_eq!(v["type"], "error");
                assert_eq!(v["error"]["type"], "invalid_request_error");
            }
            _ => assert_eq!(v["error"]["type"], "invalid_request_error"),
        }
    }
    assert_eq!(sim.request_count(), 3);
    sim.shutdown().await;
}
