//! What the run loop needs of a request, so chat and embedding requests share one loop
//! (breakers, holds, retries, deadlines, hedges) instead of two copies of it.

use std::time::Duration;

use crate::{ChatRequest, EmbeddingRequest, Provider, Unsupported};

/// A request a chain can route.
pub(crate) trait Routed: Sync {
    /// The request's own deadline, overriding the chain's.
    fn timeout(&self) -> Option<Duration>;
    /// Whether dropping the call counts as a timeout on the provider being tried.
    fn drop_counts_as_timeout(&self) -> bool;
    /// What of this request `provider` cannot honour (the chain skips it without a call).
    fn check(&self, provider: &dyn Provider) -> Result<(), Unsupported>;
    /// The GenAI `gen_ai.operation.name`: `chat` or `embeddings`.
    fn operation(&self) -> &'static str;
    /// The caller's request id, for the request span.
    fn request_id(&self) -> Option<&str>;
    /// The request's own sampling settings `(max_tokens, temperature, top_p)`, for the span.
    fn sampling(&self) -> (Option<u32>, Option<f32>, Option<f32>);
}

impl Routed for ChatRequest {
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn drop_counts_as_timeout(&self) -> bool {
        self.drop_counts_as_timeout
    }
    fn check(&self, provider: &dyn Provider) -> Result<(), Unsupported> {
        provider.check(self)
    }
    fn operation(&self) -> &'static str {
        "chat"
    }
    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    fn sampling(&self) -> (Option<u32>, Option<f32>, Option<f32>) {
        (
            self.config.max_tokens,
            self.config.temperature,
            self.config.top_p,
        )
    }
}

impl Routed for EmbeddingRequest {
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn drop_counts_as_timeout(&self) -> bool {
        self.drop_counts_as_timeout
    }
    fn check(&self, provider: &dyn Provider) -> Result<(), Unsupported> {
        provider.check_embeddings(self)
    }
    fn operation(&self) -> &'static str {
        "embeddings"
    }
    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    fn sampling(&self) -> (Option<u32>, Option<f32>, Option<f32>) {
        (None, None, None)
    }
}
