//! # backstop
//!
//! Keeps an application answering when its LLM provider does not.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attempt;
mod breaker;
mod budget;
mod chain;
mod error;
mod hold;
mod observer;
mod provider;
mod request;
mod response;
mod retry;
mod time;
mod window;

#[cfg(feature = "testing")]
pub mod testing;

pub use attempt::{Attempt, AttemptOutcome};
pub use breaker::{
    BreakerConfig, BreakerMode, BreakerOpen, BreakerSnapshot, BreakerState, CircuitBreaker, Permit,
};
pub use budget::RetryBudget;
pub use chain::{
    ChainBuildError, Contribution, FallbackChain, FallbackChainBuilder, FallbackStream, HedgeAfter,
    Priority, ProviderOptions, Weighted, WhenAllOpen, fallback_chain, weighted_fallback_chain,
};
pub use error::{
    AllProvidersFailed, BreakerEffect, ErrorKind, FallThrough, MAX_MESSAGE_LEN, ProviderError,
    ProviderFailure,
};
pub use hold::{HoldConfig, RateLimitHold};
pub use observer::{Observer, RequestSummary, StateChange};
pub use provider::{BoxFuture, ChunkStream, Provider};
pub use request::{ChatRequest, LlmConfig, Message, Role};
pub use response::{Chunk, Completion, FallbackResult, FinishReason, Usage};
pub use retry::{RetryDecision, RetryPolicy};

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
