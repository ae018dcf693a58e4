//! The one trait every LLM backend implements, chains included.

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;

use crate::{ChatRequest, Chunk, Completion, ProviderError};

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
}
