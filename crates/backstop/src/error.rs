//! Every failure a provider can give, and the one table that says what each one does.
//!
//! | kind | retry same provider | breaker | falls through |
//! |---|---|---|---|
//! | Timeout | no (a silent provider only doubles the wait) | failure | yes |
//! | Connect | yes | failure | yes |
//! | RateLimited | if `retry_after` ≤ cap and the deadline allows | not a failure: a rate-limit hold | yes |
//! | QuotaExhausted | no | failure | yes |
//! | Overloaded | yes | failure | yes |
//! | Server | yes | failure | yes |
//! | Auth | no | failure | yes |
//! | InvalidRequest | no | neutral | yes (configurable) |
//! | ContextLengthExceeded | no (never resent unchanged) | neutral | yes |
//! | ContentFiltered | no | neutral | no (configurable) |
//! | Protocol | yes | failure | yes |
//! | CircuitOpen | no | — | yes |
//! | Cancelled | no | neutral | no |
//! | LocalResource | no | neutral | yes |
//! | Unsupported | no (skipped without a call) | neutral | yes |
//!
//! "Configurable" rows follow the chain's [`FallThrough`] policy; Timeout retries can be
//! turned back on with [`RetryPolicy::retry_timeouts`](crate::RetryPolicy::retry_timeouts).

use std::fmt;
use std::time::Duration;

/// The longest provider message we keep; bodies can be huge and are not ours to echo in full.
pub const MAX_MESSAGE_LEN: usize = 512;

/// What went wrong, decided once where the error is made and acted on everywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Our timer fired: the attempt timeout, the request deadline, time to first token or stream idle.
    Timeout,
    /// Could not connect, connection reset, or another transport I/O failure.
    Connect,
    /// HTTP 429. `retry_after` is the provider's hint, when given.
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The account is out of credit or quota (OpenAI `insufficient_quota`, HTTP 402, Anthropic
    /// billing errors): every call fails until someone pays, so it is not a rate limit.
    QuotaExhausted,
    /// HTTP 503 or Anthropic's 529: the provider is shedding load.
    Overloaded,
    /// Any other 5xx.
    Server,
    /// HTTP 401/403 or a missing API key: every call will fail the same way.
    Auth,
    /// HTTP 400/404/422: the request itself is wrong for this provider.
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The provider refused the content.
    ContentFiltered,
    /// The provider answered with something we cannot read: malformed body, bad SSE, truncated stream.
    Protocol,
    /// The caller gave up (dropped the future). Neutral for breakers.
    Cancelled,
    /// The provider was skipped without a call because its circuit breaker is open.
    CircuitOpen,
    /// Our own process ran out of something before the provider was reached: file
    /// descriptors (EMFILE, ENFILE), memory, local ports or buffers, or the HTTP client was
    /// shutting down. Says nothing about the provider: neutral for breakers, not retried.
    LocalResource,
    /// The provider cannot honour a parameter of the request ([`crate::Provider::check`]): it
    /// was skipped without a call. Neutral, not retried, the next provider is tried.
    Unsupported,
}

/// What an outcome does to a provider's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerEffect {
    /// Counts as a failure in the window (and re-opens a half-open breaker).
    Failure,
    /// Says nothing about the provider's health; frees a half-open probe slot.
    Neutral,
}

/// Which of the configurable kinds try the next provider. Every other kind's behaviour is
/// fixed by the table in this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallThrough {
    /// `InvalidRequest` tries the next provider (default true: providers differ in what they accept).
    pub invalid_request: bool,
    /// `ContentFiltered` tries the next provider (default false: routing around a provider's
    /// safety refusal is a compliance decision, so by default the caller gets the refusal).
    pub content_filtered: bool,
}

impl Default for FallThrough {
    fn default() -> Self {
        Self {
            invalid_request: true,
            content_filtered: false,
        }
    }
}

