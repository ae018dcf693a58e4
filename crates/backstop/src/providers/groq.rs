//! Groq: the OpenAI wire format at `/openai/v1/chat/completions`.

use super::http::{ApiKey, AuthScheme, Endpoint};
use super::openai_wire::OpenAiCore;
use super::{env_nonempty, http_provider_common};

/// Groq: `POST {base}/openai/v1/chat/completions` with `Authorization: Bearer $GROQ_API_KEY`.
///
/// The key comes from `GROQ_API_KEY` and the base URL from `GROQ_BASE_URL` (default
/// `https://api.groq.com`), read once here; explicit builder values win.
pub struct GroqLlm {
    core: OpenAiCore,
}

impl GroqLlm {
    /// The public endpoint.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.groq.com";
    /// Where the key is read from.
    pub const API_KEY_ENV: &'static str = "GROQ_API_KEY";
    /// Where a base URL override is read from.
    pub const BASE_URL_ENV: &'static str = "GROQ_BASE_URL";

    /// What Groq's OpenAI-compatible API answers with a 400 (its documented list; `n > 1` and
    /// log probabilities are refused by every OpenAI-wire provider here).
    pub const REFUSED: &'static [&'static str] = &["logit_bias", "messages[].name"];

    /// A provider for `model`, configured from the environment.
    pub fn new(model: impl Into<String>) -> Self {
        let base =
            env_nonempty(Self::BASE_URL_ENV).unwrap_or_else(|| Self::DEFAULT_BASE_URL.into());
        let mut core = OpenAiCore::new(
            Endpoint::new(
                "groq",
                base,
                "/openai/v1/chat/completions",
                ApiKey::from_env(Self::API_KEY_ENV),
                AuthScheme::Bearer,
                &[],
            ),
            model,
        );
        core.refused = Self::REFUSED;
        GroqLlm { core }
    }
}

http_provider_common!(GroqLlm);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Provider;

    #[test]
    fn defaults_and_redaction() {
        let g = GroqLlm::new("llama-3.1-8b-instant").api_key("gsk_unit_secret");
        assert_eq!(Provider::name(&g), "groq");
        assert!(!format!("{g:?}").contains("gsk_unit_secret"));
    }
}
