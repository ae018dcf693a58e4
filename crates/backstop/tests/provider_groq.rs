//! `GroqLlm` against `backstop-sim` over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[macro_use]
mod provider_support;

provider_suite!(Wire::Groq);

use backstop::providers::GroqLlm;
use backstop::{ChatRequest, LlmConfig};

#[tokio::test]
async fn content_filter_code_is_content_filtered() {
    let e = complete_err(Fault::ContentFilter).await;
    assert_eq!((e.kind, e.status), (ErrorKind::ContentFiltered, Some(400)));
}

#[tokio::test]
async fn posts_openai_wire_to_the_groq_path_with_bearer_key() {
    let sim = sim().await;
    let p = GroqLlm::new("llama-3.1-8b-instant")
        .base_url(sim.base_url())
        .api_key(KEY);
    let r = ChatRequest::user("hi").config(LlmConfig::new(0.2, 64));
    collect(backstop::Provider::stream(&p, &r).await.expect("stream")).await;
    let rec = &sim.requests()[0];
    assert_eq!(rec.path, "/openai/v1/chat/completions");
    assert_eq!(
        rec.header("authorization"),
        Some("Bearer sk-test-loopback-key")
    );
    assert_eq!(rec.body["max_tokens"], 64);
    assert_eq!(rec.body["stream_options"]["include_usage"], true);
}
