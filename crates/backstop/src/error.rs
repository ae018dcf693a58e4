//! Every failure a provider can give, and the one table that says what each one does.
//!
//! | kind | retry same provider | counts against breaker | falls through |
//! |---|---|---|---|
//! | Timeout | yes | yes | yes |
//! | Connect | yes | yes | yes |
//! | RateLimited | only if `retry_after` ≤ cap | no: cooldown for `retry_after`, else a failure | yes |
//! | Overloaded | yes | yes | yes |
//! | Server | yes | yes | yes |
//! | Auth | no | yes | yes |
//! | InvalidRequest | no | no | yes (configurable) |
//! | ContextLengthExceeded | no | no | yes |
//! | ContentFiltered | no | no | yes |
//! | Protocol | yes | yes | yes |
//! | Cancelled | no | no (neutral) | no |
//! | CircuitOpen | no | no | yes |
//! | LocalResource | no | no (neutral) | yes |

use std::fmt;
use std::time::Duration;

/// The longest provider message we keep; bodies can be huge and are not ours to echo in full.
pub const MAX_MESSAGE_LEN: usize = 512;

/// What went wrong, decided once where the error is made and acted on everywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

/// What an outcome does to a provider's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerEffect {
    /// Counts as a failure in the window (and re-opens a half-open breaker).
    Failure,
    /// Opens the breaker for this long (rate-limit cooldown); not counted as a failure.
    Cooldown(Duration),
    /// Leaves the breaker as it is; frees a half-open probe slot.
    Neutral,
}

impl ErrorKind {
    /// Whether another attempt on the same provider may help (subject to the retry budget;
    /// for `RateLimited` the chain also checks `retry_after` against its cap).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Connect
                | ErrorKind::RateLimited { .. }
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Protocol
        )
    }

    /// The effect on the provider's breaker.
    pub fn breaker_effect(self) -> BreakerEffect {
        match self {
            ErrorKind::Timeout
            | ErrorKind::Connect
            | ErrorKind::Overloaded
            | ErrorKind::Server
            | ErrorKind::Auth
            | ErrorKind::Protocol => BreakerEffect::Failure,
            ErrorKind::RateLimited {
                retry_after: Some(d),
            } => BreakerEffect::Cooldown(d),
            ErrorKind::RateLimited { retry_after: None } => BreakerEffect::Failure,
            ErrorKind::InvalidRequest
            | ErrorKind::ContextLengthExceeded
            | ErrorKind::ContentFiltered
            | ErrorKind::Cancelled
            | ErrorKind::CircuitOpen
            | ErrorKind::LocalResource => BreakerEffect::Neutral,
        }
    }

    /// Whether the chain should try the next provider after this error.
    /// `InvalidRequest` falls through unless the chain is configured otherwise.
    pub fn falls_through(self, invalid_request_falls_through: bool) -> bool {
        match self {
            ErrorKind::Cancelled => false,
            ErrorKind::InvalidRequest => invalid_request_falls_through,
            _ => true,
        }
    }

    /// A short stable name for logs and metrics labels (`timeout`, `rate_limited`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::RateLimited { .. } => "rate_limited",
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
        }
    }

    /// Maps an HTTP error status to a kind (body-specific codes are refined by the provider).
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> ErrorKind {
        match status {
            429 => ErrorKind::RateLimited { retry_after },
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
        }
    }
    /// Attaches the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
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

/// One provider's part in a failed request: its last error, or why it was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    /// The provider's name (its breaker's name).
    pub provider: String,
    /// Its last error; `CircuitOpen` when skipped.
    pub error: ProviderError,
}

/// Every provider in the chain failed or was skipped. Holds each one's error, in the order tried.
#[derive(Debug, Clone, thiserror::Error)]
pub struct AllProvidersFailed {
    /// Each provider's error, in the order they were tried; skipped providers included.
    pub errors: Vec<ProviderFailure>,
    /// Every attempt made, retries included.
    pub attempts: Vec<crate::Attempt>,
    /// True when the request's overall deadline ran out.
    pub deadline_exceeded: bool,
}

impl AllProvidersFailed {
    /// One kind that sums up the failure, used when a chain is itself a provider and to pick
    /// the gateway's status: the deadline → `Timeout`; all rate limited → `RateLimited` (the
    /// shortest hint); all skipped → `Overloaded`; all the same kind → that kind; else `Server`.
    pub fn summary_kind(&self) -> ErrorKind {
        if self.deadline_exceeded {
            return ErrorKind::Timeout;
        }
        let tried: Vec<ErrorKind> = self
            .errors
            .iter()
            .map(|f| f.error.kind)
            .filter(|k| *k != ErrorKind::CircuitOpen)
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
            write!(f, "\n  {}: {}", failure.provider, failure.error)?;
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
        let d = Some(Duration::from_secs(3));
        assert_eq!(
            ErrorKind::from_status(429, d),
            ErrorKind::RateLimited { retry_after: d }
        );
    }
}
