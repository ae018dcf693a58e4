//! The long tail of a chat request: structured output and the parameters that not every
//! provider honours. Each provider says which it cannot serve ([`crate::Provider::check`]);
//! the chain skips those providers for the request instead of dropping the parameter.

/// How the answer must be shaped.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any JSON object (OpenAI JSON mode).
    JsonObject,
    /// JSON valid against `schema`.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// OpenAI `strict`.
        strict: Option<bool>,
        /// What the output is, for the model.
        description: Option<String>,
    },
}

/// Which wire format a request came in, for parameters backstop does not model itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiFormat {
    /// OpenAI chat completions (OpenAI, Groq, compatible servers).
    OpenAi,
    /// Anthropic messages.
    Anthropic,
}

/// Parameters beyond sampling. `None` / empty means not asked for. Providers translate what
/// they can, pass through what their API takes as is, and refuse the rest by name.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Params {
    /// Deterministic sampling seed (OpenAI).
    pub seed: Option<i64>,
    /// Penalty for tokens by how often they appeared (OpenAI, -2..2).
    pub frequency_penalty: Option<f32>,
    /// Penalty for tokens that appeared at all (OpenAI, -2..2).
    pub presence_penalty: Option<f32>,
    /// Token id → bias (OpenAI `logit_bias`).
    pub logit_bias: Option<serde_json::Map<String, serde_json::Value>>,
    /// Return log probabilities (OpenAI).
    pub logprobs: Option<bool>,
    /// How many top log probabilities per token (OpenAI).
    pub top_logprobs: Option<u32>,
    /// The end user's id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// How many choices (only 1 is served).
    pub n: Option<u32>,
    /// Reasoning effort (OpenAI `reasoning_effort`).
    pub reasoning_effort: Option<String>,
    /// Key-value tags (OpenAI `metadata`).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Store the completion (OpenAI `store`).
    pub store: Option<bool>,
    /// Service tier (OpenAI `auto`/`default`/`flex`/`priority`; Anthropic `auto`/`standard_only`).
    pub service_tier: Option<String>,
    /// Sample from the top K tokens only (Anthropic `top_k`).
    pub top_k: Option<u32>,
    /// Top-level fields of the inbound request that backstop does not model, with the wire
    /// format they came in: sent verbatim to providers of that format, refused by others.
    pub extra: Option<(ApiFormat, serde_json::Map<String, serde_json::Value>)>,
}

impl Params {
    /// Every parameter set here, by its OpenAI name (or the field's own name for extras).
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            ("seed", self.seed.is_some()),
            ("frequency_penalty", self.frequency_penalty.is_some()),
            ("presence_penalty", self.presence_penalty.is_some()),
            ("logit_bias", self.logit_bias.is_some()),
            ("logprobs", self.logprobs == Some(true)),
            ("top_logprobs", self.top_logprobs.is_some()),
            ("user", self.user.is_some()),
            ("n", self.n.is_some_and(|n| n != 1)),
            ("reasoning_effort", self.reasoning_effort.is_some()),
            ("metadata", self.metadata.is_some()),
            ("store", self.store.is_some()),
            ("service_tier", self.service_tier.is_some()),
            ("top_k", self.top_k.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| n.to_owned())
        .collect();
        if let Some((_, extra)) = &self.extra {
            out.extend(extra.keys().cloned());
        }
        out
    }
}
