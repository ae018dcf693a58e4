//! OTLP trace export from the real binary: a test collector on loopback decodes the
//! protobuf the gateway sends. A failover request (the first provider answers 500, the second
//! answers) that carries a caller's `traceparent` becomes one trace: the gateway's HTTP span
//! under the caller's span, the chain's request span under it, and one attempt span per
//! provider under that, with the GenAI attributes; providers are sent the attempt span as
//! their parent, and the answer names the gateway's span. Spans buffered at shutdown are
//! flushed before the process exits. A stream's HTTP and request spans end with its last byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use backstop_sim::{Fault, SimConfig, SimHandle, Simulator};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use tokio::sync::mpsc;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A collector on loopback: every OTLP/HTTP export it receives, decoded.
async fn collector() -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(
                |State(tx): State<mpsc::UnboundedSender<ExportTraceServiceRequest>>,
                 body: Bytes| async move {
                    let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let _ = tx.send(export);
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

async fn sim() -> SimHandle {
    Simulator::start(SimConfig {
        latency: Duration::from_millis(5),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn config(primary: &SimHandle, secondary: &SimHandle, collector: &str) -> String {
    format!(
        "[telemetry]\notlp_endpoint = \"{collector}\"\n\
         [providers.primary]\nkind = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"K\"\nbase_url = \"{}\"\nretries = 0\nmax_tokens = 100\n\
         [providers.secondary]\nkind = \"anthropic\"\nmodel = \"claude-y\"\napi_key_env = \"K\"\nbase_url = \"{}\"\n\
         [chains.assistant]\nproviders = [\"primary\", \"secondary\"]\n",
        primary.openai_base_url(),
        secondary.base_url(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span's attributes as text.
fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name.starts_with(name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_exported_as_one_trace_continuing_the_callers() {
    let (primary, secondary) = (sim().await, sim().await);
    primary.fail_next(1, Fault::Status(500));
    let (endpoint, mut exports) = collector().await;
    let mut gw = binary::Gateway::start(
        &config(&primary, &secondary, &endpoint),
        binary::Launch {
            env: &[("K", "sk-test")],
            ..Default::default()
        },
    );
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", &caller)
        .json(&serde_json::json!({
            "model": "assistant",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answered_with = r.headers()["traceparent"].to_str().unwrap().to_owned();
    // The exporter batches: what it still holds is sent on shutdown, before the exit.
    assert!(gw.stop().success(), "{}", gw.logs());

    let mut spans = Vec::new();
    while let Ok(export) = exports.try_recv() {
        for rs in export.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value);
            assert_eq!(service, Some(Value::StringValue("backstop".into())));
            spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == CALLER_TRACE),
        "every span continues the caller's trace: {spans:#?}"
    );

    let http = named(&spans, "POST /v1/chat/completions");
    assert_eq!(http.len(), 1, "{spans:#?}");
    let http = http[0];
    assert_eq!(hex(&http.parent_span_id), CALLER_SPAN);
    assert_eq!(http.kind, SpanKind::Server as i32);
    assert_eq!(attributes(http)["http.response.status_code"], "200");
    assert_eq!(
        answered_with,
        format!("00-{CALLER_TRACE}-{}-01", hex(&http.span_id)),
        "the answer names the gateway's span"
    );

    let request = named(&spans, "chat assistant");
    assert_eq!(request.len(), 1, "one request span: {spans:#?}");
    let request = request[0];
    assert_eq!(request.parent_span_id, http.span_id);
    let ra = attributes(request);
    assert_eq!(ra["gen_ai.operation.name"], "chat");
    assert_eq!(ra["gen_ai.request.model"], "assistant");
    assert_eq!(ra["backstop.provider_used"], "secondary");
    assert_eq!(ra["backstop.fell_back"], "true");
    assert_eq!(ra["backstop.attempts"], "2");
    assert_eq!(ra["gen_ai.request.temperature"], "0.5");

    let mut attempts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == request.span_id)
        .collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    let names: Vec<&str> = attempts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chat gpt-x", "chat claude-y"]);
    let (failed, won) = (attributes(attempts[0]), attributes(attempts[1]));
    for (a, span) in [(&failed, attempts[0]), (&won, attempts[1])] {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(a["gen_ai.operation.name"], "chat");
        assert_eq!(a["server.address"], "127.0.0.1");
        assert_eq!(a["backstop.breaker.state"], "closed");
    }
    assert_eq!(failed["gen_ai.provider.name"], "openai");
    assert_eq!(failed["gen_ai.request.model"], "gpt-x");
    assert_eq!(failed["error.type"], "server");
    // What each call sent: the request's temperature, the provider's own max_tokens.
    assert_eq!(failed["gen_ai.request.temperature"], "0.5");
    assert_eq!(failed["gen_ai.request.max_tokens"], "100");
    assert_eq!(failed["http.response.status_code"], "500");
    assert_eq!(failed["backstop.outcome"], "failed");
    assert_eq!(
        attempts[0].status.as_ref().map(|s| s.code),
        Some(2),
        "an error status"
    );
    assert_eq!(won["gen_ai.provider.name"], "anthropic");
    assert_eq!(won["gen_ai.request.model"], "claude-y");
    assert_eq!(won["backstop.attempt.role"], "fallback");
    assert_eq!(won["backstop.outcome"], "success");
    assert!(!won.contains_key("error.type"));
    for key in [
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.response.finish_reasons",
    ] {
        assert!(
            won.contains_key(key),
            "{key} on the answering attempt: {won:?}"
        );
    }

    // Each provider was told its attempt span is the parent of its work.
    for (sim, attempt) in [(&primary, attempts[0]), (&secondary, attempts[1])] {
        let sent = sim.requests()[0].header("traceparent").map(str::to_owned);
        assert_eq!(
            sent,
            Some(format!("00-{CALLER_TRACE}-{}-01", hex(&attempt.span_id)))
        );
    }
}

#[tokio::test]
async fn without_an_exporter_the_callers_traceparent_is_passed_on_unchanged() {
    let gw = support::TestGateway::start_with(support::Spec {
        sim: SimConfig {
            record: true,
            ..SimConfig::default()
        },
        ..support::Spec::default()
    })
    .await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let send = |traceparent: &str| {
        gw.request(reqwest::Method::POST, "/v1/chat/completions")
            .header("traceparent", traceparent)
            .json(&support::chat_body("default", "hi"))
            .send()
    };
    let r = send(&caller).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        support::header(&r, "traceparent"),
        None,
        "no span of ours to name"
    );
    let r = send("00-not-a-trace-01").await.unwrap();
    assert_eq!(r.status(), 200);
    let sent: Vec<Option<String>> = gw
        .sim("openai")
        .requests()
        .iter()
        .map(|q| q.header("traceparent").map(str::to_owned))
        .collect();
    assert_eq!(sent, [Some(caller), None], "an invalid one is dropped");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_http_span_lasts_until_its_last_byte() {
    // Eight chunks 40 ms apart: the stream's body outlives its headers by about 300 ms.
    let sim = Simulator::start(SimConfig {
        chunks: 8,
        chunk_delay: Duration::from_millis(40),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (endpoint, mut exports) = collector().await;
    let mut gw = binary::Gateway::start(
        &format!(
            "[telemetry]\notlp_endpoint = \"{endpoint}\"\n\
             [providers.only]\nkind = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"K\"\nbase_url = \"{}\"\n\
             [chains.assistant]\nproviders = [\"only\"]\n",
            sim.openai_base_url()
        ),
        binary::Launch {
            env: &[("K", "sk-test")],
            ..Default::default()
        },
    );
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "assistant",
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert!(gw.stop().success(), "{}", gw.logs());

    let mut spans = Vec::new();
    while let Ok(export) = exports.try_recv() {
        for rs in export.resource_spans {
            spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let http = named(&spans, "POST /v1/chat/completions");
    let request = named(&spans, "chat assistant");
    assert_eq!((http.len(), request.len()), (1, 1), "{spans:#?}");
    let (http, request) = (http[0], request[0]);
    assert_eq!(request.parent_span_id, http.span_id);
    // The attempt carried the whole stream; the request and HTTP spans that contain it end
    // no earlier than it does (not at the first byte).
    let attempt = named(&spans, "chat gpt-x");
    assert_eq!(attempt.len(), 1, "{spans:#?}");
    let attempt_end = attempt[0].end_time_unix_nano;
    for (outer, end) in [
        ("request", request.end_time_unix_nano),
        ("HTTP", http.end_time_unix_nano),
    ] {
        assert!(
            end >= attempt_end,
            "the {outer} span ended {} ms before the stream it carried",
            (attempt_end - end) / 1_000_000
        );
    }
    assert!(http.end_time_unix_nano >= request.end_time_unix_nano);
}
