//! Request identity through a chain over real loopback HTTP: the caller's request id goes to
//! every provider the chain calls, and each attempt keeps the provider's own id for its call —
//! failed attempts, the answering one, and the providers that continued a broken stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use backstop::providers::{AnthropicLlm, OpenAiLlm};
use backstop::{AttemptOutcome, ChatRequest, CircuitBreaker, FallbackChain};
use backstop_sim::{Fault, SimConfig, SimHandle, Simulator};
use futures_util::StreamExt;

/// An OpenAI simulator first, an Anthropic one second.
async fn rig(resume: bool) -> (SimHandle, SimHandle, FallbackChain) {
    let openai = Simulator::start(SimConfig::default()).await.unwrap();
    let anthropic = Simulator::start(SimConfig::default()).await.unwrap();
    let chain = FallbackChain::builder()
        .provider(
            OpenAiLlm::new("gpt-4o-mini")
                .base_url(openai.openai_base_url())
                .api_key("k"),
            CircuitBreaker::new("openai"),
        )
        .provider(
            AnthropicLlm::new("claude-3-5-haiku-latest")
                .base_url(anthropic.base_url())
                .api_key("k"),
            CircuitBreaker::new("anthropic"),
        )
        .stream_resume(resume)
        .build()
        .unwrap();
    (openai, anthropic, chain)
}

#[tokio::test]
async fn a_failover_keeps_every_providers_id_and_sends_ours_to_each() {
    let (openai, anthropic, chain) = rig(false).await;
    openai.fail_next(1, Fault::Status(503));
    let request = ChatRequest::user("hi").request_id("client-req-7");
    let result = chain
        .generate_request(&request)
        .await
        .expect("anthropic answers");
    assert_eq!(result.provider_used, "anthropic");
    let (o, a) = (&openai.requests()[0], &anthropic.requests()[0]);
    assert_eq!(o.header("x-request-id"), Some("client-req-7"));
    assert_eq!(a.header("x-request-id"), Some("client-req-7"));
    let ids: Vec<_> = result
        .attempts
        .iter()
        .map(|a| {
            (
                a.provider.as_str(),
                a.outcome,
                a.upstream_request_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("openai", AttemptOutcome::Failed, Some(&*o.request_id)),
            ("anthropic", AttemptOutcome::Success, Some(&*a.request_id)),
        ]
    );
    let failed = result.attempts[0].error.as_ref().expect("the 503");
    assert_eq!(failed.upstream_request_id.as_deref(), Some(&*o.request_id));
    // A chain nested as a provider hands the answering call's id on.
    assert_eq!(
        result.into_completion().upstream_request_id.as_deref(),
        Some(&*a.request_id)
    );
}

#[tokio::test]
async fn a_resumed_stream_records_the_continuing_providers_id() {
    let (openai, anthropic, chain) = rig(true).await;
    openai.fail_next(1, Fault::Disconnect { after_chunks: 3 });
    let request = ChatRequest::user("tell me").request_id("client-req-8");
    let mut stream = chain.stream_request(&request).await.expect("commits");
    while let Some(item) = stream.next().await {
        item.expect("the resume hides the break");
    }
    assert_eq!(stream.resumes(), 1);
    let (o, a) = (&openai.requests()[0], &anthropic.requests()[0]);
    assert_eq!(a.header("x-request-id"), Some("client-req-8"));
    let ids: Vec<_> = stream
        .attempts()
        .iter()
        .map(|a| (a.provider.as_str(), a.upstream_request_id.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [
            ("openai", Some(&*o.request_id)),
            ("anthropic", Some(&*a.request_id))
        ]
    );
}
