//! Streamed answers over HTTP: OpenAI chunk format, usage chunk, failover before the first
//! token, error events after it, and graceful shutdown with a stream in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::Duration;

use backstop_gateway::serve::Stopped;
use backstop_sim::{Fault, SimConfig};
use serde_json::{Value, json};
use support::{
    Spec, TestGateway, chat_body, content_of, expect_error, header, metric, sse_data, stream_body,
    wait_until,
};

/// A streamed request: status 200 and SSE headers asserted; returns provider, attempts, events.
async fn stream(gw: &TestGateway, body: &Value) -> (String, String, Vec<String>) {
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 200);
    assert!(
        header(&r, "content-type").is_some_and(|c| c.starts_with("text/event-stream")),
        "{:?}",
        r.headers()
    );
    let provider = header(&r, "x-backstop-provider")
        .expect("x-backstop-provider")
        .to_owned();
    let attempts = header(&r, "x-backstop-attempts")
        .expect("x-backstop-attempts")
        .to_owned();
    let text = r.text().await.expect("SSE body");
    assert!(
        text.ends_with("\n\n"),
        "events end with a blank line: {text:?}"
    );
    (provider, attempts, sse_data(&text))
}

fn parse(event: &str) -> Value {
    serde_json::from_str(event).unwrap_or_else(|e| panic!("event is not JSON ({e}): {event}"))
}

/// Asserts the stream ended with an OpenAI-shaped error event and no `[DONE]`; returns the error.
fn assert_ends_with_error(events: &[String]) -> Value {
    assert!(
        !events.iter().any(|e| e == "[DONE]"),
        "a failed stream must not end with [DONE]: {events:#?}"
    );
    let last = parse(events.last().expect("some events"));
    let e = support::assert_openai_error(&last);
    assert!(last.get("choices").is_none(), "{last}");
    // Everything before it is an ordinary chunk.
    for ev in &events[..events.len() - 1] {
        assert_eq!(parse(ev)["object"], "chat.completion.chunk", "{ev}");
    }
    e
}

