//! # backstop
//!
//! Keeps an application answering when its LLM provider does not. backstop sends each request
//! through a **fallback chain** of providers (OpenAI → Anthropic → Groq, or any
//! OpenAI-compatible endpoint), guards every provider with its own **circuit breaker**, retries
//! only what is worth retrying, enforces **real deadlines**, fails over **while streaming** (up
//! to the first token), and tells you which provider answered ([`FallbackResult::provider_used`])
//! and what every attempt cost ([`FallbackResult::attempts`]).
//!
//! ## Quick start
//!
//! The tutorial's chain: three providers in priority order, each with its breaker, one retry
//! per provider. Keys come from `OPENAI_API_KEY`, `ANTHROPIC_API_KEY` and `GROQ_API_KEY`, base
//! URLs from `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL` and `GROQ_BASE_URL` (explicit builder
//! values win).
//!
//! ```no_run
//! use std::time::Duration;
//! use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiLlm};
//! use backstop::{AllProvidersFailed, CircuitBreaker, FallbackChain, LlmConfig};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = LlmConfig::new(0.2, 512);
//! let chain = FallbackChain::builder()
//!     .provider(
//!         OpenAiLlm::new("gpt-4o").config(config.clone()),
//!         CircuitBreaker::new("openai-gpt4o")
//!             .failure_threshold(3)
//!             .window(Duration::from_secs(60))
//!             .recovery_timeout(Duration::from_secs(60)),
//!     )
//!     .provider(
//!         AnthropicLlm::new("claude-3-5-haiku-latest").config(config.clone()),
//!         CircuitBreaker::new("anthropic-haiku").failure_threshold(3),
//!     )
//!     .provider(
//!         GroqLlm::new("llama-3.1-8b-instant").config(config),
//!         CircuitBreaker::new("groq-llama").failure_threshold(5),
//!     )
//!     .retries_per_provider(1)
//!     .timeout(Duration::from_secs(30)) // the whole request, retries and fallbacks included
//!     .build()?;
//!
//! match chain.generate("What is idempotency in REST APIs?").await {
//!     Ok(result) => {
//!         if result.provider_used != "openai-gpt4o" {
//!             eprintln!("[fallback] answered by {}", result.provider_used);
//!         }
//!         println!("{}", result.text);
//!     }
//!     // One line per provider: what each one's last error was.
//!     Err(AllProvidersFailed { errors, .. }) => eprintln!("all providers failed: {errors:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! [`fallback_chain`] and [`weighted_fallback_chain`] are the tutorial's functional forms of
//! the same builders. A [`FallbackChain`] is itself a [`Provider`], so chains nest.
//!
//! ## What each failure does
//!
//! Every failure is classified once, into an [`ErrorKind`], and the kind decides the rest:
//!
//! | kind | from | retried on the same provider | breaker | next provider |
//! |---|---|---|---|---|
//! | `Timeout` | attempt / first-token timeout, request deadline | no | failure | yes |
//! | `Connect` | refused, reset, I/O | yes | failure | yes |
//! | `RateLimited` | 429 | only if the hint ≤ the cap | not a failure: a [rate-limit hold](RateLimitHold) | yes |
//! | `QuotaExhausted` | `insufficient_quota`, 402, billing errors | no | failure | yes |
//! | `Overloaded` | 503, 529 | yes | failure | yes |
//! | `Server` | other 5xx | yes | failure | yes |
//! | `Auth` | 401, 403, missing key | no | failure | yes |
//! | `InvalidRequest` | 400, 404, 422 | no | neutral | yes ([`FallThrough`]) |
//! | `ContextLengthExceeded` | provider error codes | no | neutral | yes |
//! | `ContentFiltered` | provider error codes | no | neutral | no ([`FallThrough`]) |
//! | `Protocol` | malformed body, a stream ending without a finish reason | yes | failure | yes |
//! | `CircuitOpen` | the breaker refused: no call made | no | — | yes |
//! | `LocalResource` | our own process out of descriptors, memory or ports | no | neutral | yes |
//! | `Cancelled` | the caller dropped the future | no | neutral (frees a half-open slot) | no |
//!
//! The default breaker scales with traffic ([`BreakerMode::DEFAULT_RATE`]: 50% failures over
//! the window once it saw 100 calls, or 10 failures in a row with no success for 1 s); the
//! tutorial's count rule is [`CircuitBreaker::failure_threshold`]. An open breaker refuses calls
//! instantly, then admits `half_open_probes` probe calls: a success closes it, a failure
//! re-opens it. A 429 never opens it: the provider is held behind the others until its hint
//! ends. Same-provider retries come from a per-chain [`RetryBudget`], back off exponentially
//! with full jitter, and never sleep past the deadline; each attempt gets `min(attempt
//! timeout, time left)`.

