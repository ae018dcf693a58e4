//! The seed tutorial's complete working example, end to end over real loopback HTTP: the real
//! `OpenAiLlm`, `AnthropicLlm` and `GroqLlm` providers, each pointed at its own `backstop-sim`
//! instance, behind the seed's breakers (3/3/5 failures, 30/30/15 s recovery) with one retry
//! per provider. Real time, small durations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiLlm};
use backstop::{
    AttemptOutcome, BreakerState, ChatRequest, CircuitBreaker, FallbackChain, FallbackResult,
    LlmConfig, Provider,
};
use backstop_sim::{Fault, SimConfig, SimHandle, Simulator};
use futures_util::StreamExt;

const KEY: &str = "test-key";
const PROMPTS: [&str; 3] = [
    "Explain the difference between authentication and authorisation.",
    "What is a deadlock and how do you prevent one?",
    "Summarise the CAP theorem in three bullet points.",
];

/// Three simulators, the seed's chain over them, and handles on its breakers.
struct Rig {
    openai: SimHandle,
    anthropic: SimHandle,
    groq: SimHandle,
    chain: FallbackChain,
    openai_breaker: CircuitBreaker,
    anthropic_breaker: CircuitBreaker,
    groq_breaker: CircuitBreaker,
}

impl Rig {
    /// The seed's chain; `openai_recovery` replaces OpenAI's 30 s recovery timeout.
    async fn start(openai_recovery: Duration) -> Rig {
        let openai = Simulator::start(SimConfig::default()).await.unwrap();
        let anthropic = Simulator::start(SimConfig::default()).await.unwrap();
        let groq = Simulator::start(SimConfig::default()).await.unwrap();
        let config = LlmConfig::new(0.2, 512);
        let openai_breaker = CircuitBreaker::new("openai")
            .failure_threshold(3)
            .recovery_timeout(openai_recovery);
        let anthropic_breaker = CircuitBreaker::new("anthropic")
            .failure_threshold(3)
            .recovery_timeout(Duration::from_secs(30));
        let groq_breaker = CircuitBreaker::new("groq")
            .failure_threshold(5)
            .recovery_timeout(Duration::from_secs(15));
        let chain = FallbackChain::builder()
            .provider(
                OpenAiLlm::new("gpt-4o-mini")
                    .config(config.clone())
                    .base_url(openai.openai_base_url())
                    .api_key(KEY),
                openai_breaker.clone(),
            )
            .provider(
                anthropic_llm(&anthropic).config(config.clone()),
                anthropic_breaker.clone(),
            )
            .provider(
                GroqLlm::new("llama-3.1-8b-instant")
                    .config(config)
                    .base_url(groq.base_url())
                    .api_key(KEY),
                groq_breaker.clone(),
            )
            .retries_per_provider(1)
            .build()
            .unwrap();
        Rig {
            openai,
            anthropic,
            groq,
            chain,
            openai_breaker,
            anthropic_breaker,
            groq_breaker,
        }
    }

    /// Requests received by (openai, anthropic, groq).
    fn counts(&self) -> (u64, u64, u64) {
        (
            self.openai.request_count(),
            self.anthropic.request_count(),
            self.groq.request_count(),
        )
    }

    async fn generate(&self, prompt: &str) -> FallbackResult {
        match self.chain.generate(prompt).await {
            Ok(r) => r,
            Err(e) => panic!("chain failed: {e}"),
        }
    }

    /// Sends prompts until OpenAI's breaker is open; returns how many were sent.
    async fn trip_openai(&self) -> usize {
        for sent in 1..=10 {
            let r = self.generate(PROMPTS[sent % PROMPTS.len()]).await;
            assert_eq!(r.provider_used, "anthropic", "{:?}", r.attempts);
            if self.openai_breaker.state() == BreakerState::Open {
                return sent;
            }
        }
        panic!(
            "OpenAI breaker never opened after 10 failing requests (openai sim saw {})",
            self.openai.request_count()
        );
    }

    async fn shutdown(self) {
        self.openai.shutdown().await;
        self.anthropic.shutdown().await;
        self.groq.shutdown().await;
    }
}

fn anthropic_llm(sim: &SimHandle) -> AnthropicLlm {
    AnthropicLlm::new("claude-haiku-3-5")
        .base_url(sim.base_url())
        .api_key(KEY)
}

/// (provider, outcome) for every attempt, in order.
fn story(attempts: &[backstop::Attempt]) -> Vec<(&str, AttemptOutcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome))
        .collect()
}

