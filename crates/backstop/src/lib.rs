//! # backstop
//!
//! Keeps an application answering when its LLM provider does not.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attempt;
mod breaker;
mod chain;
mod error;
mod observer;
mod provider;
mod readiness;
mod request;
mod response;
mod retry;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use attempt::{Attempt, AttemptOutcome};
pub use breaker::{
    BreakerConfig, BreakerOpen, BreakerSnapshot, BreakerState, CircuitBreaker, Permit,
};
pub use chain::{
    ChainBuildError, FallbackChain, FallbackChainBuilder, FallbackStream, Priority,
    ProviderOptions, Weighted, fallback_chain, weighted_fallback_chain,
};
pub use error::{
    AllProvidersFailed, BreakerEffect, ErrorKind, MAX_MESSAGE_LEN, ProviderError, ProviderFailure,
};
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