//! ## Streaming
//!
//! [`FallbackChain::stream`] resolves once the first content chunk has arrived (the commit
//! point). Until then a failure falls through to the next provider, invisibly to the caller;
//! after it, a failure is one terminal `Err` item on the stream, never a silent truncation —
//! or, with [`FallbackChainBuilder::stream_resume`], the next provider continues the answer
//! from the text already delivered and the caller sees one stream
//! ([`FallbackStream::contributions`] says who wrote what). [`FallbackChainBuilder::hedge`]
//! starts the next provider beside a slow first one.
//!
//! ```no_run
//! # use backstop::FallbackChain;
//! use futures_util::StreamExt;
//! # async fn demo(chain: FallbackChain) -> Result<(), backstop::AllProvidersFailed> {
//! let mut stream = chain.stream("Tell me about neural networks").await?;
//! println!("streaming from {}", stream.provider_used());
//! while let Some(chunk) = stream.next().await {
//!     match chunk {
//!         Ok(chunk) => print!("{}", chunk.text),
//!         Err(e) => eprintln!("\nthe stream broke after it started: {e}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Weighted selection
//!
//! [`FallbackChain::weighted`] draws each request's order by weight (sampling without
//! replacement among the providers whose breakers admit a call); the rest follow as fallbacks.
//!
//! ```no_run
//! # use backstop::providers::{AnthropicLlm, OpenAiLlm};
//! # use backstop::{CircuitBreaker, FallbackChain};
//! # fn demo() -> Result<(), backstop::ChainBuildError> {
//! let chain = FallbackChain::weighted()
//!     .provider(OpenAiLlm::new("gpt-4o"), CircuitBreaker::new("openai"), 0.7)
//!     .provider(AnthropicLlm::new("claude-3-5-haiku-latest"), CircuitBreaker::new("anthropic"), 0.3)
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! ## Testing your code with `ScriptedProvider`
//!
//! With the `testing` feature, [`testing::ScriptedProvider`] plays a script of replies, chunked
//! streams, failures of any kind, delays and hangs, and counts its calls: the failover story,
//! with virtual time and no network.
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use backstop::testing::{ScriptedProvider, Step};
//! use backstop::{CircuitBreaker, ErrorKind, FallbackChain};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Overloaded)]);
//! let backup = ScriptedProvider::new("backup").script([Step::reply("hello")]);
//! let primary_breaker = CircuitBreaker::new("primary").failure_threshold(2);
//! let chain = FallbackChain::builder()
//!     .provider(primary.clone(), primary_breaker.clone())
//!     .provider(backup, CircuitBreaker::new("backup"))
//!     .build()
//!     .unwrap();
//!
//! for _ in 0..2 {
//!     assert_eq!(chain.generate("hi").await.unwrap().provider_used, "backup");
//! }
//! // Two failures opened the primary's breaker: the next request does not call it.
//! assert_eq!(primary_breaker.state(), backstop::BreakerState::Open);
//! chain.generate("hi").await.unwrap();
//! assert_eq!(primary.calls(), 2);
//! # });
//! # }
//! ```
//!
//! ## tower
//!
//! With the `tower` feature a chain is a `tower::Service<ChatRequest>`, so it sits in a tower
//! stack, and [`tower::ServiceProvider`] makes a provider of any tower service, so middleware
//! (`ConcurrencyLimit`, `RateLimit`, `LoadShed`, yours) can guard one provider. The chain's
//! `poll_ready` is `Pending` while every breaker is open, waking when the first turns
//! half-open. See the [`tower`] module.
//!
//! ```
//! # #[cfg(all(feature = "tower", feature = "testing"))] {
//! # use backstop::testing::ScriptedProvider;
//! use backstop::tower::{ProviderService, ServiceProvider};
//! use backstop::{CircuitBreaker, FallbackChain};
//! use tower::ServiceBuilder;
//!
//! # let (primary, backup) = (ScriptedProvider::new("primary"), ScriptedProvider::new("backup"));
//! // At most 8 calls in flight to the primary; over that, the backup answers at once.
//! let primary = ServiceBuilder::new()
//!     .load_shed()
//!     .concurrency_limit(8)
//!     .service(ProviderService::new(primary));
//! let chain = FallbackChain::builder()
//!     .provider(ServiceProvider::new("primary", primary), CircuitBreaker::new("primary"))
//!     .provider(backup, CircuitBreaker::new("backup"))
//!     .build()
//!     .unwrap();
//! # }
//! ```
//!
//! ## Bringing your own HTTP client
//!
//! Providers share one connection pool per process (per tokio runtime and connect timeout).
//! For proxies, custom CA roots, mTLS or default headers, give a provider your own
//! `reqwest::Client`; with the `reqwest-middleware` feature, a
//! `reqwest_middleware::ClientWithMiddleware` (for `reqwest-tracing` and the like). Your
//! client should not follow redirects, retry or time out on its own: the chain does those
//! (see [`providers::HttpClient`]).
//!
//! ```no_run
//! # use backstop::providers::OpenAiLlm;
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest::Client::builder()
//!     .proxy(reqwest::Proxy::https("http://proxy.internal:3128")?)
//!     .redirect(reqwest::redirect::Policy::none())
//!     .build()?;
//! let openai = OpenAiLlm::new("gpt-4o-mini").http_client(client);
//! # Ok(()) }
//! ```
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `openai`, `anthropic`, `groq` | yes | the HTTP providers ([`providers`]) |
//! | `rustls-aws-lc` | yes | TLS through rustls with aws-lc-rs (reqwest's `rustls`) |
//! | `rustls-ring` | no | TLS through rustls with ring: no C build of aws-lc (installs ring as the process's rustls provider unless one is installed; `rustls-aws-lc` wins when both are on) |
//! | `native-tls` | no | the platform's TLS (OpenSSL, Secure Transport, SChannel); wins over rustls when both are on (reqwest's rule) |
//! | `reqwest-middleware` | no | a `ClientWithMiddleware` as a provider's client |
//! | `tower` | no | the [`tower`] module |
//! | `testing` | no | the [`testing`] module |
//!
//! Without a TLS feature the providers speak plain `http://` only (local servers). The minimum
//! supported Rust version is 1.95.
#![cfg_attr(docsrs, feature(doc_cfg))]
// A builder method whose result is dropped loses its setting: say so at compile time.
#![warn(clippy::return_self_not_must_use)]

