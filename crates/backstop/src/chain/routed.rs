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
}
