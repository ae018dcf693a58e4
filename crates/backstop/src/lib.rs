//! # backstop
//!
//! Keeps an application answering when its LLM provider does not.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attempt;
mod error;
mod provider;
mod request;
mod response;

pub use attempt::{Attempt, AttemptOutcome};
pub use error::{
    AllProvidersFailed, BreakerEffect, ErrorKind, MAX_MESSAGE_LEN, ProviderError, ProviderFailure,
};
pub use provider::{BoxFuture, ChunkStream, Provider};
pub use request::{ChatRequest, LlmConfig, Message, Role};
pub use response::{Chunk, Completion, FallbackResult, FinishReason, Usage};

#[cfg(any(feature = "openai", feature = "anthropic", feature = "groq"))]
pub mod providers;