mod attempt;
mod breaker;
mod budget;
mod chain;
mod content;
mod embeddings;
mod error;
mod hold;
mod observer;
mod params;
mod provider;
mod readiness;
mod request;
mod response;
mod retry;
mod time;
mod tool;
pub mod trace_context;
mod window;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use attempt::{Attempt, AttemptOutcome};
pub use breaker::{
    BreakerConfig, BreakerMode, BreakerOpen, BreakerSnapshot, BreakerState, CircuitBreaker, Permit,
};
pub use budget::RetryBudget;
pub use chain::{
    ChainBuildError, Contribution, FallbackChain, FallbackChainBuilder, FallbackStream, HedgeAfter,
    Priority, ProviderOptions, Weighted, WhenAllOpen, fallback_chain, weighted_fallback_chain,
};
pub use content::{ContentPart, Image};
pub use embeddings::{EmbeddingRequest, EmbeddingResult, EmbeddingUsage, Embeddings};
pub use error::{
    AllProvidersFailed, BreakerEffect, ErrorKind, FallThrough, MAX_MESSAGE_LEN, ProviderError,
    ProviderFailure,
};
pub use hold::{HoldConfig, RateLimitHold};
pub use observer::{Observer, RequestSummary, StateChange};
pub use params::{ApiFormat, Params, ResponseFormat};
pub use provider::{BoxFuture, ChunkStream, Provider, Unsupported};
pub use request::{ChatRequest, LlmConfig, Message, Role};
pub use response::{Chunk, Completion, FallbackResult, FinishReason, Usage};
pub use retry::{RetryDecision, RetryPolicy};
pub use tool::{Tool, ToolCall, ToolCallAccumulator, ToolCallDelta, ToolChoice};

#[cfg(any(feature = "openai", feature = "anthropic", feature = "groq"))]
pub mod providers;
#[cfg(feature = "anthropic")]
pub use providers::AnthropicLlm;
#[cfg(feature = "groq")]
pub use providers::GroqLlm;
#[cfg(feature = "openai")]
pub use providers::{OpenAiCompatible, OpenAiLlm};

/// The README's Rust snippets, compiled as doc tests so the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The same for the crate's own README (its crates.io page).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
