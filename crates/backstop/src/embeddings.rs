//! Embeddings: the request, the answer, and the chain's result. A chain of embedding
//! providers is a [`crate::FallbackChain`] like any other: the same breakers, holds, retries
//! and deadlines; [`crate::FallbackChain::embed`] is the entry point.

use std::time::Duration;

use crate::Attempt;

/// Texts to embed.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct EmbeddingRequest {
    /// The texts, one vector each, in order.
    pub input: Vec<String>,
    /// Output size for models that can shorten their vectors (OpenAI's `dimensions`).
    pub dimensions: Option<u32>,
    /// The end user, passed to providers that take it (OpenAI's `user`).
    pub user: Option<String>,
    /// Deadline for the whole request; overrides the chain's `timeout`.
    pub timeout: Option<Duration>,
    /// A dropped call counts as a timeout on the provider being tried (see
    /// [`crate::ChatRequest::drop_counts_as_timeout`]).
    pub drop_counts_as_timeout: bool,
    /// The caller's request id, sent upstream as `x-request-id`.
    pub request_id: Option<String>,
    /// The caller's W3C `traceparent` (see [`crate::trace_context`]).
    pub traceparent: Option<String>,
}

impl EmbeddingRequest {
    /// A request for `input`'s texts.
    pub fn new<S: Into<String>>(input: impl IntoIterator<Item = S>) -> Self {
        EmbeddingRequest {
            input: input.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Asks for vectors of `n` dimensions.
    #[must_use]
    pub fn dimensions(mut self, n: u32) -> Self {
        self.dimensions = Some(n);
        self
    }

    /// Names the end user.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the request id sent upstream.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the caller's `traceparent`.
    #[must_use]
    pub fn traceparent(mut self, value: impl Into<String>) -> Self {
        self.traceparent = Some(value.into());
        self
    }

    /// Sets the request's deadline.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// Tokens an embedding request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbeddingUsage {
    /// Tokens in the input.
    pub prompt_tokens: u32,
    /// Tokens billed (equal to `prompt_tokens` for OpenAI).
    pub total_tokens: u32,
}

impl EmbeddingUsage {
    /// Usage of `prompt_tokens` input tokens and `total_tokens` billed.
    pub fn new(prompt_tokens: u32, total_tokens: u32) -> Self {
        EmbeddingUsage {
            prompt_tokens,
            total_tokens,
        }
    }
}

/// One provider's answer: a vector per input text, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Embeddings {
    /// The vectors, `vectors[i]` for `input[i]`.
    pub vectors: Vec<Vec<f32>>,
    /// The model that answered.
    pub model: String,
    /// Token usage, when the provider reports it.
    pub usage: Option<EmbeddingUsage>,
}

impl Embeddings {
    /// An answer of `vectors` from `model`.
    pub fn new(vectors: Vec<Vec<f32>>, model: impl Into<String>) -> Self {
        Embeddings {
            vectors,
            model: model.into(),
            usage: None,
        }
    }

    /// With token usage.
    #[must_use]
    pub fn with_usage(mut self, usage: EmbeddingUsage) -> Self {
        self.usage = Some(usage);
        self
    }
}

/// What [`crate::FallbackChain::embed`] returns: the vectors, who answered, and every
/// attempt made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbeddingResult {
    /// The answer.
    pub embeddings: Embeddings,
    /// The breaker name of the provider that answered.
    pub provider_used: String,
    /// Every attempt, in order, the successful one last.
    pub attempts: Vec<Attempt>,
}

impl EmbeddingResult {
    pub(crate) fn new(embeddings: Embeddings, provider: &str, attempts: Vec<Attempt>) -> Self {
        EmbeddingResult {
            embeddings,
            provider_used: provider.to_owned(),
            attempts,
        }
    }

    /// True when a provider other than the first tried answered.
    pub fn fell_back(&self) -> bool {
        self.attempts
            .first()
            .is_some_and(|a| a.provider != self.provider_used)
    }
}
