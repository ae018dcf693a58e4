//! OpenAI's chat completions API, and any server that speaks it (vLLM, Ollama, Together,
//! OpenRouter, ...).

use super::http::{ApiKey, AuthScheme, Endpoint};
use super::openai_wire::OpenAiCore;
use super::{env_nonempty, http_provider_common};

/// OpenAI: `POST {base}/chat/completions` (and `{base}/embeddings`) with `Authorization: Bearer $OPENAI_API_KEY`.
///
/// The key comes from `OPENAI_API_KEY` and the base URL from `OPENAI_BASE_URL` (default
/// `https://api.openai.com/v1`), both read once here; `.api_key(..)` / `.base_url(..)` win.
/// Without a key every call fails with [`ErrorKind::Auth`](crate::ErrorKind::Auth), no
/// network involved.
pub struct OpenAiLlm {
    core: OpenAiCore,
}

impl OpenAiLlm {
    /// The public endpoint.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openai.com/v1";
    /// Where the key is read from.
    pub const API_KEY_ENV: &'static str = "OPENAI_API_KEY";
    /// Where a base URL override is read from.
    pub const BASE_URL_ENV: &'static str = "OPENAI_BASE_URL";

    /// A provider for `model`, configured from the environment.
    pub fn new(model: impl Into<String>) -> Self {
        let base =
            env_nonempty(Self::BASE_URL_ENV).unwrap_or_else(|| Self::DEFAULT_BASE_URL.into());
        OpenAiLlm {
            core: OpenAiCore::new(
                Endpoint::new(
                    "openai",
                    base,
                    "/chat/completions",
                    ApiKey::from_env(Self::API_KEY_ENV),
                    AuthScheme::Bearer,
                    &[],
                )
                .with_embeddings("/embeddings"),
                model,
            ),
        }
    }
}

http_provider_common!(OpenAiLlm);

/// Any OpenAI-compatible server: `POST {base}/chat/completions` (and `{base}/embeddings`), with a Bearer key only if
/// one is configured (`.api_key(..)` or `.api_key_env(..)`); local servers need none.
pub struct OpenAiCompatible {
    core: OpenAiCore,
}

impl OpenAiCompatible {
    /// A provider for `model` at `base_url` (the part before `/chat/completions`, e.g.
    /// `http://localhost:8000/v1`).
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiCompatible {
            core: OpenAiCore::new(
                Endpoint::new(
                    "openai-compatible",
                    base_url,
                    "/chat/completions",
                    ApiKey::None,
                    AuthScheme::Bearer,
                    &[],
                )
                .with_embeddings("/embeddings"),
                model,
            ),
        }
    }
}

http_provider_common!(OpenAiCompatible);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatRequest, ErrorKind, Provider};

    #[tokio::test]
    async fn missing_key_is_auth_naming_the_variable_without_network() {
        // Unroutable base: if a request were made it would be Connect, not Auth.
        let llm = OpenAiCompatible::new("http://127.0.0.1:9", "m")
            .api_key_env("BACKSTOP_TEST_UNSET_KEY_1");
        let e = llm.complete(&ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert_eq!(e.message, "BACKSTOP_TEST_UNSET_KEY_1 is not set");
        let e = llm.stream(&ChatRequest::user("hi")).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::Auth);
    }

    #[test]
    fn debug_redacts_the_key_and_defaults_apply() {
        let llm = OpenAiLlm::new("gpt-4o-mini")
            .api_key("sk-unit-test-secret")
            .base_url("http://127.0.0.1:1/v1/");
        let dbg = format!("{llm:?}");
        assert!(!dbg.contains("sk-unit-test-secret"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
        assert_eq!(Provider::name(&llm), "openai");
        assert_eq!(llm.current_base_url(), "http://127.0.0.1:1/v1");
        assert_eq!(llm.model(), "gpt-4o-mini");
        let c = OpenAiCompatible::new("http://x/v1", "m")
            .api_key("k")
            .api_key_env("NOPE_UNSET");
        assert!(
            format!("{c:?}").contains("REDACTED"),
            "explicit key must win"
        );
        assert_eq!(Provider::name(&c.name("vllm")), "vllm");
    }
}
