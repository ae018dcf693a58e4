//! Each fault produces what it says, on each route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::time::{Duration, Instant, SystemTime};

use backstop_sim::{Fault, SimConfig, Simulator};
use common::*;
use serde_json::Value;

fn anthropic_error_type(v: &Value) -> &str {
    assert_eq!(v["type"], "error");
    v["error"]["type"].as_str().unwrap()
}

#[tokio::test]
async fn status_faults_use_each_providers_error_body() {
    let sim = sim().await;
    let cases: [(u16, &str, &str); 6] = [
        (529, "overloaded_error", "server_error"),
        (503, "overloaded_error", "server_error"),
        (500, "api_error", "server_error"),
        (429, "rate_limit_error", "requests"),
        (401, "authentication_error", "invalid_request_error"),
        (400, "invalid_request_error", "invalid_request_error"),
    ];
    for (status, anthropic_type, openai_type) in cases {
        for route in ROUTES {
            sim.fail_next(1, Fault::Status(status));
            let resp = call(&sim, route, false).await;
            assert_eq!(resp.status().as_u16(), status);
            let v = json_of(resp).await;
            match route {
                Route::Anthropic => {
                    assert_eq!(anthropic_error_type(&v), anthropic_type);
                    assert!(v["error"]["message"].is_string());
                }
                _ => {
                    let e = &v["error"];
                    assert_eq!(e["type"], openai_type, "{status}");
                    assert!(e["message"].is_string());
                    assert!(e.get("param").is_some() && e.get("code").is_some());
                }
            }
        }
    }
    sim.fail_next(1, Fault::Status(401));
    let v = json_of(call(&sim, Route::OpenAi, true).await).await;
    assert_eq!(v["error"]["code"], "invalid_api_key");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limited_headers() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(
            1,
            Fault::RateLimited {
                retry_after_secs: Some(2),
                retry_after_ms: Some(1500),
                retry_after_http_date: false,
            },
        );
        let resp = call(&sim, route, true).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "2");
        assert_eq!(resp.headers()["retry-after-ms"], "1500");
        let v = json_of(resp).await;
        if route == Route::Anthropic {
            assert_eq!(anthropic_error_type(&v), "rate_limit_error");
        } else {
            assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        }
    }
    sim.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(30),
            retry_after_ms: None,
            retry_after_http_date: true,
        },
    );
    let resp = call(&sim, Route::OpenAi, false).await;
    let date = resp.headers()["retry-after"].to_str().unwrap();
    let at = httpdate::parse_http_date(date).unwrap();
    let wait = at.duration_since(SystemTime::now()).unwrap();
    assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
    assert!(!resp.headers().contains_key("retry-after-ms"));
    sim.shutdown().await;
}

