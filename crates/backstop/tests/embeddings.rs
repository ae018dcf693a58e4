//! Embeddings through a chain: the chat chain's breakers, holds, retries and deadlines, and
//! `OpenAiCompatible` against `backstop-sim`'s `/v1/embeddings` over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use backstop::providers::{AnthropicLlm, OpenAiCompatible, OpenAiLlm};
use backstop::testing::{ScriptedProvider, Step, scripted_vector};
use backstop::{
    AttemptOutcome, BreakerState, CircuitBreaker, EmbeddingRequest, ErrorKind, FallbackChain,
    Provider,
};
use backstop_sim::{Fault, SimConfig, Simulator, embedding_vector};

fn texts() -> EmbeddingRequest {
    EmbeddingRequest::new(["first text", "second text"])
}

#[tokio::test]
async fn embeddings_fall_back_like_chat() {
    let a = ScriptedProvider::new("a").script([Step::fail(ErrorKind::Server)]);
    let b = ScriptedProvider::new("b");
    let chain = FallbackChain::builder()
        .retries_per_provider(0)
        .provider(a.clone(), CircuitBreaker::new("a"))
        .provider(b.clone(), CircuitBreaker::new("b"))
        .build()
        .unwrap();
    let r = chain.embed(&texts()).await.unwrap();
    assert_eq!(r.provider_used, "b");
    assert!(r.fell_back());
    assert_eq!(
        r.embeddings.vectors,
        vec![
            scripted_vector("b", "first text", 4),
            scripted_vector("b", "second text", 4)
        ]
    );
    let outcomes: Vec<_> = r
        .attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a", AttemptOutcome::Failed),
            ("b", AttemptOutcome::Success)
        ]
    );
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test]
async fn a_provider_without_embeddings_is_skipped_without_a_call() {
    let chat_only = ScriptedProvider::new("chat").cannot(&["embeddings"]);
    let b = ScriptedProvider::new("b");
    let breaker = CircuitBreaker::new("chat").failure_threshold(1);
    let chain = FallbackChain::builder()
        .provider(chat_only.clone(), breaker.clone())
        .provider(b, CircuitBreaker::new("b"))
        .build()
        .unwrap();
    let r = chain.embed(&texts().dimensions(3)).await.unwrap();
    assert_eq!(r.provider_used, "b");
    assert_eq!(r.embeddings.vectors[0].len(), 3);
    assert_eq!(chat_only.calls(), 0);
    let skipped = &r.attempts[0];
    assert_eq!(skipped.outcome, AttemptOutcome::Skipped);
    assert_eq!(
        skipped.error.as_ref().map(|e| e.message.as_str()),
        Some("unsupported: embeddings")
    );
    // Neutral: the breaker of the provider that cannot embed stays closed.
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_chain_of_chat_only_providers_refuses_embeddings_by_name() {
    let chain = FallbackChain::builder()
        .provider(
            AnthropicLlm::new("claude").api_key("k"),
            CircuitBreaker::new("anthropic"),
        )
        .build()
        .unwrap();
    let e = chain.embed(&texts()).await.unwrap_err();
    assert!(e.to_string().contains("unsupported: embeddings"), "{e}");
    assert!(chain.check_embeddings(&texts()).is_err());
}

#[tokio::test]
async fn embedding_failures_open_the_breaker_and_later_calls_skip_it() {
    let a = ScriptedProvider::new("a").script([Step::fail(ErrorKind::Server)]);
    let b = ScriptedProvider::new("b");
    let breaker = CircuitBreaker::new("a").failure_threshold(2);
    let chain = FallbackChain::builder()
        .retries_per_provider(0)
        .provider(a.clone(), breaker.clone())
        .provider(b, CircuitBreaker::new("b"))
        .build()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(chain.embed(&texts()).await.unwrap().provider_used, "b");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let r = chain.embed(&texts()).await.unwrap();
    assert_eq!(r.attempts[0].outcome, AttemptOutcome::Skipped);
    assert_eq!(a.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_embedder_is_cut_at_the_attempt_timeout() {
    let a = ScriptedProvider::new("a").script([Step::hang()]);
    let b = ScriptedProvider::new("b");
    let chain = FallbackChain::builder()
        .retries_per_provider(0)
        .attempt_timeout(Duration::from_secs(2))
        .provider(a, CircuitBreaker::new("a"))
        .provider(b, CircuitBreaker::new("b"))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let r = chain.embed(&texts()).await.unwrap();
    assert_eq!(r.provider_used, "b");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(
        r.attempts[0].error.as_ref().unwrap().kind,
        ErrorKind::Timeout
    );
}

#[tokio::test]
async fn a_nested_chain_embeds_through_its_providers() {
    let inner = FallbackChain::builder()
        .provider(ScriptedProvider::new("inner"), CircuitBreaker::new("inner"))
        .name("inner-chain")
        .build()
        .unwrap();
    let outer = FallbackChain::builder()
        .provider(inner, CircuitBreaker::new("nested"))
        .build()
        .unwrap();
    let r = outer.embed(&texts()).await.unwrap();
    assert_eq!(r.provider_used, "nested");
    assert_eq!(
        r.embeddings.vectors[1],
        scripted_vector("inner", "second text", 4)
    );
}

#[tokio::test]
async fn openai_compatible_embeds_over_http_with_the_request_fields() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let p = OpenAiCompatible::new(sim.openai_base_url(), "text-embedding-3-small").api_key("sk-e");
    let r = p
        .embed(&texts().dimensions(5).user("user-7"))
        .await
        .unwrap();
    assert_eq!(
        r.vectors,
        vec![
            embedding_vector("openai", "first text", 5),
            embedding_vector("openai", "second text", 5)
        ]
    );
    assert_eq!(r.model, "text-embedding-3-small");
    assert_eq!(r.usage.map(|u| u.prompt_tokens), Some(4));
    let rec = &sim.requests()[0];
    assert_eq!(rec.path, "/v1/embeddings");
    assert_eq!(rec.header("authorization"), Some("Bearer sk-e"));
    assert_eq!(
        rec.body,
        serde_json::json!({"model":"text-embedding-3-small","input":["first text","second text"],
            "dimensions":5,"encoding_format":"float","user":"user-7"})
    );
}

#[tokio::test]
async fn embedding_errors_over_http_are_classified_like_chat() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let p = OpenAiLlm::new("text-embedding-3-small")
        .base_url(sim.openai_base_url())
        .api_key("sk-e");
    for (fault, kind) in [
        (Fault::Status(500), ErrorKind::Server),
        (Fault::Status(503), ErrorKind::Overloaded),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::MalformedBody, ErrorKind::Protocol),
    ] {
        sim.fail_next(1, fault.clone());
        let e = p.embed(&texts()).await.unwrap_err();
        assert_eq!(e.kind, kind, "{fault:?}: {e}");
    }
    sim.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(3),
            retry_after_ms: None,
            retry_after_http_date: false,
        },
    );
    let e = p.embed(&texts()).await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
}
