//! The record of one call (or skip) the chain made on the way to an answer.

use std::time::Duration;

use crate::ProviderError;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The provider answered.
    Success,
    /// The provider was called and failed.
    Failed,
    /// The provider was not called: its breaker is open.
    Skipped,
    /// The call was abandoned because a hedged attempt answered first (neutral for its breaker).
    Cancelled,
}

impl AttemptOutcome {
    /// `success`, `failed` or `skipped`, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Skipped => "skipped",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

/// One attempt on one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The provider's name (its breaker's name).
    pub provider: String,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The error, for failed and skipped attempts.
    pub error: Option<ProviderError>,
    /// Time spent on the attempt (for streams: until the first content chunk).
    pub latency: Duration,
    /// The provider's own id for this call (`x-request-id`, Anthropic's `request-id`), when
    /// it sent one — on answers and on errors alike.
    pub upstream_request_id: Option<String>,
}

impl Attempt {
    /// The record of one attempt.
    pub fn new(
        provider: impl Into<String>,
        outcome: AttemptOutcome,
        error: Option<ProviderError>,
        latency: Duration,
    ) -> Self {
        Self {
            provider: provider.into(),
            outcome,
            error,
            latency,
            upstream_request_id: None,
        }
    }

    /// With the provider's id for the call.
    #[must_use]
    pub fn with_upstream_request_id(mut self, id: impl Into<String>) -> Self {
        self.upstream_request_id = Some(id.into());
        self
    }
}