/// How the simulator's reply starts: it names its wire format and echoes up to 60 chars.
fn expected_prefix(flavor: &str, prompt: &str) -> String {
    let echo: String = prompt.chars().take(60).collect();
    format!("Simulated answer from {flavor} to: {echo}.")
}

#[tokio::test]
async fn all_healthy_the_primary_openai_answers() {
    let rig = Rig::start(Duration::from_secs(30)).await;
    let r = rig.generate(PROMPTS[0]).await;

    assert_eq!(r.provider_used, "openai");
    assert!(!r.text.is_empty());
    assert!(
        r.text.starts_with(&expected_prefix("openai", PROMPTS[0])),
        "{}",
        r.text
    );
    assert_eq!(r.model, "gpt-4o-mini");
    assert_eq!(story(&r.attempts), [("openai", AttemptOutcome::Success)]);
    assert_eq!(rig.counts(), (1, 0, 0));

    // What reached the OpenAI simulator: the seed's model and config, our key.
    let sent = rig.openai.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(req.header("authorization"), Some("Bearer test-key"));
    assert_eq!(req.body["max_tokens"], 512);
    let temperature = req.body["temperature"].as_f64().unwrap();
    assert!((temperature - 0.2).abs() < 1e-6, "{temperature}");
    assert_eq!(req.body["messages"][0]["content"], PROMPTS[0]);
    assert!(!req.stream);
    assert_eq!(rig.openai_breaker.state(), BreakerState::Closed);
    rig.shutdown().await;
}

#[tokio::test]
async fn primary_failing_anthropic_answers_after_one_try_and_one_retry() {
    let rig = Rig::start(Duration::from_secs(30)).await;
    rig.openai.set_random(Fault::Status(503), 1.0);

    let r = rig.generate(PROMPTS[1]).await;

    assert_eq!(r.provider_used, "anthropic");
    assert!(
        r.text
            .starts_with(&expected_prefix("anthropic", PROMPTS[1])),
        "{}",
        r.text
    );
    assert_eq!(rig.openai.request_count(), 2, "1 try + 1 retry on OpenAI");
    assert_eq!(rig.counts(), (2, 1, 0));
    assert_eq!(
        story(&r.attempts),
        [
            ("openai", AttemptOutcome::Failed),
            ("openai", AttemptOutcome::Failed),
            ("anthropic", AttemptOutcome::Success),
        ]
    );
    let status = r.attempts[0].error.as_ref().and_then(|e| e.status);
    assert_eq!(status, Some(503));
    let sent = rig.anthropic.requests();
    assert_eq!(sent[0].path, "/v1/messages");
    assert_eq!(sent[0].header("x-api-key"), Some("test-key"));
    assert_eq!(sent[0].model.as_deref(), Some("claude-haiku-3-5"));
    // Two failures are below the threshold of 3.
    assert_eq!(rig.openai_breaker.state(), BreakerState::Closed);
    rig.shutdown().await;
}

#[tokio::test]
async fn open_openai_breaker_is_skipped_without_any_request() {
    let rig = Rig::start(Duration::from_secs(30)).await;
    rig.openai.set_random(Fault::Status(503), 1.0);

    let sent = rig.trip_openai().await;
    // Request 1: try + retry (2 failures); request 2: the third failure opens the breaker,
    // which ends OpenAI's turn without a retry.
    assert_eq!(sent, 2);
    assert_eq!(rig.openai.request_count(), 3, "exactly the threshold");
    assert_eq!(rig.openai_breaker.state(), BreakerState::Open);

    let before = rig.counts();
    const N: u64 = 5;
    for i in 0..N {
        let prompt = PROMPTS[usize::try_from(i).unwrap() % PROMPTS.len()];
        let r = rig.generate(prompt).await;
        assert_eq!(r.provider_used, "anthropic");
        assert!(r.text.starts_with(&expected_prefix("anthropic", prompt)));
        assert_eq!(
            story(&r.attempts),
            [
                ("openai", AttemptOutcome::Skipped),
                ("anthropic", AttemptOutcome::Success),
            ]
        );
        assert_eq!(r.attempts[0].latency, Duration::ZERO);
    }
    let after = rig.counts();
    assert_eq!(after.0, before.0, "an open breaker sends nothing to OpenAI");
    assert_eq!(after.1, before.1 + N);
    assert_eq!(after.2, 0);
    rig.shutdown().await;
}

