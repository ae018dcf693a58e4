//! API keys never reach logs (any target, TRACE level, reqwest and hyper included), error
//! messages or `Debug` output — while they do reach the provider's auth header.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[allow(unused_macros)]
mod provider_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiCompatible, OpenAiLlm};
use backstop::{ChatRequest, Provider, ProviderError};
use backstop_sim::Fault;
use provider_support::*;

const SECRET: &str = "sk-SECRET-do-not-log-4f9c2e7a1b";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(e: &ProviderError) {
    for rendered in [e.to_string(), format!("{e:?}"), e.message.clone()] {
        assert!(!rendered.contains(SECRET), "secret in error: {rendered}");
    }
}

#[tokio::test]
async fn keys_stay_out_of_logs_errors_and_debug() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // Global, TRACE, every target; also bridges the `log` crate (reqwest logs through it).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("subscriber installs");

    let sim = sim().await;
    let mut errors = Vec::new();
    for wire in [Wire::OpenAi, Wire::Anthropic, Wire::Groq, Wire::Compatible] {
        let p = wire.provider_at(&wire.base_for(&sim), SECRET);
        p.complete(&req()).await.expect("a successful call");
        for fault in [
            Fault::Status(401),
            Fault::Status(500),
            Fault::RateLimited {
                retry_after_secs: Some(1),
                retry_after_ms: None,
                retry_after_http_date: false,
            },
            Fault::MalformedBody,
            Fault::Disconnect { after_chunks: 0 },
        ] {
            sim.fail_next(1, fault);
            errors.push(p.complete(&req()).await.expect_err("fault"));
        }
        sim.fail_next(
            1,
            Fault::InBandError {
                after_chunks: 1,
                status: 500,
            },
        );
        let got = collect(p.stream(&req()).await.expect("stream")).await;
        errors.push(got.error.expect("in-band error"));
        let refused = wire.provider_at(&refused_base(wire), SECRET);
        errors.push(refused.complete(&req()).await.expect_err("refused"));
    }
    let missing = OpenAiCompatible::new(sim.openai_base_url(), "m")
        .api_key_env("BACKSTOP_SECRETS_TEST_UNSET");
    errors.push(
        missing
            .complete(&ChatRequest::user("x"))
            .await
            .expect_err("no key"),
    );

    assert_eq!(errors.len(), 4 * 7 + 1);
    let debugs = [
        format!("{:?}", OpenAiLlm::new("m").api_key(SECRET)),
        format!("{:?}", AnthropicLlm::new("m").api_key(SECRET)),
        format!("{:?}", GroqLlm::new("m").api_key(SECRET)),
        format!(
            "{:?}",
            OpenAiCompatible::new("http://127.0.0.1:1", "m").api_key(SECRET)
        ),
    ];
    for d in debugs {
        assert!(!d.contains(SECRET) && d.contains("REDACTED"), "{d}");
    }
    errors.iter().for_each(assert_clean);

    // The key did go where it belongs.
    let recorded = sim.requests();
    assert!(
        recorded
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {SECRET}")[..]))
    );
    assert!(
        recorded
            .iter()
            .any(|r| r.header("x-api-key") == Some(SECRET))
    );

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).expect("utf-8 logs");
    // The capture works and reaches the HTTP stack's own TRACE output.
    assert!(logs.lines().count() > 20, "too little captured:\n{logs}");
    assert!(logs.contains("hyper") || logs.contains("reqwest"), "{logs}");
    for line in logs.lines() {
        assert!(!line.contains(SECRET), "secret in log line: {line}");
    }
}
