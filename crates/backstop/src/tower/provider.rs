//! Providers as tower services and back: per-provider middleware.

use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::BoxError;
use crate::{
    BoxFuture, ChatRequest, Chunk, ChunkStream, Completion, ErrorKind, Provider, ProviderError,
};

/// A request to stream the answer (a `Service<ChatRequest>` completes it whole).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest(pub ChatRequest);

impl From<ChatRequest> for StreamRequest {
    fn from(request: ChatRequest) -> Self {
        StreamRequest(request)
    }
}

/// A [`Provider`] as a tower service: `Service<ChatRequest>` completes, `Service<StreamRequest>`
/// streams. Always ready; wrap it in middleware and give it back to a chain as a
/// [`ServiceProvider`]. Cheap to clone (shares the provider).
pub struct ProviderService<P: ?Sized> {
    provider: Arc<P>,
}

impl<P> ProviderService<P> {
    /// Wraps `provider`.
    pub fn new(provider: P) -> Self {
        ProviderService {
            provider: Arc::new(provider),
        }
    }
}

impl<P: ?Sized> ProviderService<P> {
    /// Wraps a provider that is already shared.
    pub fn from_arc(provider: Arc<P>) -> Self {
        ProviderService { provider }
    }
}

impl<P: ?Sized> Clone for ProviderService<P> {
    fn clone(&self) -> Self {
        ProviderService {
            provider: Arc::clone(&self.provider),
        }
    }
}

impl<P: Provider + ?Sized> fmt::Debug for ProviderService<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderService")
            .field("provider", &self.provider.name())
            .finish()
    }
}

impl<P: Provider + ?Sized + 'static> Service<ChatRequest> for ProviderService<P> {
    type Response = Completion;
    type Error = ProviderError;
    type Future = BoxFuture<'static, Result<Completion, ProviderError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        let provider = Arc::clone(&self.provider);
        Box::pin(async move { provider.complete(&request).await })
    }
}

impl<P: Provider + ?Sized + 'static> Service<StreamRequest> for ProviderService<P> {
    type Response = ChunkStream;
    type Error = ProviderError;
    type Future = BoxFuture<'static, Result<ChunkStream, ProviderError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: StreamRequest) -> Self::Future {
        let provider = Arc::clone(&self.provider);
        Box::pin(async move { provider.stream(&request.0).await })
    }
}

/// [`ServiceProvider`] mode: the service only completes; streams are the completion as one chunk.
#[derive(Debug, Clone, Copy)]
pub enum CompleteOnly {}

/// [`ServiceProvider`] mode: the service also streams (`Service<StreamRequest>`).
#[derive(Debug, Clone, Copy)]
pub enum Streaming {}

/// A [`Provider`] made of a tower service, so middleware (`ConcurrencyLimit`, `RateLimit`,
/// `LoadShed`, your own) can guard one provider of a chain.
///
/// Each call waits for the service's `poll_ready`, then calls it; that wait counts against
/// the chain's attempt timeout, and a timeout is a breaker failure: to skip a busy provider
/// rather than queue for it, put `LoadShed` in front of the limit. Calls reach the one service value in turn (it is not cloned,
/// so middleware keeping its state in the value, like `RateLimit`, works). Errors become
/// [`ProviderError`]s: a `ProviderError` is kept as it is; tower's `LoadShed` overload is
/// `CircuitOpen` (skipped without a call: neutral for the breaker, and the next provider is
/// tried at once); tower's `Timeout` elapsing is `Timeout`; anything else is `Server`.
pub struct ServiceProvider<S, M = CompleteOnly> {
    name: String,
    service: tokio::sync::Mutex<S>,
    mode: PhantomData<fn() -> M>,
}

impl<S> ServiceProvider<S, CompleteOnly> {
    /// A provider called `name` backed by `service` (`Service<ChatRequest, Response =
    /// Completion>`); asked to stream, it delivers the completion as one chunk.
    pub fn new(name: impl Into<String>, service: S) -> Self {
        ServiceProvider {
            name: name.into(),
            service: tokio::sync::Mutex::new(service),
            mode: PhantomData,
        }
    }
}

impl<S> ServiceProvider<S, Streaming> {
    /// A provider called `name` backed by `service`, which completes
    /// (`Service<ChatRequest, Response = Completion>`) and streams
    /// (`Service<StreamRequest, Response = ChunkStream>`).
    pub fn streaming(name: impl Into<String>, service: S) -> Self {
        ServiceProvider {
            name: name.into(),
            service: tokio::sync::Mutex::new(service),
            mode: PhantomData,
        }
    }
}

impl<S, M> fmt::Debug for ServiceProvider<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("name", &self.name)
            .field("mode", &std::any::type_name::<M>())
            .finish_non_exhaustive()
    }
}

impl<S, M> ServiceProvider<S, M> {
    /// Waits for readiness and calls, holding the service only until the call is made.
    async fn call<R>(&self, request: R) -> Result<S::Response, ProviderError>
    where
        S: Service<R>,
        S::Error: Into<BoxError>,
    {
        let response = {
            let mut service = self.service.lock().await;
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(classify)?;
            service.call(request)
        };
        response.await.map_err(classify)
    }
}

/// Turns a middleware or service error into a provider error (see [`ServiceProvider`]).
fn classify(error: impl Into<BoxError>) -> ProviderError {
    let error = match error.into().downcast::<ProviderError>() {
        Ok(e) => return *e,
        Err(e) => e,
    };
    if error.is::<::tower::load_shed::error::Overloaded>() {
        return ProviderError::new(
            ErrorKind::CircuitOpen,
            "shed by the provider's middleware (not ready)",
        );
    }
    if error.is::<::tower::timeout::error::Elapsed>() {
        return ProviderError::new(ErrorKind::Timeout, "the provider's middleware timed out");
    }
    ProviderError::new(
        ErrorKind::Server,
        format!("the provider's service failed: {error}"),
    )
}

/// A completion as a stream of one chunk.
fn one_chunk(c: Completion) -> ChunkStream {
    let chunk = Chunk {
        text: c.text,
        usage: c.usage,
        finish_reason: c.finish_reason,
        model: Some(c.model),
        ..Chunk::default()
    };
    Box::pin(futures_util::stream::iter([Ok(chunk)]))
}

impl<S> Provider for ServiceProvider<S, CompleteOnly>
where
    S: Service<ChatRequest, Response = Completion> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(self.call(request.clone()))
    }

    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move { self.call(request.clone()).await.map(one_chunk) })
    }
}

impl<S> Provider for ServiceProvider<S, Streaming>
where
    S: Service<ChatRequest, Response = Completion>
        + Service<StreamRequest, Response = ChunkStream>
        + Send
        + 'static,
    <S as Service<ChatRequest>>::Error: Into<BoxError>,
    <S as Service<ChatRequest>>::Future: Send,
    <S as Service<StreamRequest>>::Error: Into<BoxError>,
    <S as Service<StreamRequest>>::Future: Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(self.call(request.clone()))
    }

    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(self.call(StreamRequest(request.clone())))
    }
}
