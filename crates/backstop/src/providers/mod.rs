//! HTTP providers: OpenAI, Anthropic, Groq and any OpenAI-compatible endpoint.
//!
//! Providers share one pooled HTTP client per process and runtime (or use yours:
//! `.http_client(..)`, see [`HttpClient`]). Each reads its API key and base URL from the
//! environment once at construction (explicit builder values win) and classifies every
//! failure into an [`ErrorKind`](crate::ErrorKind). None of them retries or times out on its
//! own: that is the chain's job.
//!
//! ```no_run
//! use backstop::providers::OpenAiLlm;
//! use backstop::LlmConfig;
//!
//! let llm = OpenAiLlm::new("gpt-4o-mini").config(LlmConfig::new(0.2, 512));
//! ```

mod client;
mod core;
mod direct;
mod h1;
mod h1_body;
pub(crate) mod http;
mod json_text;
mod outgoing;
mod pool;
mod ratelimit;
mod redact;
mod sse;
mod upstream;

#[cfg(any(feature = "openai", feature = "groq"))]
mod embeddings_wire;
#[cfg(any(feature = "openai", feature = "groq"))]
mod openai_request;
#[cfg(any(feature = "openai", feature = "groq"))]
mod openai_wire;

#[cfg(feature = "anthropic")]
mod anthropic;
#[cfg(feature = "anthropic")]
mod anthropic_request;
#[cfg(feature = "groq")]
mod groq;
#[cfg(feature = "openai")]
mod openai;

#[cfg(feature = "anthropic")]
pub use anthropic::AnthropicLlm;
#[cfg(feature = "groq")]
pub use groq::GroqLlm;
pub use http::from_json_body;
pub use json_text::push_json_str;
#[cfg(feature = "openai")]
pub use openai::{OpenAiCompatible, OpenAiLlm};
/// The strict JSON cursor the completion and chunk scanners read with, for the gateway's
/// request scanner: it reads as serde_json does, or answers `None`.
#[cfg(any(feature = "openai", feature = "groq"))]
#[doc(hidden)]
pub use openai_wire::json_cursor::Cursor as JsonCursor;
pub use ratelimit::MAX_HINT;
pub use redact::escape_controls;

pub use client::HttpClient;

/// The builder setters, redacted `Debug` and [`Provider`](crate::Provider) impl every HTTP
/// provider shares; the type has a `core` with `endpoint`, `model`, `config`,
/// `complete`, `stream` and `debug`.
macro_rules! http_provider_common {
    ($ty:ident) => {
        impl $ty {
            /// Default sampling settings; a request's own settings win over these.
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn config(mut self, config: $crate::LlmConfig) -> Self {
                self.core.config = config;
                self
            }

            /// Sets the API key explicitly (wins over the environment variable).
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn api_key(mut self, key: impl Into<String>) -> Self {
                self.core
                    .endpoint
                    .set_key($crate::providers::http::ApiKey::Explicit(
                        secrecy::SecretString::from(key.into()),
                    ));
                self
            }

            /// Reads the key from this environment variable, now, instead of the default one.
            /// A key set with `.api_key(..)` wins; if the variable is unset, every call fails
            /// with `Auth` naming it, without a network call.
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn api_key_env(mut self, var: impl Into<String>) -> Self {
                if !matches!(
                    self.core.endpoint.key(),
                    $crate::providers::http::ApiKey::Explicit(_)
                ) {
                    self.core
                        .endpoint
                        .set_key($crate::providers::http::ApiKey::from_env(var));
                }
                self
            }

            /// Sends no key at all (for local servers that need none).
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn no_api_key(mut self) -> Self {
                self.core
                    .endpoint
                    .set_key($crate::providers::http::ApiKey::None);
                self
            }

            /// Sets the base URL explicitly (wins over the environment variable); trailing
            /// slashes are ignored.
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn base_url(mut self, url: impl Into<String>) -> Self {
                self.core.endpoint.set_base_url(url);
                self
            }

            /// The provider's name in logs and results.
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.endpoint.name = name.into();
                self
            }

            /// Time allowed to establish a connection (default 5 s). There is no overall
            /// request timeout here: the chain owns attempt timeouts. Providers with the same
            /// connect timeout share one connection pool per process. It configures backstop's
            /// own client only: combined with [`http_client`](Self::http_client), every call
            /// fails with `InvalidRequest` saying so (set it on your client instead).
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.core.endpoint.set_connect_timeout(timeout);
                self
            }

            /// Sends with the caller's HTTP client instead of the shared pool: a
            /// [`reqwest::Client`] (proxies, custom CA roots, mTLS, default headers) or,
            /// with the `reqwest-middleware` feature, a
            /// `reqwest_middleware::ClientWithMiddleware` (tracing and other middleware).
            /// See [`HttpClient`]($crate::providers::HttpClient) for what the client should
            /// not do (follow redirects, retry, time out).
            #[must_use = "this returns the changed value; the original is consumed"]
            pub fn http_client(mut self, client: impl Into<$crate::providers::HttpClient>) -> Self {
                self.core.endpoint.set_client(client.into());
                self
            }

            /// The model sent with every request.
            pub fn model(&self) -> &str {
                &self.core.model
            }

            /// The base URL in use (after environment and explicit overrides).
            pub fn current_base_url(&self) -> &str {
                self.core.endpoint.base_url()
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.core.debug(stringify!($ty), f)
            }
        }

        impl $crate::Provider for $ty {
            fn name(&self) -> &str {
                &self.core.endpoint.name
            }

            fn model(&self) -> Option<&str> {
                Some(&self.core.model)
            }

            fn complete<'a>(
                &'a self,
                request: &'a $crate::ChatRequest,
            ) -> $crate::BoxFuture<'a, Result<$crate::Completion, $crate::ProviderError>> {
                self.core.complete(request)
            }

            fn stream<'a>(
                &'a self,
                request: &'a $crate::ChatRequest,
            ) -> $crate::BoxFuture<'a, Result<$crate::ChunkStream, $crate::ProviderError>> {
                self.core.stream(request)
            }

            fn check(&self, request: &$crate::ChatRequest) -> Result<(), $crate::Unsupported> {
                self.core.check(request)
            }

            fn embed<'a>(
                &'a self,
                request: &'a $crate::EmbeddingRequest,
            ) -> $crate::BoxFuture<'a, Result<$crate::Embeddings, $crate::ProviderError>> {
                self.core.embed(request)
            }

            fn check_embeddings(
                &self,
                request: &$crate::EmbeddingRequest,
            ) -> Result<(), $crate::Unsupported> {
                self.core.check_embeddings(request)
            }
        }
    };
}
pub(crate) use http_provider_common;

