//! The one trait every LLM backend implements, chains included.

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;

use crate::{ChatRequest, Chunk, Completion, EmbeddingRequest, Embeddings, ProviderError};

/// A boxed, sendable future; keeps [`Provider`] object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of answer chunks. It ends (`None`) only after the provider's terminal marker;
/// any failure, including a stream that stops early, is an `Err` item, after which the
/// stream yields nothing more.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, ProviderError>> + Send>>;

/// An LLM backend. Object-safe, so a chain holds `Arc<dyn Provider>`; a [`crate::FallbackChain`]
/// is one too, so chains nest.
///
/// Implementations classify every failure into an [`crate::ErrorKind`] and do not retry on
/// their own: retries, timeouts and breakers belong to the chain.
pub trait Provider: Send + Sync {
    /// A name for logs when the provider is used without a breaker name.
    fn name(&self) -> &str;

    /// The model this provider asks for, when it is fixed: it names the chain's attempt span
    /// (`chat {model}`, the OpenTelemetry GenAI convention). `None` by default.
    fn model(&self) -> Option<&str> {
        None
    }

    /// Sends the request and waits for the whole answer.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>>;

    /// Sends the request and returns the answer as it is generated. The future resolves once
    /// the response has started (headers received); chunks follow on the stream.
    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>>;

    /// What of `request` this provider cannot honour, by parameter name. A chain skips a
    /// provider that cannot (recorded as `unsupported: <names>`, neutral for its breaker) and
    /// refuses the request only when no provider can. The default honours everything.
    fn check(&self, request: &ChatRequest) -> Result<(), Unsupported> {
        let _ = request;
        Ok(())
    }

    /// Embeds the request's texts, one vector each. The default serves no embeddings.
    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        let refusal = self
            .check_embeddings(request)
            .err()
            .unwrap_or_else(no_embeddings);
        Box::pin(std::future::ready(Err(refusal.to_error())))
    }

    /// What of an embedding request this provider cannot honour; a chain skips it (neutral,
    /// no call) as for [`check`](Self::check). The default: `unsupported: embeddings`.
    /// Override it together with [`embed`](Self::embed).
    fn check_embeddings(&self, request: &EmbeddingRequest) -> Result<(), Unsupported> {
        let _ = request;
        Err(no_embeddings())
    }
}

/// The refusal of a provider that serves no embeddings.
fn no_embeddings() -> Unsupported {
    let mut u = Unsupported::new();
    u.add("embeddings");
    u
}

/// The parameters of a request that a provider cannot honour (OpenAI names: `logit_bias`,
/// `n`, `tools`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Unsupported {
    /// The parameter names, each once, in the order found.
    pub params: Vec<String>,
}

impl Unsupported {
    /// Nothing unsupported yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `param` (once).
    pub fn add(&mut self, param: impl Into<String>) {
        let param = param.into();
        if !self.params.contains(&param) {
            self.params.push(param);
        }
    }

    /// Adds `param` when `cond` holds.
    pub fn add_if(&mut self, cond: bool, param: &str) {
        if cond {
            self.add(param);
        }
    }

    /// `Ok` when nothing was added.
    pub fn into_result(self) -> Result<(), Unsupported> {
        if self.params.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// The error recorded for a provider skipped for these parameters.
    pub fn to_error(&self) -> ProviderError {
        ProviderError::new(
            crate::ErrorKind::Unsupported,
            format!("unsupported: {}", self.params.join(", ")),
        )
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported: {}", self.params.join(", "))
    }
}

impl<P: Provider + ?Sized> Provider for std::sync::Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn model(&self) -> Option<&str> {
        (**self).model()
    }
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        (**self).complete(request)
    }
    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        (**self).stream(request)
    }
    fn check(&self, request: &ChatRequest) -> Result<(), Unsupported> {
        (**self).check(request)
    }
    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        (**self).embed(request)
    }
    fn check_embeddings(&self, request: &EmbeddingRequest) -> Result<(), Unsupported> {
        (**self).check_embeddings(request)
    }
}