#[tokio::test]
async fn context_length_and_content_filter() {
    let sim = sim().await;
    sim.fail_next(3, Fault::ContextLength);
    for route in ROUTES {
        let resp = call(&sim, route, false).await;
        assert_eq!(resp.status(), 400);
        let v = json_of(resp).await;
        if route == Route::Anthropic {
            assert_eq!(anthropic_error_type(&v), "invalid_request_error");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.starts_with("prompt is too long: "), "{msg}");
            assert!(msg.ends_with(" maximum"));
        } else {
            assert_eq!(v["error"]["code"], "context_length_exceeded");
            assert_eq!(v["error"]["type"], "invalid_request_error");
        }
    }

    sim.fail_next(2, Fault::ContentFilter);
    for route in [Route::OpenAi, Route::Groq] {
        let resp = call(&sim, route, true).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(json_of(resp).await["error"]["code"], "content_filter");
    }
    // Anthropic: a refusal, not an HTTP error.
    sim.fail_next(2, Fault::ContentFilter);
    let v = json_of(call(&sim, Route::Anthropic, false).await).await;
    assert_eq!(v["stop_reason"], "refusal");
    assert_eq!(v["content"], serde_json::json!([]));
    let (body, _) = read_all(call(&sim, Route::Anthropic, true).await).await;
    let events = parse_sse(&body);
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    let md: Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(md["delta"]["stop_reason"], "refusal");
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_body() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(1, Fault::MalformedBody);
        let resp = call(&sim, route, false).await;
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes().await.unwrap();
        assert!(serde_json::from_slice::<Value>(&bytes).is_err());

        sim.fail_next(1, Fault::MalformedChunk { after_chunks: 0 });
        let resp = call(&sim, route, false).await;
        assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_never_sends_headers() {
    let sim = sim().await;
    sim.fail_next(1, Fault::Hang);
    let err = client()
        .post(Route::OpenAi.url(&sim))
        .timeout(Duration::from_millis(150))
        .body(serde_json::to_vec(&Route::OpenAi.body(false)).unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // The next request is served normally.
    assert_eq!(call(&sim, Route::OpenAi, false).await.status(), 200);
    assert_eq!(sim.request_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_hung_requests() {
    let sim = sim().await;
    sim.fail_next(1, Fault::Hang);
    let url = Route::Anthropic.url(&sim);
    let pending = tokio::spawn(async move { post(&url, &Route::Anthropic.body(false)).await });
    tokio::time::timeout(Duration::from_secs(5), async {
        while sim.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the hung request reached the simulator");
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown finishes despite a hung request");
    let _ = pending.await;
}

#[tokio::test]
async fn latency_fault_delays_headers() {
    let sim = sim().await;
    sim.fail_next(1, Fault::Latency(Duration::from_millis(80)));
    let start = Instant::now();
    let resp = call(&sim, Route::Groq, false).await;
    assert!(start.elapsed() >= Duration::from_millis(80));
    assert_eq!(resp.status(), 200);
    assert!(json_of(resp).await["choices"].is_array());
    sim.shutdown().await;
}

#[tokio::test]
async fn disconnect_aborts_the_stream_after_n_chunks() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(1, Fault::Disconnect { after_chunks: 2 });
        let resp = call(&sim, route, true).await;
        assert_eq!(resp.status(), 200);
        let (body, failed) = read_all(resp).await;
        assert!(failed, "{route:?}: body should abort");
        let (_, n) = content_text(&parse_sse(&body));
        assert_eq!(n, 2);
        assert!(!body.contains("[DONE]") && !body.contains("message_stop"));
    }
    // Non-streaming: headers, then the body is cut off.
    sim.fail_next(1, Fault::Disconnect { after_chunks: 0 });
    let resp = call(&sim, Route::Anthropic, false).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn truncate_ends_cleanly_without_the_marker() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(1, Fault::Truncate { after_chunks: 3 });
        let (body, failed) = read_all(call(&sim, route, true).await).await;
        assert!(!failed);
        let events = parse_sse(&body);
        assert_eq!(content_text(&events).1, 3);
        assert!(!body.contains("[DONE]") && !body.contains("message_stop"));
        // Past the end: all chunks and finish events, still no marker.
        sim.fail_next(1, Fault::Truncate { after_chunks: 99 });
        let (body, failed) = read_all(call(&sim, route, true).await).await;
        assert!(!failed);
        assert_eq!(content_text(&parse_sse(&body)).1, 8);
        assert!(!body.contains("[DONE]") && !body.contains("message_stop"));
    }
    sim.fail_next(1, Fault::Truncate { after_chunks: 0 });
    let resp = call(&sim, Route::OpenAi, false).await;
    let bytes = resp.bytes().await.unwrap();
    assert!(!bytes.is_empty());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_chunk_after_n() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(1, Fault::MalformedChunk { after_chunks: 1 });
        let (body, failed) = read_all(call(&sim, route, true).await).await;
        assert!(!failed);
        let events = parse_sse(&body);
        assert_eq!(content_text(&events).1, 1);
        assert_eq!(events.last().unwrap().data, "{not json");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn in_band_error_after_n() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(
            1,
            Fault::InBandError {
                after_chunks: 2,
                status: 529,
            },
        );
        let resp = call(&sim, route, true).await;
        assert_eq!(resp.status(), 200);
        let (body, failed) = read_all(resp).await;
        assert!(!failed);
        let events = parse_sse(&body);
        assert_eq!(content_text(&events).1, 2);
        let last = events.last().unwrap();
        let v: Value = serde_json::from_str(&last.data).unwrap();
        if route == Route::Anthropic {
            assert_eq!(last.event.as_deref(), Some("error"));
            assert_eq!(anthropic_error_type(&v), "overloaded_error");
        } else {
            assert!(v["error"]["message"].is_string());
            assert_eq!(v["error"]["type"], "server_error");
        }
        assert!(!body.contains("[DONE]") && !body.contains("message_stop"));
    }
    // Non-streaming: a plain error status.
    sim.fail_next(
        1,
        Fault::InBandError {
            after_chunks: 2,
            status: 503,
        },
    );
    assert_eq!(call(&sim, Route::OpenAi, false).await.status(), 503);
    sim.shutdown().await;
}

#[tokio::test]
async fn stall_keeps_the_connection_open() {
    let sim = sim().await;
    for route in ROUTES {
        sim.fail_next(1, Fault::Stall { after_chunks: 2 });
        let mut resp = call(&sim, route, true).await;
        let mut buf = String::new();
        while content_text(&parse_sse(&buf)).1 < 2 {
            let c = resp.chunk().await.unwrap().unwrap();
            buf.push_str(std::str::from_utf8(&c).unwrap());
        }
        let next = tokio::time::timeout(Duration::from_millis(100), resp.chunk()).await;
        assert!(
            next.is_err(),
            "{route:?}: stream should stall, got {next:?}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn delays_apply_to_streams() {
    let sim = Simulator::start(SimConfig {
        ttft: Duration::from_millis(30),
        chunk_delay: Duration::from_millis(5),
        chunks: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let start = Instant::now();
    let (body, failed) = read_all(call(&sim, Route::Anthropic, true).await).await;
    assert!(!failed);
    assert!(start.elapsed() >= Duration::from_millis(45));
    assert!(body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    sim.shutdown().await;
}
