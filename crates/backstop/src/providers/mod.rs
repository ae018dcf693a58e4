//! HTTP providers: OpenAI, Anthropic, Groq and any OpenAI-compatible endpoint.
//!
//! Each provider holds one pooled HTTP client, reads its API key and base URL from the
//! environment once at construction (explicit builder values win), and classifies every
//! failure into an [`ErrorKind`](crate::ErrorKind). None of them retries or times out on its
//! own: that is the chain's job.
//!
//! ```no_run
//! use backstop::providers::OpenAiLlm;
//! use backstop::LlmConfig;
//!
//! let llm = OpenAiLlm::new("gpt-4o-mini").config(LlmConfig::new(0.2, 512));
//! ```

pub(crate) mod http;
pub mod sse;

#[cfg(any(feature = "openai", feature = "groq"))]
mod openai_wire;

#[cfg(feature = "anthropic")]
mod anthropic;
#[cfg(feature = "groq")]
mod groq;
#[cfg(feature = "openai")]
mod openai;

#[cfg(feature = "anthropic")]
pub use anthropic::AnthropicLlm;
#[cfg(feature = "groq")]
pub use groq::GroqLlm;
#[cfg(feature = "openai")]
pub use openai::{OpenAiCompatible, OpenAiLlm};
pub use sse::{SseDecoder, SseError, SseEvent};

/// The builder setters, redacted `Debug` and [`Provider`](crate::Provider) impl every HTTP
/// provider shares; the type has a `core` with `endpoint`, `model`, `config`,
/// `complete`, `stream` and `debug`.
macro_rules! http_provider_common {
    ($ty:ident) => {
        impl $ty {
            /// Default sampling settings; a request's own settings win over these.
            pub fn config(mut self, config: $crate::LlmConfig) -> Self {
                self.core.config = config;
                self
            }

            /// Sets the API key explicitly (wins over the environment variable).
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
            pub fn no_api_key(mut self) -> Self {
                self.core
                    .endpoint
                    .set_key($crate::providers::http::ApiKey::None);
                self
            }

            /// Sets the base URL explicitly (wins over the environment variable); trailing
            /// slashes are ignored.
            pub fn base_url(mut self, url: impl Into<String>) -> Self {
                self.core.endpoint.set_base_url(url);
                self
            }

            /// The provider's name in logs and results.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.endpoint.name = name.into();
                self
            }

            /// Time allowed to establish a connection (default 5 s). There is no overall
            /// request timeout here: the chain owns attempt timeouts.
            pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.core.endpoint.set_connect_timeout(timeout);
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
        }
    };
}
pub(crate) use http_provider_common;

/// The environment variable's value, when set and not blank.
pub(crate) fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}