#[tokio::test]
async fn primary_and_secondary_failing_groq_answers() {
    let rig = Rig::start(Duration::from_secs(30)).await;
    rig.openai.set_random(Fault::Status(503), 1.0);
    rig.anthropic.set_random(Fault::Status(529), 1.0);

    let r = rig.generate(PROMPTS[2]).await;

    assert_eq!(r.provider_used, "groq");
    assert!(
        r.text.starts_with(&expected_prefix("groq", PROMPTS[2])),
        "{}",
        r.text
    );
    assert_eq!(r.model, "llama-3.1-8b-instant");
    assert_eq!(
        story(&r.attempts),
        [
            ("openai", AttemptOutcome::Failed),
            ("openai", AttemptOutcome::Failed),
            ("anthropic", AttemptOutcome::Failed),
            ("anthropic", AttemptOutcome::Failed),
            ("groq", AttemptOutcome::Success),
        ]
    );
    let anthropic_status = r.attempts[2].error.as_ref().and_then(|e| e.status);
    assert_eq!(anthropic_status, Some(529));
    assert_eq!(rig.counts(), (2, 2, 1));
    assert_eq!(
        rig.groq.requests()[0].path,
        "/openai/v1/chat/completions",
        "Groq's own route"
    );
    assert_eq!(rig.anthropic_breaker.state(), BreakerState::Closed);
    assert_eq!(rig.groq_breaker.state(), BreakerState::Closed);
    rig.shutdown().await;
}

#[tokio::test]
async fn stream_fails_over_before_the_first_chunk_to_anthropic() {
    let rig = Rig::start(Duration::from_secs(30)).await;
    // The try fails at the HTTP status; the retry gets a 200 and then the connection drops
    // before any content. Both are before the commit point, so the chain falls through.
    rig.openai.fail_next(1, Fault::Status(503));
    rig.openai
        .fail_next(1, Fault::Disconnect { after_chunks: 0 });
    let prompt = "Tell me about neural networks";

    let mut stream = match rig.chain.stream(prompt).await {
        Ok(s) => s,
        Err(e) => panic!("stream failed: {e}"),
    };
    assert_eq!(stream.provider_used(), "anthropic");
    assert_eq!(
        story(stream.attempts()),
        [
            ("openai", AttemptOutcome::Failed),
            ("openai", AttemptOutcome::Failed),
            ("anthropic", AttemptOutcome::Success),
        ]
    );
    let mut streamed = String::new();
    let mut content_chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if chunk.is_content() {
            content_chunks += 1;
        }
        streamed.push_str(&chunk.text);
    }
    assert!(
        content_chunks > 1,
        "really streamed: {content_chunks} chunk(s)"
    );
    assert_eq!(rig.counts(), (2, 1, 0));
    let sent = rig.openai.requests();
    assert!(
        sent.iter().all(|r| r.stream),
        "both OpenAI attempts streamed"
    );
    assert!(rig.anthropic.requests()[0].stream);

    // The same prompt, non-streamed, straight from the Anthropic simulator.
    let whole = anthropic_llm(&rig.anthropic)
        .complete(&ChatRequest::user(prompt))
        .await
        .unwrap();
    assert!(
        whole
            .text
            .starts_with(&expected_prefix("anthropic", prompt)),
        "{}",
        whole.text
    );
    assert_eq!(streamed, whole.text);
    rig.shutdown().await;
}

#[tokio::test]
async fn openai_recovers_after_the_recovery_timeout() {
    let recovery = Duration::from_millis(300);
    let rig = Rig::start(recovery).await;
    rig.openai.set_random(Fault::Status(503), 1.0);
    rig.trip_openai().await;
    rig.openai.clear_faults();

    // Healthy again, but the breaker is still open: no request reaches OpenAI yet.
    let seen = rig.openai.request_count();
    let r = rig.generate(PROMPTS[0]).await;
    assert_eq!(r.provider_used, "anthropic");
    assert_eq!(r.attempts[0].outcome, AttemptOutcome::Skipped);
    assert_eq!(rig.openai.request_count(), seen);

    tokio::time::sleep(recovery + Duration::from_millis(50)).await;
    assert_eq!(rig.openai_breaker.state(), BreakerState::HalfOpen);
    let r = rig.generate(PROMPTS[0]).await;
    assert_eq!(r.provider_used, "openai");
    assert!(r.text.starts_with(&expected_prefix("openai", PROMPTS[0])));
    assert_eq!(story(&r.attempts), [("openai", AttemptOutcome::Success)]);
    assert_eq!(rig.openai.request_count(), seen + 1, "one probe");
    assert_eq!(rig.openai_breaker.state(), BreakerState::Closed);
    rig.shutdown().await;
}
