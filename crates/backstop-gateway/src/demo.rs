//! `backstop demo`: the seed tutorial's story on three in-process simulators with the real
//! HTTP providers — no keys, no network beyond loopback.
//!
//! Normal traffic is answered by the primary; the primary rate-limits us (a hold, not an
//! outage: its breaker stays closed and traffic moves until the hold ends); the primary fails
//! (its breaker opens and traffic stops touching it); both fail (Groq answers); the faults
//! clear and, after the recovery timeout, a half-open probe succeeds and traffic returns to the
//! primary. One answer is streamed, failing over before its first token.

use std::io::Write;
use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiLlm};
use backstop::{AttemptOutcome, CircuitBreaker, FallbackChain, LlmConfig, RetryPolicy};
use backstop_sim::{Fault, SimConfig, SimHandle, Simulator};
use futures_util::StreamExt;

/// One request of the story, as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoStep {
    /// The act of the story it belongs to.
    pub act: &'static str,
    /// Who answered (`None` if all failed).
    pub provider_used: Option<String>,
    /// `provider:outcome` for every attempt.
    pub attempts: Vec<String>,
    /// Whether it was streamed.
    pub streamed: bool,
    /// Requests the primary's simulator had received after this request.
    pub primary_requests: u64,
    /// Providers on a rate-limit hold after this request.
    pub held: Vec<String>,
    /// Streams: `(provider, offset)` of each provider that continued the answer.
    pub resumed: Vec<(String, usize)>,
}

struct Sims {
    openai: SimHandle,
    anthropic: SimHandle,
    groq: SimHandle,
}

const PROMPTS: [&str; 4] = [
    "Explain the difference between authentication and authorisation.",
    "What is a deadlock and how do you prevent one?",
    "Summarise the CAP theorem in three bullet points.",
    "What is idempotency in REST APIs?",
];

/// Recovery timeout of the demo's breakers: short, so the story fits in seconds.
const RECOVERY: Duration = Duration::from_millis(1500);
/// The primary's Retry-After in the rate-limit act: longer than the chain waits for, so the
/// request moves on and the primary is held instead.
const HINT: Duration = Duration::from_millis(800);

