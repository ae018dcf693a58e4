//! The seed tutorial's Step 5, end to end on scripted providers: as breakers open, the chain
//! walks down openai-gpt4o → anthropic-haiku → groq-llama without calling the open ones.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use backstop::testing::ScriptedProvider;
use backstop::{AttemptOutcome, BreakerState, CircuitBreaker, fallback_chain};

#[tokio::test(start_paused = true)]
async fn seed_step5_story_falls_down_the_chain_as_breakers_open() {
    let openai = ScriptedProvider::new("gpt-4o");
    let anthropic = ScriptedProvider::new("claude-haiku");
    let groq = ScriptedProvider::new("llama");
    let openai_breaker = CircuitBreaker::new("openai-gpt4o").failure_threshold(3);
    let anthropic_breaker = CircuitBreaker::new("anthropic-haiku").failure_threshold(3);
    let groq_breaker = CircuitBreaker::new("groq-llama").failure_threshold(5);
    let chain = fallback_chain(
        [
            (openai.clone(), openai_breaker.clone()),
            (anthropic.clone(), anthropic_breaker.clone()),
            (groq.clone(), groq_breaker.clone()),
        ],
        1,
    )
    .unwrap();

    // Normal operation.
    let r = chain
        .generate("What is the capital of France?")
        .await
        .unwrap();
    assert_eq!(r.provider_used, "openai-gpt4o");
    assert_eq!(r.text, "answer from gpt-4o");
    assert_eq!(openai.calls(), 1);

    // Simulate OpenAI going down.
    for _ in 0..3 {
        openai_breaker.record_failure();
    }
    assert_eq!(openai_breaker.state(), BreakerState::Open);
    let r = chain
        .generate("What is the capital of France?")
        .await
        .unwrap();
    assert_eq!(r.provider_used, "anthropic-haiku");
    assert_eq!(openai.calls(), 1, "the open breaker made no call");
    assert_eq!(r.attempts[0].outcome, AttemptOutcome::Skipped);

    // And Anthropic too.
    for _ in 0..3 {
        anthropic_breaker.record_failure();
    }
    let r = chain
        .generate("What is the capital of France?")
        .await
        .unwrap();
    assert_eq!(r.provider_used, "groq-llama");
    assert_eq!(r.text, "answer from llama");
    assert_eq!(openai.calls(), 1);
    assert_eq!(anthropic.calls(), 1);
    assert_eq!(groq.calls(), 1);
    let outcomes: Vec<_> = r.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Skipped,
            AttemptOutcome::Skipped,
            AttemptOutcome::Success
        ]
    );
    assert_eq!(groq_breaker.state(), BreakerState::Closed);

    // Once OpenAI's recovery timeout passes, its probe succeeds and it answers again.
    tokio::time::advance(openai_breaker.config().recovery_timeout).await;
    let r = chain
        .generate("What is the capital of France?")
        .await
        .unwrap();
    assert_eq!(r.provider_used, "openai-gpt4o");
    assert_eq!(openai_breaker.state(), BreakerState::Closed);
}
