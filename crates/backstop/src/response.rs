//! What comes back: whole completions and streamed chunks.

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
}

impl Usage {
    /// Prompt plus generated tokens.
    pub fn total(&self) -> u32 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Why the model stopped, mapped from each provider's own vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence (`stop`, `end_turn`, `stop_sequence`).
    Stop,
    /// Hit `max_tokens` (`length`, `max_tokens`).
    Length,
    /// The provider's content filter cut the answer.
    ContentFilter,
    /// The model asked to call a tool.
    ToolCalls,
    /// Anything else, kept verbatim.
    Other(String),
}

impl FinishReason {
    /// The OpenAI wire name (`stop`, `length`, `content_filter`, `tool_calls`, or the raw value).
    pub fn as_openai_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(s) => s,
        }
    }
}

/// A whole answer from one provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// The model that answered, as the provider reports it.
    pub model: String,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
    /// Why generation stopped, when reported.
    pub finish_reason: Option<FinishReason>,
}

impl Completion {
    /// A completion with just text and model.
    pub fn new(text: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            model: model.into(),
            usage: None,
            finish_reason: Some(FinishReason::Stop),
        }
    }
}

/// One piece of a streamed answer. Chunks with empty `text` carry only metadata
/// (usage, finish reason) and do not count as content for the streaming commit point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk {
    /// Text delta; may be empty.
    pub text: String,
    /// Token counts, usually on the last chunk.
    pub usage: Option<Usage>,
    /// Set on the chunk that ends generation.
    pub finish_reason: Option<FinishReason>,
    /// The answering model, when the provider says (usually on the first chunk).
    pub model: Option<String>,
    /// Unreadable events the provider's stream skipped before this chunk (they never reach
    /// the caller; the count is for metrics and logs).
    pub skipped_events: u32,
}

impl Chunk {
    /// A chunk carrying a text delta.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
    /// True when the chunk carries generated text (the streaming commit point).
    pub fn is_content(&self) -> bool {
        !self.text.is_empty()
    }
}

/// A successful answer from a chain, with the story of how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackResult {
    /// The generated text.
    pub text: String,
    /// The name of the breaker (provider) that answered.
    pub provider_used: String,
    /// The model that answered.
    pub model: String,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
    /// Every attempt, in order, including skips, failures and the success.
    pub attempts: Vec<crate::Attempt>,
}

impl FallbackResult {
    /// The answer `completion` from `provider_used`, after `attempts`.
    pub fn new(
        completion: Completion,
        provider_used: impl Into<String>,
        attempts: Vec<crate::Attempt>,
    ) -> Self {
        Self {
            text: completion.text,
            provider_used: provider_used.into(),
            model: completion.model,
            usage: completion.usage,
            finish_reason: completion.finish_reason,
            attempts,
        }
    }

    /// The answer without the attempt record.
    pub fn into_completion(self) -> Completion {
        Completion {
            text: self.text,
            model: self.model,
            usage: self.usage,
            finish_reason: self.finish_reason,
        }
    }
}