/// Plays the story, writing a report to `out`; returns what happened, request by request.
pub async fn run(out: &mut dyn Write, color: bool) -> anyhow::Result<Vec<DemoStep>> {
    let sim = |ttft_ms| SimConfig {
        latency: Duration::from_millis(8),
        ttft: Duration::from_millis(ttft_ms),
        chunk_delay: Duration::from_millis(4),
        chunks: 8,
        ..SimConfig::default()
    };
    let sims = Sims {
        openai: Simulator::start(sim(30)).await?,
        anthropic: Simulator::start(sim(40)).await?,
        groq: Simulator::start(sim(15)).await?,
    };
    let config = LlmConfig::new(0.2, 512);
    let breakers = [
        CircuitBreaker::new("openai")
            .failure_threshold(3)
            .recovery_timeout(RECOVERY),
        CircuitBreaker::new("anthropic")
            .failure_threshold(3)
            .recovery_timeout(RECOVERY),
        CircuitBreaker::new("groq")
            .failure_threshold(5)
            .recovery_timeout(RECOVERY),
    ];
    let chain = FallbackChain::builder()
        .name("default")
        .provider(
            OpenAiLlm::new("gpt-4o-mini")
                .base_url(sims.openai.openai_base_url())
                .api_key("demo-key")
                .config(config.clone()),
            breakers[0].clone(),
        )
        .provider(
            AnthropicLlm::new("claude-haiku-3-5")
                .base_url(sims.anthropic.base_url())
                .api_key("demo-key")
                .config(config.clone()),
            breakers[1].clone(),
        )
        .provider(
            GroqLlm::new("llama-3.1-8b-instant")
                .base_url(sims.groq.base_url())
                .api_key("demo-key")
                .config(config),
            breakers[2].clone(),
        )
        .retry_policy(
            RetryPolicy::default()
                .max_retries(1)
                .base_backoff(Duration::from_millis(20))
                .retry_after_cap(Duration::from_millis(300)),
        )
        .attempt_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(1))
        .stream_resume(true)
        .build()?;

    let mut steps = Vec::new();
    let mut n = 0;
    let mut ask =
        async |out: &mut dyn Write, act: &'static str, stream: bool| -> anyhow::Result<()> {
            let prompt = PROMPTS[n % PROMPTS.len()];
            n += 1;
            let step = request(&chain, &sims, &breakers, out, color, act, prompt, stream).await?;
            steps.push(step);
            Ok(())
        };

    heading(out, color, "1. Normal traffic: the primary answers")?;
    ask(out, "normal", false).await?;
    ask(out, "normal", false).await?;

    heading(
        out,
        color,
        "2. OpenAI rate-limits us (429, Retry-After 0.8 s): a hold, not an outage",
    )?;
    sims.openai.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
            retry_after_ms: Some(u64::try_from(HINT.as_millis()).unwrap_or(800)),
            retry_after_http_date: false,
        },
    );
    ask(out, "rate limited", false).await?;
    ask(out, "rate limited", false).await?;
    writeln!(
        out,
        "   (OpenAI's breaker stays closed; waiting {} ms for its hold to end)\n",
        HINT.as_millis()
    )?;
    tokio::time::sleep(HINT).await;
    ask(out, "hold over", false).await?;

    heading(
        out,
        color,
        "3. OpenAI starts failing (503): its breaker opens, Anthropic answers",
    )?;
    sims.openai.set_random(Fault::Status(503), 1.0);
    ask(out, "primary down", true).await?;
    ask(out, "primary down", false).await?;
    ask(out, "primary down", false).await?;

    heading(
        out,
        color,
        "4. Anthropic fails too (529 overloaded): Groq answers",
    )?;
    sims.anthropic.set_random(Fault::Status(529), 1.0);
    ask(out, "both down", false).await?;
    ask(out, "both down", false).await?;

    heading(
        out,
        color,
        "5. Providers recover: after the recovery timeout a probe closes the breakers",
    )?;
    sims.openai.clear_faults();
    sims.anthropic.clear_faults();
    writeln!(
        out,
        "   (waiting {} ms for the recovery timeout)\n",
        RECOVERY.as_millis()
    )?;
    tokio::time::sleep(RECOVERY).await;
    ask(out, "recovered", false).await?;
    ask(out, "recovered", true).await?;

    heading(
        out,
        color,
        "6. A stream breaks mid-way (connection cut after 4 chunks): Anthropic finishes the answer",
    )?;
    sims.openai
        .fail_next(1, Fault::Disconnect { after_chunks: 4 });
    ask(out, "resumed", true).await?;

    for s in [sims.openai, sims.anthropic, sims.groq] {
        s.shutdown().await;
    }
    Ok(steps)
}

fn heading(out: &mut dyn Write, color: bool, text: &str) -> std::io::Result<()> {
    if color {
        writeln!(out, "\x1b[1m{text}\x1b[0m\n")
    } else {
        writeln!(out, "{text}\n")
    }
}