#[tokio::test]
async fn streamed_answer_is_openai_chunks_ending_with_done() {
    let gw = TestGateway::start().await;
    let prompt = "Tell me about circuit breakers";
    let (provider, attempts, events) = stream(&gw, &stream_body("default", prompt)).await;
    assert_eq!(provider, "openai");
    assert_eq!(attempts, "1");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| parse(e))
        .collect();
    let id = chunks[0]["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("chatcmpl-"), "{id}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["id"], id.as_str(), "one id per stream");
        assert_eq!(c["model"], "openai-model");
        assert_eq!(c["choices"].as_array().map(Vec::len), Some(1), "{c}");
        assert!(c.get("usage").is_none(), "no usage unless asked: {c}");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()),
        "only the last chunk finishes"
    );
    // The simulator sends 8 content chunks.
    let content_events = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .count();
    assert_eq!(content_events, 8);

    let streamed = content_of(&events);
    let r = gw.chat(&chat_body("default", prompt)).await;
    assert_eq!(r.status(), 200);
    let whole: Value = r.json().await.unwrap();
    assert_eq!(
        streamed,
        whole["choices"][0]["message"]["content"].as_str().unwrap(),
        "streamed deltas concatenate to the non-streamed text"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn include_usage_adds_a_usage_chunk_before_done() {
    let gw = TestGateway::start().await;
    let body = json!({
        "model": "default",
        "messages": [{"role": "user", "content": "count my tokens please"}],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let (_, _, events) = stream(&gw, &body).await;
    let n = events.len();
    assert_eq!(events[n - 1], "[DONE]");
    let usage_chunk = parse(&events[n - 2]);
    assert_eq!(usage_chunk["object"], "chat.completion.chunk");
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    let u = &usage_chunk["usage"];
    let prompt = u["prompt_tokens"].as_u64().unwrap();
    let completion = u["completion_tokens"].as_u64().unwrap();
    assert!(prompt >= 1, "{u}");
    assert_eq!(completion, 8, "the simulator counts one token per chunk");
    assert_eq!(u["total_tokens"].as_u64(), Some(prompt + completion));
    // The chunk before it carries the finish reason; every other chunk has `"usage": null`,
    // as OpenAI documents for include_usage.
    assert_eq!(parse(&events[n - 3])["choices"][0]["finish_reason"], "stop");
    assert!(
        events[..n - 2]
            .iter()
            .all(|e| parse(e).get("usage").is_some_and(Value::is_null)),
        "{events:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn failover_before_the_first_token_on_503() {
    let gw = TestGateway::start().await;
    gw.sim("openai").set_random(Fault::Status(503), 1.0);
    let (provider, attempts, events) = stream(&gw, &stream_body("default", "hi")).await;
    assert_eq!(provider, "anthropic");
    assert_eq!(attempts, "2");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text = content_of(&events);
    assert!(
        text.starts_with("Simulated answer from anthropic"),
        "{text}"
    );
    assert!(!text.contains("openai"), "{text}");
    assert_eq!(gw.sim("openai").request_count(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn failover_before_the_first_token_on_disconnect() {
    let gw = TestGateway::start().await;
    gw.sim("openai")
        .set_random(Fault::Disconnect { after_chunks: 0 }, 1.0);
    let (provider, attempts, events) = stream(&gw, &stream_body("default", "hi")).await;
    assert_eq!(provider, "anthropic");
    assert_eq!(attempts, "2");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text = content_of(&events);
    assert!(
        text.starts_with("Simulated answer from anthropic"),
        "{text}"
    );
    // Exactly one role chunk: nothing of the failed attempt leaked into the stream.
    let roles = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter(|e| parse(e)["choices"][0]["delta"]["role"] == "assistant")
        .count();
    assert_eq!(roles, 1);
    assert_eq!(gw.sim("openai").request_count(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn all_providers_failing_before_the_first_token_is_a_json_error() {
    let gw = TestGateway::start().await;
    for p in support::PROVIDERS {
        gw.sim(p).set_random(Fault::Status(500), 1.0);
    }
    let r = gw.chat(&stream_body("default", "hi")).await;
    let e = expect_error(r, 502).await;
    assert_eq!(e["code"], "all_providers_failed");
    gw.shutdown().await;
}

/// Mid-stream failure on the answering provider of a chain that has fallbacks left.
async fn mid_stream_failure(fault: Fault) -> Value {
    mid_stream_failure_with(Spec::default(), fault).await
}

async fn mid_stream_failure_with(spec: Spec, fault: Fault) -> Value {
    let gw = TestGateway::start_with(spec).await;
    let full = {
        let (_, _, events) = stream(&gw, &stream_body("default", "the prompt")).await;
        content_of(&events)
    };
    gw.sim("openai").fail_next(1, fault);
    let (provider, _, events) = stream(&gw, &stream_body("default", "the prompt")).await;
    assert_eq!(provider, "openai");
    let e = assert_ends_with_error(&events);
    assert_eq!(e["type"], "server_error");
    assert!(e["code"].is_string(), "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("openai"),
        "names the provider: {e}"
    );
    let partial = content_of(&events);
    assert!(!partial.is_empty(), "the first chunks were delivered");
    assert!(
        full.starts_with(&partial) && partial.len() < full.len(),
        "partial {partial:?} is a strict prefix of {full:?}"
    );
    // Committed to openai: no other provider was asked and no other text was mixed in.
    assert!(!partial.contains("anthropic") && !partial.contains("groq"));
    assert_eq!(gw.sim("anthropic").request_count(), 0);
    assert_eq!(gw.sim("groq").request_count(), 0);
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "backstop_stream_errors_total{chain=\"default\"}"),
        1.0
    );
    gw.shutdown().await;
    e
}

#[tokio::test]
async fn mid_stream_disconnect_ends_with_an_error_event_not_done() {
    mid_stream_failure(Fault::Disconnect { after_chunks: 2 }).await;
}

#[tokio::test]
async fn mid_stream_in_band_error_ends_with_an_error_event_not_done() {
    let e = mid_stream_failure(Fault::InBandError {
        after_chunks: 2,
        status: 500,
    })
    .await;
    assert_eq!(e["code"], "server", "{e}");
}

#[tokio::test]
async fn mid_stream_truncation_is_an_error_not_a_clean_end() {
    // The upstream ends cleanly but without `[DONE]`: the gateway must not pass that off as a
    // complete answer.
    mid_stream_failure(Fault::Truncate { after_chunks: 2 }).await;
}

#[tokio::test]
async fn mid_stream_malformed_chunk_ends_with_an_error_event() {
    mid_stream_failure(Fault::MalformedChunk { after_chunks: 2 }).await;
}

#[tokio::test]
async fn mid_stream_stall_past_the_deadline_ends_with_a_timeout_event() {
    let started = std::time::Instant::now();
    let e = mid_stream_failure_with(
        Spec {
            chain_timeout: "600ms",
            ..Spec::default()
        },
        Fault::Stall { after_chunks: 2 },
    )
    .await;
    assert_eq!(e["code"], "timeout", "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn mid_stream_failure_of_an_anthropic_answer() {
    let gw = TestGateway::start().await;
    gw.app.breaker("openai").unwrap().trip();
    gw.sim("anthropic")
        .fail_next(1, Fault::Truncate { after_chunks: 2 });
    let (provider, _, events) = stream(&gw, &stream_body("default", "hi")).await;
    assert_eq!(provider, "anthropic");
    assert_ends_with_error(&events);
    let text = content_of(&events);
    assert!(
        text.starts_with("Simulated answer from anthropic"),
        "{text}"
    );
    assert!(!text.contains("groq"));
    assert_eq!(gw.sim("groq").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn stream_deadline_before_the_first_token_is_504() {
    let gw = TestGateway::start_with(Spec {
        chain_timeout: "300ms",
        ..Spec::default()
    })
    .await;
    for p in support::PROVIDERS {
        gw.sim(p).set_random(Fault::Hang, 1.0);
    }
    let r = gw.chat(&stream_body("default", "hi")).await;
    let e = expect_error(r, 504).await;
    assert_eq!(e["code"], "deadline_exceeded");
    gw.shutdown().await;
}

#[tokio::test]
async fn mid_stream_failure_on_the_only_provider() {
    let gw = TestGateway::start().await;
    gw.sim("openai")
        .fail_next(1, Fault::Disconnect { after_chunks: 2 });
    let (provider, attempts, events) = stream(&gw, &stream_body("solo", "hi")).await;
    assert_eq!(provider, "openai");
    assert_eq!(attempts, "1");
    assert_ends_with_error(&events);
    let content = events
        .iter()
        .filter(|e| {
            parse(e)["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert_eq!(content, 2, "two content chunks, then the error");
    gw.shutdown().await;
}

/// A gateway in front of a simulator that sends `chunks` content chunks `delay` apart.
async fn slow_gateway(delay: Duration, chunks: usize, shutdown_grace: Duration) -> TestGateway {
    TestGateway::start_with(Spec {
        sim: SimConfig {
            chunk_delay: delay,
            chunks,
            record: false,
            ..SimConfig::default()
        },
        shutdown_grace,
        ..Spec::default()
    })
    .await
}

/// Content events with non-empty text among `events`.
fn content_events(events: &[String]) -> usize {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count()
}

#[tokio::test]
async fn each_event_is_sent_as_it_arrives_not_held_for_the_next() {
    // Events that are ready together share a frame; one that is alone must not wait.
    // 400 ms apart: only a stall that long, of the gateway or of this reader, merges two.
    let gw = slow_gateway(
        Duration::from_millis(400),
        4,
        Spec::default().shutdown_grace,
    )
    .await;
    let mut r = gw.chat(&stream_body("default", "slow please")).await;
    assert_eq!(r.status(), 200);
    let mut body = String::new();
    let mut seen = vec![0];
    while let Some(piece) = r.chunk().await.expect("read") {
        body.push_str(std::str::from_utf8(&piece).unwrap());
        seen.push(content_events(&sse_data(&body)));
    }
    assert_eq!(sse_data(&body).last().map(String::as_str), Some("[DONE]"));
    assert!(*seen.last().unwrap() >= 3, "several content events: {body}");
    assert!(
        seen.windows(2).all(|w| w[1] - w[0] <= 1),
        "a content event was held back until the next one (content events after each read: \
         {seen:?})"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_stream_finish() {
    let mut gw = slow_gateway(
        Duration::from_millis(150),
        8,
        Spec::default().shutdown_grace,
    )
    .await;
    let mut r = gw.chat(&stream_body("default", "slow please")).await;
    assert_eq!(r.status(), 200);
    let mut body = String::new();
    // Read until the first content chunk has arrived.
    while !content_of(&sse_data(&body)).contains("Simulated") {
        let piece = r.chunk().await.expect("read").expect("stream ended early");
        body.push_str(std::str::from_utf8(&piece).unwrap());
    }
    let before = content_of(&sse_data(&body));
    gw.begin_shutdown();

    // New connections are refused once shutdown began (the listener is closed).
    let addr = gw.addr;
    wait_until(
        Duration::from_secs(2),
        "new connections to be refused",
        || async move { tokio::net::TcpStream::connect(addr).await.is_err() },
    )
    .await;
    let fresh = support::client()
        .get(gw.at("/healthz"))
        .send()
        .await
        .expect_err("a new request after shutdown began must fail");
    assert!(fresh.is_connect(), "{fresh:?}");

    // The in-flight stream still completes.
    while let Some(piece) = r
        .chunk()
        .await
        .expect("stream cut during graceful shutdown")
    {
        body.push_str(std::str::from_utf8(&piece).unwrap());
    }
    let events = sse_data(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
    let after = content_of(&events);
    assert!(
        after.len() > before.len(),
        "content kept arriving after shutdown began"
    );
    assert_eq!(
        gw.wait_stopped().await,
        Stopped::Drained,
        "every connection finished in the grace period"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn grace_period_expiry_closes_a_stream_that_would_not_finish() {
    // 8 chunks 400 ms apart take ~3 s; the grace period is 300 ms.
    let mut gw = slow_gateway(Duration::from_millis(400), 8, Duration::from_millis(300)).await;
    let mut r = gw.chat(&stream_body("default", "too slow")).await;
    assert_eq!(r.status(), 200);
    let mut body = String::new();
    while !content_of(&sse_data(&body)).contains("Simulated") {
        let piece = r.chunk().await.expect("read").expect("stream ended early");
        body.push_str(std::str::from_utf8(&piece).unwrap());
    }
    let started = std::time::Instant::now();
    gw.begin_shutdown();
    assert_eq!(
        gw.wait_stopped().await,
        Stopped::Cut,
        "serve reports that a connection outlived the grace period"
    );
    // The connection was closed: the client sees the body end (or fail) well before the
    // stream's natural end, without `[DONE]`.
    while let Ok(Some(piece)) = r.chunk().await {
        body.push_str(std::str::from_utf8(&piece).unwrap());
    }
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "closed at the end of the grace period, not at the stream's end"
    );
    // Not a bare cut: the last event says why the answer is incomplete.
    let events = sse_data(&body);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "server_shutting_down", "{body}");
    assert!(!body.contains("[DONE]"));
    gw.shutdown().await;
}

#[tokio::test]
async fn a_request_waiting_on_a_provider_at_the_end_of_the_grace_period_gets_503() {
    let mut gw = TestGateway::start_with(Spec {
        sim: SimConfig {
            latency: Duration::from_secs(3),
            record: false,
            ..SimConfig::default()
        },
        shutdown_grace: Duration::from_millis(300),
        ..Spec::default()
    })
    .await;
    let pending = tokio::spawn({
        let request = gw
            .request(reqwest::Method::POST, "/v1/chat/completions")
            .json(&support::chat_body("default", "slow"));
        async move { request.send().await }
    });
    support::wait_until(
        Duration::from_secs(2),
        "the request to reach the simulator",
        || async { gw.sim("openai").request_count() > 0 },
    )
    .await;
    gw.begin_shutdown();
    let r = pending.await.unwrap().unwrap();
    let e = support::expect_error(r, 503).await;
    assert_eq!(e["code"], "server_shutting_down");
    assert_eq!(gw.wait_stopped().await, Stopped::Cut);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_second_signal_stops_at_once() {
    let mut gw = slow_gateway(Duration::from_millis(400), 20, Duration::from_secs(30)).await;
    let mut r = gw.chat(&stream_body("default", "long")).await;
    let _ = r.chunk().await.unwrap();
    gw.begin_shutdown();
    gw.begin_shutdown();
    // `wait_stopped` allows 10 s: the 30 s grace period was not waited out.
    assert_eq!(gw.wait_stopped().await, Stopped::Forced);
    gw.shutdown().await;
}