impl ErrorKind {
    /// Whether another attempt on the same provider may help (subject to the retry policy and
    /// budget; for `RateLimited` the chain also checks `retry_after` against its cap).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect
                | ErrorKind::RateLimited { .. }
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Protocol
        )
    }

    /// The effect on the provider's breaker. A rate limit is neutral here: it puts the
    /// provider on a hold instead (see [`crate::RateLimitHold`]).
    pub fn breaker_effect(self) -> BreakerEffect {
        match self {
            ErrorKind::Timeout
            | ErrorKind::Connect
            | ErrorKind::QuotaExhausted
            | ErrorKind::Overloaded
            | ErrorKind::Server
            | ErrorKind::Auth
            | ErrorKind::Protocol => BreakerEffect::Failure,
            ErrorKind::RateLimited { .. }
            | ErrorKind::InvalidRequest
            | ErrorKind::ContextLengthExceeded
            | ErrorKind::ContentFiltered
            | ErrorKind::Cancelled
            | ErrorKind::CircuitOpen
            | ErrorKind::LocalResource
            | ErrorKind::Unsupported => BreakerEffect::Neutral,
        }
    }

    /// Whether the chain should try the next provider after this error.
    pub fn falls_through(self, policy: FallThrough) -> bool {
        match self {
            ErrorKind::Cancelled => false,
            ErrorKind::InvalidRequest => policy.invalid_request,
            ErrorKind::ContentFiltered => policy.content_filtered,
            _ => true,
        }
    }

    /// A short stable name for logs and metrics labels (`timeout`, `rate_limited`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server",
            ErrorKind::Auth => "auth",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContextLengthExceeded => "context_length_exceeded",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::LocalResource => "local_resource",
            ErrorKind::Unsupported => "unsupported",
        }
    }

    /// Maps an HTTP error status to a kind (body-specific codes are refined by the provider).
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> ErrorKind {
        match status {
            429 => ErrorKind::RateLimited { retry_after },
            402 => ErrorKind::QuotaExhausted,
            503 | 529 => ErrorKind::Overloaded,
            401 | 403 => ErrorKind::Auth,
            400 | 404 | 422 | 413 => ErrorKind::InvalidRequest,
            408 => ErrorKind::Timeout,
            500..=599 => ErrorKind::Server,
            // Other 4xx (and odd codes) are the request's fault as far as we can tell.
            _ => ErrorKind::InvalidRequest,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::RateLimited {
                retry_after: Some(d),
            } => {
                write!(f, "rate_limited (retry after {}ms)", d.as_millis())
            }
            k => f.write_str(k.as_str()),
        }
    }
}

/// A failure from one provider call, already classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ProviderError {
    /// What kind of failure this is; decides retry, breaker and fall-through.
    pub kind: ErrorKind,
    /// Human-readable detail: the provider's own message (truncated) or ours. Never holds secrets.
    pub message: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The provider's own id for the failed request (`x-request-id`, Anthropic's
    /// `request-id`), when it answered with one: what its support asks for.
    pub upstream_request_id: Option<String>,
}

impl ProviderError {
    /// An error of this kind with a message (truncated to [`MAX_MESSAGE_LEN`]).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message = message.into();
        truncate_message(&mut message);
        Self {
            kind,
            message,
            status: None,
            upstream_request_id: None,
        }
    }
    /// Attaches the HTTP status.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// Attaches the provider's id for the request.
    #[must_use]
    pub fn with_upstream_request_id(mut self, id: impl Into<String>) -> Self {
        self.upstream_request_id = Some(id.into());
        self
    }
    /// A timeout with this detail.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
    /// A protocol error (unreadable or truncated answer).
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }
    /// The error recorded for a provider skipped because its breaker is open.
    pub fn circuit_open() -> Self {
        Self::new(ErrorKind::CircuitOpen, "skipped: breaker open")
    }
}

/// One provider's part in a failed request: its last error, or why it was not called.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderFailure {
    /// The provider's name (its breaker's name).
    pub provider: String,
    /// Its last error; `CircuitOpen` when skipped; for a provider never reached, why not.
    pub error: ProviderError,
    /// True when the provider was called at least once for this request.
    pub attempted: bool,
}

impl ProviderFailure {
    /// A provider that was called and failed with `error`.
    pub fn attempted(provider: impl Into<String>, error: ProviderError) -> Self {
        Self {
            provider: provider.into(),
            error,
            attempted: true,
        }
    }
    /// A provider that was not called (skipped, or never reached); `error` says why.
    pub fn not_attempted(provider: impl Into<String>, error: ProviderError) -> Self {
        Self {
            provider: provider.into(),
            error,
            attempted: false,
        }
    }
}

/// Every provider in the chain failed or was not called. Lists every provider of the chain:
/// first those tried or skipped, in the request's order, then those never reached, with why.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub struct AllProvidersFailed {
    /// Each provider's error or reason, every provider of the chain once.
    pub errors: Vec<ProviderFailure>,
    /// Every attempt made, retries included.
    pub attempts: Vec<crate::Attempt>,
    /// True when the request's overall deadline ran out.
    pub deadline_exceeded: bool,
    /// How long until some provider of the chain will take a call again (its breaker half-opens
    /// or its rate-limit hold ends); `None` when one would take a call now.
    pub retry_after: Option<Duration>,
}

impl AllProvidersFailed {
    /// A failure record; `retry_after` unset.
    pub fn new(
        errors: Vec<ProviderFailure>,
        attempts: Vec<crate::Attempt>,
        deadline_exceeded: bool,
    ) -> Self {
        Self {
            errors,
            attempts,
            deadline_exceeded,
            retry_after: None,
        }
    }