#[allow(clippy::too_many_arguments)]
async fn request(
    chain: &FallbackChain,
    sims: &Sims,
    breakers: &[CircuitBreaker; 3],
    out: &mut dyn Write,
    color: bool,
    act: &'static str,
    prompt: &str,
    stream: bool,
) -> anyhow::Result<DemoStep> {
    let started = tokio::time::Instant::now();
    let mut resumed = Vec::new();
    let (provider_used, attempts, text) = if stream {
        match chain.stream(prompt).await {
            Ok(mut s) => {
                let provider = s.provider_used().to_owned();
                let mut text = String::new();
                while let Some(item) = s.next().await {
                    match item {
                        Ok(chunk) => text.push_str(&chunk.text),
                        Err(e) => text.push_str(&format!(" [stream failed: {e}]")),
                    }
                }
                resumed = s.contributions()[1..]
                    .iter()
                    .map(|c| (c.provider.clone(), c.offset))
                    .collect();
                (Some(provider), s.attempts().to_vec(), text)
            }
            Err(f) => (None, f.attempts.clone(), f.to_string()),
        }
    } else {
        match chain.generate(prompt).await {
            Ok(r) => (Some(r.provider_used), r.attempts, r.text),
            Err(f) => (None, f.attempts.clone(), f.to_string()),
        }
    };
    let latency = started.elapsed();
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    writeln!(
        out,
        "Prompt:   {prompt:?}{}",
        if stream { "  (streamed)" } else { "" }
    )?;
    match &provider_used {
        Some(p) => writeln!(
            out,
            "Provider: {}   ({:.1} ms)",
            paint("32;1", p),
            latency.as_secs_f64() * 1000.0
        )?,
        None => writeln!(
            out,
            "Provider: {}",
            paint("31;1", "none: all providers failed")
        )?,
    }
    for a in &attempts {
        let (mark, code) = match a.outcome {
            AttemptOutcome::Success => ("ok     ", "32"),
            AttemptOutcome::Failed => ("failed ", "31"),
            AttemptOutcome::Skipped => ("skipped", "33"),
            _ => ("cancel ", "33"),
        };
        let detail = match (&a.outcome, &a.error) {
            (AttemptOutcome::Skipped, _) => "breaker open".to_owned(),
            (_, Some(e)) if matches!(e.kind, backstop::ErrorKind::RateLimited { .. }) => {
                format!("{e} → held, breaker untouched")
            }
            (_, Some(e)) => e.to_string(),
            (_, None) => String::new(),
        };
        writeln!(
            out,
            "  {:<10} {} {:>7.1} ms  {}",
            a.provider,
            paint(code, mark),
            a.latency.as_secs_f64() * 1000.0,
            detail
        )?;
    }
    let states: Vec<String> = breakers
        .iter()
        .map(|b| {
            let s = b.snapshot();
            let code = match s.state {
                backstop::BreakerState::Closed => "32",
                backstop::BreakerState::Open => "31",
                backstop::BreakerState::HalfOpen => "33",
            };
            let hold = s
                .hold_remaining
                .map(|d| format!(" (held {:.1} s)", d.as_secs_f64()))
                .unwrap_or_default();
            format!("{}={}{hold}", b.name(), paint(code, s.state.as_str()))
        })
        .collect();
    writeln!(out, "  breakers: {}", states.join("  "))?;
    let primary_requests = sims.openai.request_count();
    writeln!(
        out,
        "  requests received: openai {}, anthropic {}, groq {}",
        primary_requests,
        sims.anthropic.request_count(),
        sims.groq.request_count()
    )?;
    if resumed.is_empty() {
        writeln!(
            out,
            "Answer:   {}...\n",
            text.chars().take(90).collect::<String>()
        )?;
    } else {
        // The whole answer, with the seam where the next provider took over.
        let mut shown = String::new();
        let mut at = 0;
        for (provider, offset) in &resumed {
            shown.push_str(text.get(at..*offset).unwrap_or_default());
            shown.push_str(&paint("35;1", &format!("⟨{provider} continues⟩")));
            at = *offset;
        }
        shown.push_str(text.get(at..).unwrap_or_default());
        writeln!(out, "Answer:   {shown}\n")?;
    }
    Ok(DemoStep {
        act,
        provider_used,
        attempts: attempts
            .iter()
            .map(|a| format!("{}:{}", a.provider, a.outcome.as_str()))
            .collect(),
        streamed: stream,
        primary_requests,
        held: breakers
            .iter()
            .filter(|b| b.hold().is_held())
            .map(|b| b.name().to_owned())
            .collect(),
        resumed,
    })
}