/// The environment variable's value, when set and not blank.
pub(crate) fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// Entry points for the fuzz targets in `fuzz/` and the corpus replay tests: the wire parsers
/// behind the providers, fed raw bytes. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use super::sse::SseDecoder;
    pub use super::sse::{SseError, SseEvent};
    #[cfg(any(feature = "openai", feature = "groq", feature = "anthropic"))]
    use {
        super::http::{Next, SseChunks, StreamParser},
        crate::{Chunk, Completion, ProviderError},
    };

    /// Decodes `chunks` pushed one after another; every event, then the error that stopped
    /// the decoder (if any) and whether an event was left unfinished.
    pub fn decode_sse<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<SseEvent>, Option<SseError>, bool) {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            loop {
                match decoder.next_event() {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => break,
                    Err(e) => return (events, Some(e), decoder.has_partial()),
                }
            }
        }
        let partial = decoder.has_partial();
        (events, None, partial)
    }

    /// How a parsed stream ended.
    #[cfg(any(feature = "openai", feature = "groq", feature = "anthropic"))]
    #[derive(Debug, Clone, PartialEq)]
    pub enum StreamEnd {
        /// The terminal marker arrived.
        Done,
        /// An in-band error or an unreadable event.
        Failed(ProviderError),
        /// The bytes ran out first (`true`: mid-event).
        Truncated(bool),
    }

    /// The chunks a stream yielded and how it ended.
    #[cfg(any(feature = "openai", feature = "groq", feature = "anthropic"))]
    #[derive(Debug, Clone, PartialEq)]
    pub struct StreamOutcome {
        /// Chunks in order.
        pub chunks: Vec<Chunk>,
        /// Why it stopped.
        pub end: StreamEnd,
    }

    /// Drives `parser` through the providers' own SSE-to-chunk machine over `chunks` of body bytes.
    #[cfg(any(feature = "openai", feature = "groq", feature = "anthropic"))]
    fn drive<'a, P: StreamParser>(
        parser: P,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> StreamOutcome {
        let mut machine = SseChunks::new(parser);
        let mut out = Vec::new();
        for bytes in chunks {
            machine.push(bytes);
            loop {
                match machine.next() {
                    Next::Item(Ok(c)) => out.push(c),
                    Next::Item(Err(e)) => {
                        return StreamOutcome {
                            chunks: out,
                            end: StreamEnd::Failed(e),
                        };
                    }
                    Next::End => {
                        return StreamOutcome {
                            chunks: out,
                            end: StreamEnd::Done,
                        };
                    }
                    Next::NeedBytes => break,
                }
            }
        }
        let partial = machine.has_partial();
        let end = match machine.end_of_body() {
            Next::Item(Err(_)) => StreamEnd::Truncated(partial),
            _ => StreamEnd::Done,
        };
        StreamOutcome { chunks: out, end }
    }

    /// OpenAI: a 2xx chat-completion body.
    #[cfg(any(feature = "openai", feature = "groq"))]
    pub fn parse_openai_completion(body: &[u8]) -> Result<Completion, ProviderError> {
        super::openai_wire::parse_completion(body, "fuzz-model")
    }

    /// OpenAI: an error status with this body.
    #[cfg(any(feature = "openai", feature = "groq"))]
    pub fn classify_openai_error(status: u16, body: &[u8]) -> ProviderError {
        super::openai_wire::classify_status(status, None, body)
    }

    /// OpenAI: an SSE body delivered in `chunks`.
    #[cfg(any(feature = "openai", feature = "groq"))]
    pub fn parse_openai_stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> StreamOutcome {
        drive(super::openai_wire::OpenAiStream::default(), chunks)
    }

    /// Anthropic: a 2xx message body.
    #[cfg(feature = "anthropic")]
    pub fn parse_anthropic_message(body: &[u8]) -> Result<Completion, ProviderError> {
        super::anthropic::parse_message(body, "fuzz-model", false)
    }

    /// Anthropic: an error status with this body.
    #[cfg(feature = "anthropic")]
    pub fn classify_anthropic_error(status: u16, body: &[u8]) -> ProviderError {
        super::anthropic::classify_status(status, None, body)
    }

    /// Anthropic: an SSE body delivered in `chunks`.
    #[cfg(feature = "anthropic")]
    pub fn parse_anthropic_stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> StreamOutcome {
        drive(super::anthropic::AnthropicStream::default(), chunks)
    }
}
