//! The seed tutorial's "Complete working example": a three-tier fallback chain
//! (OpenAI gpt-4o-mini → Anthropic claude-haiku-3-5 → Groq llama-3.1-8b-instant), each
//! provider behind its own circuit breaker, one retry per provider, three prompts.
//!
//! # Against the real APIs
//!
//! ```text
//! export OPENAI_API_KEY=sk-...
//! export ANTHROPIC_API_KEY=sk-ant-...
//! export GROQ_API_KEY=gsk_...
//! cargo run -p backstop --example fallback_chain
//! ```
//!
//! A missing key makes that provider fail with an `Auth` error without any network call; with
//! no keys at all every prompt prints the "All providers failed" line.
//!
//! # Against the simulator (no keys, no internet)
//!
//! Start one simulator (it speaks all three wire formats), then point every provider at it.
//! The providers read `*_BASE_URL` and `*_API_KEY` once, when they are constructed.
//!
//! ```text
//! cargo run -p backstop-sim -- --listen 127.0.0.1:18101 &
//! OPENAI_BASE_URL=http://127.0.0.1:18101/v1 \
//! ANTHROPIC_BASE_URL=http://127.0.0.1:18101 \
//! GROQ_BASE_URL=http://127.0.0.1:18101 \
//! OPENAI_API_KEY=x ANTHROPIC_API_KEY=x GROQ_API_KEY=x \
//!     cargo run -p backstop --example fallback_chain
//! ```
//!
//! To watch the fallback happen, start a second, failing simulator
//! (`cargo run -p backstop-sim -- --listen 127.0.0.1:18102 --fail 503=1.0 &`) and set
//! `OPENAI_BASE_URL=http://127.0.0.1:18102/v1`: the first prompt fails twice on OpenAI (one try,
//! one retry) and Anthropic answers; the second opens OpenAI's breaker (3 failures); the third
//! skips OpenAI without calling it.

use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiLlm};
use backstop::{CircuitBreaker, FallbackChain, LlmConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = LlmConfig::new(0.2, 512);

    let chain = FallbackChain::builder()
        .provider(
            OpenAiLlm::new("gpt-4o-mini").config(config.clone()),
            CircuitBreaker::new("openai")
                .failure_threshold(3)
                .recovery_timeout(Duration::from_secs(30)),
        )
        .provider(
            AnthropicLlm::new("claude-haiku-3-5").config(config.clone()),
            CircuitBreaker::new("anthropic")
                .failure_threshold(3)
                .recovery_timeout(Duration::from_secs(30)),
        )
        .provider(
            GroqLlm::new("llama-3.1-8b-instant").config(config),
            CircuitBreaker::new("groq")
                .failure_threshold(5)
                .recovery_timeout(Duration::from_secs(15)),
        )
        .retries_per_provider(1)
        .build()?;

    let prompts = [
        "Explain the difference between authentication and authorisation.",
        "What is a deadlock and how do you prevent one?",
        "Summarise the CAP theorem in three bullet points.",
    ];

    for prompt in prompts {
        println!("\nPrompt: '{prompt}'");
        match chain.generate(prompt).await {
            Ok(result) => {
                println!("Provider: {}", result.provider_used);
                let answer: String = result.text.chars().take(120).collect();
                println!("Answer: {answer}...");
            }
            Err(error) => {
                println!("All providers failed — check your API keys and network.");
                // Each provider's own error (missing key, HTTP status, ...), for diagnosis.
                eprintln!("{error}");
            }
        }
    }
    Ok(())
}