    /// One kind that sums up the failure, used when a chain is itself a provider and to pick
    /// the gateway's status: the deadline → `Timeout`; only providers that were called count:
    /// all rate limited → `RateLimited` (the shortest hint); none called → `Overloaded`; all
    /// the same kind → that kind; else `Server`. Every provider skipped for a parameter it
    /// cannot honour → `Unsupported`.
    pub fn summary_kind(&self) -> ErrorKind {
        if self.deadline_exceeded {
            return ErrorKind::Timeout;
        }
        if !self.errors.is_empty()
            && self
                .errors
                .iter()
                .all(|f| f.error.kind == ErrorKind::Unsupported)
        {
            return ErrorKind::Unsupported;
        }
        let tried: Vec<ErrorKind> = self
            .errors
            .iter()
            .filter(|f| f.attempted)
            .map(|f| f.error.kind)
            .collect();
        let Some(first) = tried.first().copied() else {
            return ErrorKind::Overloaded;
        };
        if tried
            .iter()
            .all(|k| matches!(k, ErrorKind::RateLimited { .. }))
        {
            let retry_after = tried
                .iter()
                .filter_map(|k| match k {
                    ErrorKind::RateLimited { retry_after } => *retry_after,
                    _ => None,
                })
                .min();
            return ErrorKind::RateLimited { retry_after };
        }
        if tried.iter().all(|k| *k == first) {
            first
        } else {
            ErrorKind::Server
        }
    }

    /// True when the chain already retried or moved on (more than one attempt was made), so an
    /// immediate client-side retry would only repeat that work.
    pub fn retried(&self) -> bool {
        self.attempts
            .iter()
            .filter(|a| a.outcome != crate::AttemptOutcome::Skipped)
            .count()
            > 1
    }

    /// The parameters no provider could honour, when every provider was skipped for them
    /// (the union of each provider's, in order); empty otherwise.
    pub fn unsupported_params(&self) -> Vec<String> {
        if self.summary_kind() != ErrorKind::Unsupported {
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for f in &self.errors {
            let list = f
                .error
                .message
                .strip_prefix("unsupported: ")
                .unwrap_or_default();
            for p in list.split(", ").filter(|p| !p.is_empty()) {
                if !out.iter().any(|o| o == p) {
                    out.push(p.to_owned());
                }
            }
        }
        out
    }

    /// The summary as a single provider error (for chains nested as providers).
    pub fn to_provider_error(&self) -> ProviderError {
        ProviderError::new(self.summary_kind(), self.to_string())
    }
}

impl fmt::Display for AllProvidersFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} providers failed", self.errors.len())?;
        if self.deadline_exceeded {
            f.write_str(" (request deadline exceeded)")?;
        }
        for failure in &self.errors {
            if failure.attempted || failure.error.kind == ErrorKind::CircuitOpen {
                write!(f, "\n  {}: {}", failure.provider, failure.error)?;
            } else {
                write!(f, "\n  {}: {}", failure.provider, failure.error.message)?;
            }
        }
        Ok(())
    }
}

/// Cuts `s` to at most [`MAX_MESSAGE_LEN`] bytes on a char boundary, marking the cut.
fn truncate_message(s: &mut String) {
    if s.len() > MAX_MESSAGE_LEN {
        let mut end = MAX_MESSAGE_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let e = ProviderError::new(ErrorKind::Server, "é".repeat(600));
        assert!(e.message.len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
        assert!(e.message.ends_with('…'));
    }

    #[test]
    fn display_names_kind_status_and_message() {
        let e = ProviderError::new(ErrorKind::Overloaded, "try later").with_status(529);
        assert_eq!(e.to_string(), "overloaded (HTTP 529): try later");
    }

    #[test]
    fn status_mapping_follows_the_table() {
        assert_eq!(ErrorKind::from_status(503, None), ErrorKind::Overloaded);
        assert_eq!(ErrorKind::from_status(529, None), ErrorKind::Overloaded);
        assert_eq!(ErrorKind::from_status(500, None), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(401, None), ErrorKind::Auth);
        assert_eq!(ErrorKind::from_status(403, None), ErrorKind::Auth);
        assert_eq!(ErrorKind::from_status(422, None), ErrorKind::InvalidRequest);
        assert_eq!(ErrorKind::from_status(402, None), ErrorKind::QuotaExhausted);
        let d = Some(Duration::from_secs(3));
        assert_eq!(
            ErrorKind::from_status(429, d),
            ErrorKind::RateLimited { retry_after: d }
        );
    }
}
