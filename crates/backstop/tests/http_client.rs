//! Bringing your own HTTP client: a `reqwest::Client` or a `reqwest_middleware` client given
//! to a provider is the one that sends (the simulator sees what it adds), and
//! `connect_timeout` cannot be silently lost on it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiCompatible, OpenAiLlm};
use backstop::{ChatRequest, ErrorKind, Provider};
use backstop_sim::{SimConfig, SimHandle, Simulator};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest_middleware::{ClientBuilder, Middleware, Next};

const KEY: &str = "sk-test-loopback-key";

async fn sim() -> SimHandle {
    Simulator::start(SimConfig {
        record: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn tenant_client() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("acme"));
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest::user("What is a circuit breaker?")
}

#[tokio::test]
async fn every_provider_sends_with_the_callers_reqwest_client() {
    let sim = sim().await;
    let providers: Vec<Box<dyn Provider>> = vec![
        Box::new(
            OpenAiLlm::new("gpt-4o-mini")
                .base_url(sim.openai_base_url())
                .api_key(KEY)
                .http_client(tenant_client()),
        ),
        Box::new(
            AnthropicLlm::new("claude-3-5-haiku-latest")
                .base_url(sim.base_url())
                .api_key(KEY)
                .http_client(tenant_client()),
        ),
        Box::new(
            GroqLlm::new("llama-3.1-8b-instant")
                .base_url(sim.base_url())
                .api_key(KEY)
                .http_client(tenant_client()),
        ),
        Box::new(
            OpenAiCompatible::new(sim.openai_base_url(), "local-model")
                .no_api_key()
                .http_client(tenant_client()),
        ),
    ];
    for p in &providers {
        p.complete(&request()).await.expect("complete");
    }
    let recorded = sim.requests();
    assert_eq!(recorded.len(), providers.len());
    for r in &recorded {
        assert_eq!(r.header("x-tenant"), Some("acme"), "{}", r.path);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // The provider's own auth header still travels beside the client's headers.
    assert_eq!(
        recorded[0].header("authorization"),
        Some("Bearer sk-test-loopback-key")
    );
    assert_eq!(recorded[1].header("x-api-key"), Some(KEY));
}

#[tokio::test]
async fn without_a_client_the_shared_pool_sends_no_extra_headers() {
    let sim = sim().await;
    let p = OpenAiLlm::new("gpt-4o-mini")
        .base_url(sim.openai_base_url())
        .api_key(KEY);
    p.complete(&request()).await.expect("complete");
    assert_eq!(sim.requests()[0].header("x-tenant"), None);
}

/// A middleware that stamps each request with a sequence number and counts them.
struct Stamp {
    seen: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Middleware for Stamp {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        req.headers_mut()
            .insert("x-middleware-seq", HeaderValue::from(n));
        next.run(req, extensions).await
    }
}

#[tokio::test]
async fn a_client_with_middleware_runs_it_on_every_call_and_stream() {
    let sim = sim().await;
    let seen = Arc::new(AtomicUsize::new(0));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(Stamp {
            seen: Arc::clone(&seen),
        })
        .build();
    let p = AnthropicLlm::new("claude-3-5-haiku-latest")
        .base_url(sim.base_url())
        .api_key(KEY)
        .http_client(client);
    p.complete(&request()).await.expect("complete");
    let mut stream = p.stream(&request()).await.expect("stream");
    while let Some(chunk) = stream.next().await {
        chunk.expect("chunk");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let recorded = sim.requests();
    assert_eq!(recorded[0].header("x-middleware-seq"), Some("1"));
    assert_eq!(recorded[1].header("x-middleware-seq"), Some("2"));
    assert!(recorded[1].stream);
}

/// A middleware that refuses to send.
struct Refuse;

#[derive(Debug, thiserror::Error)]
#[error("policy forbids this host")]
struct Forbidden;

#[async_trait::async_trait]
impl Middleware for Refuse {
    async fn handle(
        &self,
        _: reqwest::Request,
        _: &mut http::Extensions,
        _: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Err(reqwest_middleware::Error::middleware(Forbidden))
    }
}

#[tokio::test]
async fn a_middleware_failure_is_a_connect_error_that_names_it() {
    let sim = sim().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(Refuse)
        .build();
    let p = OpenAiLlm::new("gpt-4o-mini")
        .base_url(sim.openai_base_url())
        .api_key(KEY)
        .http_client(client);
    let e = p.complete(&request()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect);
    assert!(
        e.message.contains("policy forbids this host"),
        "{}",
        e.message
    );
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn connect_timeout_with_a_callers_client_is_refused_by_name() {
    let sim = sim().await;
    for p in [
        OpenAiLlm::new("gpt-4o-mini")
            .base_url(sim.openai_base_url())
            .api_key(KEY)
            .http_client(tenant_client())
            .connect_timeout(Duration::from_secs(1)),
        OpenAiLlm::new("gpt-4o-mini")
            .base_url(sim.openai_base_url())
            .api_key(KEY)
            .connect_timeout(Duration::from_secs(1))
            .http_client(tenant_client()),
    ] {
        let e = p.complete(&request()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert!(
            e.message.contains("connect_timeout") && e.message.contains("http_client"),
            "{}",
            e.message
        );
    }
    assert_eq!(sim.request_count(), 0, "refused without a network call");

    // Alone, connect_timeout still configures the shared client.
    let p = OpenAiLlm::new("gpt-4o-mini")
        .base_url(sim.openai_base_url())
        .api_key(KEY)
        .connect_timeout(Duration::from_secs(1));
    p.complete(&request()).await.expect("complete");
}

#[test]
fn debug_says_whose_client_without_leaking_the_key() {
    let p = OpenAiLlm::new("gpt-4o-mini")
        .api_key("sk-very-secret")
        .http_client(tenant_client());
    let debug = format!("{p:?}");
    assert!(debug.contains(r#"http_client: "caller's""#), "{debug}");
    assert!(!debug.contains("very-secret"), "{debug}");
    let shared = format!("{:?}", OpenAiLlm::new("gpt-4o-mini").no_api_key());
    assert!(shared.contains(r#"http_client: "shared pool""#), "{shared}");
}

/// A connection pooled by one runtime is driven by that runtime's tasks: reused from another
/// runtime while the first is idle, the request would hang (a known reqwest hazard for clients
/// shared through a static). Providers without a client of their own therefore share one pool
/// per runtime, and a provider moved between runtimes keeps working.
#[test]
fn a_provider_used_from_two_runtimes_answers_in_both() {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = server.block_on(sim());
    let p = OpenAiLlm::new("gpt-4o-mini")
        .base_url(sim.openai_base_url())
        .api_key(KEY);
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first
        .block_on(p.complete(&request()))
        .expect("first runtime");
    // `first` stays alive but idle, holding the pooled connection's task.
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), p.complete(&request())).await
        })
        .expect("the second runtime's call did not hang")
        .expect("second runtime");
    assert_eq!(sim.request_count(), 2);
    drop(first);
}
