//! What every HTTP provider is: an endpoint, a model and default sampling settings, speaking
//! one wire format. The OpenAI, Groq, compatible and Anthropic providers differ only in that.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use super::http::{self, Endpoint, StreamParser};
use crate::{
    BoxFuture, ChatRequest, ChunkStream, Completion, EmbeddingRequest, Embeddings, LlmConfig,
    ProviderError, Unsupported,
};

/// A provider API's wire format: how a request is encoded and answers and errors are read.
pub(crate) trait WireFormat: Send + Sync + 'static {
    /// The streaming state machine, made for one request.
    type Stream: StreamParser;
    /// What of `request` the wire format cannot carry, plus the provider kind's own `refused`
    /// features (names as in [`ChatRequest::features`]).
    fn check(request: &ChatRequest, refused: &[&str]) -> Result<(), Unsupported>;
    /// The stream parser for `request`.
    fn stream_parser(request: &ChatRequest) -> Self::Stream;
    /// Encodes a request (`config` is the provider's defaults, the request's own settings win).
    fn request_body(
        model: &str,
        request: &ChatRequest,
        config: &LlmConfig,
        stream: bool,
    ) -> Result<Vec<u8>, ProviderError>;
    /// Reads a 2xx body answering `request`.
    fn parse_completion(
        request: &ChatRequest,
        body: &[u8],
        model: &str,
    ) -> Result<Completion, ProviderError>;
    /// Classifies an error status with its body.
    fn classify_status(status: u16, retry_after: Option<Duration>, body: &[u8]) -> ProviderError;
}

/// The sampling settings this call sends (the request's, else the provider's defaults), on
/// the attempt span; nothing when no subscriber wants it.
fn record_sampling(request: &LlmConfig, defaults: &LlmConfig) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    if let Some(t) = request.max_tokens.or(defaults.max_tokens) {
        span.record("gen_ai.request.max_tokens", i64::from(t));
    }
    if let Some(t) = request.temperature.or(defaults.temperature) {
        span.record("gen_ai.request.temperature", f64::from(t));
    }
    if let Some(p) = request.top_p.or(defaults.top_p) {
        span.record("gen_ai.request.top_p", f64::from(p));
    }
}

/// An HTTP provider speaking wire format `W`.
pub(crate) struct HttpCore<W> {
    pub(crate) endpoint: Endpoint,
    pub(crate) model: String,
    pub(crate) config: LlmConfig,
    /// Features this provider kind refuses beyond what its wire format cannot carry.
    pub(crate) refused: &'static [&'static str],
    wire: PhantomData<fn() -> W>,
}

impl<W: WireFormat> HttpCore<W> {
    pub(crate) fn new(endpoint: Endpoint, model: impl Into<String>) -> Self {
        Self {
            endpoint,
            model: model.into(),
            config: LlmConfig::default(),
            refused: &[],
            wire: PhantomData,
        }
    }

    pub(crate) fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let body = W::request_body(&self.model, request, &self.config, false)?;
            record_sampling(&request.config, &self.config);
            let response = self
                .endpoint
                .post(body, W::classify_status, request, &self.model)
                .await?;
            let upstream_id = http::upstream_request_id(response.headers());
            let with_id = |mut e: ProviderError| {
                e.upstream_request_id.clone_from(&upstream_id);
                e
            };
            let bytes = http::read_body(response).await.map_err(with_id)?;
            // A 2xx body can still carry an in-band error or unreadable text: scrub it too.
            match W::parse_completion(request, &bytes, &self.model) {
                Ok(mut completion) => {
                    completion.upstream_request_id = upstream_id;
                    Ok(completion)
                }
                Err(e) => Err(with_id(self.endpoint.redactor().error(e))),
            }
        })
    }

    pub(crate) fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let body = W::request_body(&self.model, request, &self.config, true)?;
            record_sampling(&request.config, &self.config);
            let response = self
                .endpoint
                .post(body, W::classify_status, request, &self.model)
                .await?;
            Ok(http::chunk_stream(
                response,
                W::stream_parser(request),
                self.endpoint.redactor().clone(),
            ))
        })
    }

    /// What of `request` this provider cannot honour.
    pub(crate) fn check(&self, request: &ChatRequest) -> Result<(), Unsupported> {
        W::check(request, self.refused)
    }

    /// Embeds `request`'s texts, where this provider's API has an embeddings path (the
    /// OpenAI wire); elsewhere `unsupported: embeddings`.
    pub(crate) fn embed<'a>(
        &'a self,
        request: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        Box::pin(async move {
            self.check_embeddings(request).map_err(|u| u.to_error())?;
            #[cfg(any(feature = "openai", feature = "groq"))]
            {
                use super::embeddings_wire;
                let body = embeddings_wire::request_body(&self.model, request);
                let response = self
                    .endpoint
                    .post_embeddings(body, W::classify_status, request, &self.model)
                    .await?;
                let bytes = http::read_body(response).await?;
                embeddings_wire::parse(&bytes, request, &self.model)
                    .map_err(|e| self.endpoint.redactor().error(e))
            }
            #[cfg(not(any(feature = "openai", feature = "groq")))]
            Err(ProviderError::new(
                crate::ErrorKind::Unsupported,
                "unsupported: embeddings",
            ))
        })
    }

    /// Whether this provider serves embeddings.
    pub(crate) fn check_embeddings(&self, request: &EmbeddingRequest) -> Result<(), Unsupported> {
        let _ = request;
        let mut u = Unsupported::new();
        u.add_if(!self.endpoint.embeds(), "embeddings");
        u.into_result()
    }

    /// Redacted `Debug` for the public wrappers.
    pub(crate) fn debug(&self, type_name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(type_name)
            .field("name", &self.endpoint.name)
            .field("model", &self.model)
            .field("base_url", &self.endpoint.base_url())
            .field("api_key", self.endpoint.key())
            .field("config", &self.config)
            .field("connect_timeout", &self.endpoint.connect_timeout())
            .field("http_client", &self.endpoint.client_source())
            .finish()
    }
}
