//! Request identity over HTTP: every answer carries `x-request-id` — the caller's when it is a
//! sane one, else a generated UUID — errors from the gateway itself and streams included; the
//! id reaches every provider the chain calls, and the log line names it with each provider's
//! own id for its call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;
mod support;

use std::time::Duration;

use backstop_sim::{Fault, SimConfig, SimHandle, Simulator};
use reqwest::Method;
use support::{Spec, TestGateway, chat_body, header, stream_body};

fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4)
}

/// The id an answer carries, asserting there is exactly one.
fn id_of(r: &reqwest::Response) -> String {
    let all: Vec<_> = r.headers().get_all("x-request-id").iter().collect();
    assert_eq!(all.len(), 1, "one x-request-id on {}: {all:?}", r.status());
    all[0].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_answer_echoes_the_callers_id_gateway_errors_and_streams_included() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        max_body_bytes: Some(4096),
        ..Spec::default()
    })
    .await;
    let key = support::CLIENT_KEY;
    let c = &gw.client;
    let chat = gw.at("/v1/chat/completions");
    let cases: Vec<(u16, reqwest::RequestBuilder)> = vec![
        (
            200,
            c.post(&chat)
                .bearer_auth(key)
                .json(&chat_body("default", "hi")),
        ),
        (
            200,
            c.post(&chat)
                .bearer_auth(key)
                .json(&stream_body("default", "hi")),
        ),
        (401, c.post(&chat).json(&chat_body("default", "hi"))),
        (
            415,
            c.post(&chat)
                .bearer_auth(key)
                .header("content-type", "text/plain")
                .body("hi"),
        ),
        (
            400,
            c.post(&chat)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body("{not json"),
        ),
        (
            413,
            c.post(&chat)
                .bearer_auth(key)
                .json(&chat_body("default", &"x".repeat(5000))),
        ),
        (
            404,
            c.post(&chat)
                .bearer_auth(key)
                .json(&chat_body("nope", "hi")),
        ),
        (404, c.get(gw.at("/v1/nothing-here")).bearer_auth(key)),
        (405, c.delete(&chat).bearer_auth(key)),
        (
            403,
            c.post(&chat)
                .bearer_auth(key)
                .header("origin", "https://evil.example")
                .json(&chat_body("default", "hi")),
        ),
        (
            403,
            c.post(gw.at("/v1/breakers/openai/trip")).bearer_auth(key),
        ),
        (200, c.get(gw.at("/healthz"))),
        (200, c.get(gw.at("/metrics")).bearer_auth(key)),
    ];
    for (i, (status, request)) in cases.into_iter().enumerate() {
        let sent = format!("caller-{i}");
        let r = request.header("x-request-id", &sent).send().await.unwrap();
        assert_eq!(r.status(), status, "case {i}");
        assert_eq!(id_of(&r), sent, "case {i} ({status})");
        r.bytes().await.unwrap();
    }
    // Every provider failing: the 502 the chain produces carries it too.
    for sim in &gw.sims {
        sim.fail_next(1, Fault::Status(500));
    }
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("x-request-id", "caller-502")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(id_of(&r), "caller-502");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_unsafe_id_is_replaced_by_a_fresh_uuid() {
    let gw = TestGateway::start_with(Spec {
        sim: SimConfig::default(),
        ..Spec::default()
    })
    .await;
    let too_long = "a".repeat(201);
    let mut seen = Vec::new();
    for sent in [None, Some(""), Some("has space"), Some(too_long.as_str())] {
        let mut b = gw.request(Method::POST, "/v1/chat/completions");
        if let Some(v) = sent {
            b = b.header("x-request-id", v);
        }
        let r = b.json(&chat_body("default", "hi")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let id = id_of(&r);
        assert!(is_uuid_v4(&id), "{sent:?} answered with {id:?}");
        seen.push(id);
    }
    // The id sent upstream is the one the caller got back.
    let upstream: Vec<String> = gw
        .sim("openai")
        .requests()
        .iter()
        .map(|r| r.header("x-request-id").unwrap().to_owned())
        .collect();
    assert_eq!(upstream, seen);
    seen.dedup();
    assert_eq!(seen.len(), 4, "each request gets its own id");
    // A 404 from the router gets a generated one as well.
    let r = gw.client.get(gw.at("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(is_uuid_v4(&id_of(&r)));
    gw.shutdown().await;
}

#[tokio::test]
async fn connections_shed_at_the_limit_are_answered_with_an_id() {
    let gw = TestGateway::start_with(Spec {
        server_extra: "max_connections = 1\n".into(),
        ..Spec::default()
    })
    .await;
    // One idle connection takes the only slot.
    let _held = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut shed = None;
    // The held connection is counted once the gateway accepts it: retry until the 503.
    for _ in 0..200 {
        let r = support::client()
            .get(gw.at("/healthz"))
            .header("x-request-id", "shed-1")
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            shed = Some(r);
            break;
        }
        tokio::task::yield_now().await;
    }
    let r = shed.expect("a connection over the limit is shed");
    assert_eq!(id_of(&r), "shed-1");
    gw.shutdown().await;
}

/// The gateway binary over an OpenAI and an Anthropic simulator, chain `default` trying them
/// in that order with `chain_extra` added to it.
async fn binary_over_two(
    sim: SimConfig,
    chain_extra: &str,
) -> (binary::Gateway, SimHandle, SimHandle) {
    let openai = Simulator::start(sim.clone()).await.unwrap();
    let anthropic = Simulator::start(sim).await.unwrap();
    let config = format!(
        "[providers.openai]\nkind = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"K\"\nbase_url = \"{}\"\nretries = 0\n\
         [providers.anthropic]\nkind = \"anthropic\"\nmodel = \"claude-x\"\napi_key_env = \"K\"\nbase_url = \"{}\"\nretries = 0\n\
         [chains.default]\nproviders = [\"openai\", \"anthropic\"]\n{chain_extra}",
        openai.openai_base_url(),
        anthropic.base_url(),
    );
    let gw = binary::Gateway::start(
        &config,
        binary::Launch {
            env: &[("K", "sk-test")],
            ..Default::default()
        },
    );
    (gw, openai, anthropic)
}

/// Stops the two simulators of [`binary_over_two`], within 5 s.
async fn stop_both(openai: SimHandle, anthropic: SimHandle) {
    tokio::time::timeout(Duration::from_secs(5), async {
        openai.shutdown().await;
        anthropic.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_failover_sends_our_id_to_each_provider_and_logs_their_ids() {
    let (mut gw, openai, anthropic) = binary_over_two(SimConfig::default(), "").await;
    let client = support::client();
    for (id, stream) in [("plain-1", false), ("stream-1", true)] {
        openai.fail_next(1, Fault::Status(503));
        let body = if stream {
            stream_body("default", "hi")
        } else {
            chat_body("default", "hi")
        };
        let r = client
            .post(gw.url("/v1/chat/completions"))
            .header("x-request-id", id)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-backstop-provider"), Some("anthropic"));
        assert_eq!(id_of(&r), id);
        r.bytes().await.unwrap();
    }
    assert!(gw.stop().success());
    let logs = gw.logs();
    for (n, id) in ["plain-1", "stream-1"].into_iter().enumerate() {
        let (o, a) = (&openai.requests()[n], &anthropic.requests()[n]);
        assert_eq!(o.header("x-request-id"), Some(id));
        assert_eq!(a.header("x-request-id"), Some(id));
        let line = logs
            .lines()
            .find(|l| l.contains(&format!("request_id=\"{id}\"")))
            .unwrap_or_else(|| panic!("no log line for {id}:\n{logs}"));
        let ids = format!(
            "upstream_ids=\"openai:{},anthropic:{}\"",
            o.request_id, a.request_id
        );
        assert!(line.contains(&ids), "{ids} missing from {line}");
    }
    stop_both(openai, anthropic).await;
}

/// A stream broken after it started and finished by the next provider: its log line counts
/// the resume's attempt, names who continued it, and carries both providers' ids.
#[tokio::test]
async fn a_resumed_stream_logs_every_attempt_and_who_continued_it() {
    let sim = SimConfig {
        chunks: 8,
        ..SimConfig::default()
    };
    let (mut gw, openai, anthropic) = binary_over_two(sim, "stream_resume = true\n").await;
    openai.fail_next(1, Fault::Disconnect { after_chunks: 3 });
    let r = support::client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-request-id", "resumed-1")
        .json(&stream_body("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-backstop-provider"), Some("openai"));
    let body = String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
    assert!(body.contains(": backstop resumed on anthropic"), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert!(gw.stop().success());
    let logs = gw.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("request_id=\"resumed-1\""))
        .unwrap_or_else(|| panic!("no log line:\n{logs}"));
    let (o, a) = (&openai.requests()[0], &anthropic.requests()[0]);
    for want in [
        "attempts=2".to_owned(),
        "resumed=\"anthropic@".to_owned(),
        format!(
            "upstream_ids=\"openai:{},anthropic:{}\"",
            o.request_id, a.request_id
        ),
    ] {
        assert!(line.contains(&want), "{want} missing from {line}");
    }
    stop_both(openai, anthropic).await;
}
