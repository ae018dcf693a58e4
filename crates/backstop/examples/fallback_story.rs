//! The seed tutorial's Step 5 story on scripted in-memory providers (no keys, no network):
//! normal operation → the primary answers; primary's breaker tripped → Anthropic answers;
//! both tripped → Groq answers.
//!
//! Run: `cargo run -p backstop --example fallback_story --features testing`

use backstop::testing::{ScriptedProvider, Step};
use backstop::{AllProvidersFailed, CircuitBreaker, FallbackChain};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let answer = |who: &str| {
        Step::reply(format!(
            "({who}) Idempotency means that making the same request several times has the same effect as making it once, so clients can retry safely."
        ))
    };
    let openai_breaker = CircuitBreaker::new("openai-gpt4o").failure_threshold(3);
    let anthropic_breaker = CircuitBreaker::new("anthropic-haiku").failure_threshold(3);
    let groq_breaker = CircuitBreaker::new("groq-llama").failure_threshold(5);

    let chain = FallbackChain::builder()
        .provider(
            ScriptedProvider::new("openai").script([answer("gpt-4o")]),
            openai_breaker.clone(),
        )
        .provider(
            ScriptedProvider::new("anthropic").script([answer("claude-haiku")]),
            anthropic_breaker.clone(),
        )
        .provider(
            ScriptedProvider::new("groq").script([answer("llama-3.1-8b")]),
            groq_breaker.clone(),
        )
        .retries_per_provider(1)
        .build()?;

    println!("=== Fallback Chain Demo ===\n");
    let prompt = "What is idempotency in REST APIs?";
    ask(&chain, prompt).await;

    for _ in 0..openai_breaker.config().failure_threshold().unwrap_or(1) {
        openai_breaker.record_failure();
    }
    println!(
        "(OpenAI breaker now {} — next call will fall through to Anthropic)\n",
        openai_breaker.state()
    );
    ask(&chain, prompt).await;

    for _ in 0..anthropic_breaker.config().failure_threshold().unwrap_or(1) {
        anthropic_breaker.record_failure();
    }
    println!(
        "(Anthropic breaker now {} — next call will fall through to Groq)\n",
        anthropic_breaker.state()
    );
    ask(&chain, prompt).await;
    Ok(())
}

async fn ask(chain: &FallbackChain, prompt: &str) {
    println!("Prompt: {prompt:?}");
    match chain.generate(prompt).await {
        Ok(result) => {
            if result.provider_used != "openai-gpt4o" {
                println!(
                    " [fallback] Primary unavailable — answered by {}",
                    result.provider_used
                );
            }
            println!("Provider: {}", result.provider_used);
            println!(
                "Answer: {}...\n",
                result.text.chars().take(100).collect::<String>()
            );
        }
        Err(AllProvidersFailed { errors, .. }) => {
            println!(" [fallback] All providers failed: {errors:?}");
        }
    }
}
