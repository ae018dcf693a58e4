//! What comes back: whole completions and streamed chunks.

use crate::{ToolCall, ToolCallDelta};

/// Token counts reported by the provider. Counts the provider did not report are `None`,
/// never a made-up zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens, all of them (cached and cache-written ones included).
    pub input_tokens: u32,
    /// Generated tokens, all of them (reasoning included).
    pub output_tokens: u32,
    /// Prompt tokens served from the provider's prompt cache (OpenAI
    /// `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`).
    pub cached_input_tokens: Option<u32>,
    /// Prompt tokens written to the provider's prompt cache (Anthropic
    /// `cache_creation_input_tokens`; OpenAI has no such count).
    pub cache_write_input_tokens: Option<u32>,
    /// Generated tokens spent on reasoning (OpenAI `completion_tokens_details.reasoning_tokens`).
    pub reasoning_tokens: Option<u32>,
}

impl Usage {
    /// Prompt and generated token counts, no details.
    pub fn new(input_tokens: u32, output_tokens: u32) -> Self {
        Self {
            input_tokens,
            output_tokens,
            ..Self::default()
        }
    }

    /// With the count of prompt tokens read from the cache.
    #[must_use]
    pub fn cached_input(mut self, tokens: Option<u32>) -> Self {
        self.cached_input_tokens = tokens;
        self
    }

    /// With the count of prompt tokens written to the cache.
    #[must_use]
    pub fn cache_write_input(mut self, tokens: Option<u32>) -> Self {
        self.cache_write_input_tokens = tokens;
        self
    }

    /// With the count of reasoning tokens.
    #[must_use]
    pub fn reasoning(mut self, tokens: Option<u32>) -> Self {
        self.reasoning_tokens = tokens;
        self
    }

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
    /// The provider's content filter cut the answer, or the model refused (`refusal`).
    ContentFilter,
    /// The model asked to call a tool.
    ToolCalls,
    /// A provider-specific reason (`pause_turn`, `abort`, ...), kept verbatim; see
    /// [`as_openai_str`](Self::as_openai_str) for the OpenAI value it is sent as.
    Other(String),
}

impl FinishReason {
    /// The OpenAI wire value, always one of OpenAI's: `stop`, `length`, `tool_calls` or
    /// `content_filter`. Provider-specific reasons are mapped: the ones that mean the answer
    /// is unfinished (`pause_turn`, `abort`, `model_context_window_exceeded`, ...) are
    /// `length`, the safety ones `content_filter`, tool use `tool_calls`, anything else `stop`.
    pub fn as_openai_str(&self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(raw) => openai_equivalent(raw),
        }
    }

    /// The provider's own value for [`Other`](Self::Other), the OpenAI value otherwise (for logs).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Other(raw) => raw,
            known => known.as_openai_str(),
        }
    }
}

/// The OpenAI finish reason closest to a provider-specific one.
fn openai_equivalent(raw: &str) -> &'static str {
    match raw.to_ascii_lowercase().as_str() {
        "length"
        | "max_tokens"
        | "max_output_tokens"
        | "model_length"
        | "pause_turn"
        | "abort"
        | "aborted"
        | "cancelled"
        | "error"
        | "model_context_window_exceeded"
        | "incomplete" => "length",
        "content_filter" | "content_filtered" | "refusal" | "safety" | "recitation"
        | "blocklist" | "prohibited_content" | "spii" => "content_filter",
        "tool_calls" | "tool_use" | "function_call" => "tool_calls",
        _ => "stop",
    }
}

/// A whole answer from one provider.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// The model that answered, as the provider reports it.
    pub model: String,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
    /// Why generation stopped, when reported.
    pub finish_reason: Option<FinishReason>,
    /// The model's refusal message, when it declined to answer (OpenAI `message.refusal`).
    pub refusal: Option<String>,
    /// The tool calls the model made (finish reason `ToolCalls`).
    pub tool_calls: Vec<ToolCall>,
    /// The provider's own id for the request (`x-request-id`, Anthropic's `request-id`).
    pub upstream_request_id: Option<String>,
}

impl Completion {
    /// A completion with just text and model.
    pub fn new(text: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            model: model.into(),
            usage: None,
            finish_reason: Some(FinishReason::Stop),
            refusal: None,
            tool_calls: Vec::new(),
            upstream_request_id: None,
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
    /// A piece of the model's refusal message (OpenAI `delta.refusal`).
    pub refusal: Option<String>,
    /// Fragments of tool calls.
    pub tool_calls: Vec<ToolCallDelta>,
    /// The provider's own id for the request, on the first chunk of its stream (HTTP
    /// providers read it from the response headers).
    pub upstream_request_id: Option<String>,
}

impl Chunk {
    /// A chunk carrying a text delta.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
    /// A chunk carrying one tool-call fragment.
    pub fn tool_call(delta: ToolCallDelta) -> Self {
        Self {
            tool_calls: vec![delta],
            ..Self::default()
        }
    }
    /// True when the chunk carries generated text, refusal text or a tool-call fragment (the
    /// streaming commit point).
    pub fn is_content(&self) -> bool {
        !self.text.is_empty()
            || self.refusal.as_deref().is_some_and(|r| !r.is_empty())
            || !self.tool_calls.is_empty()
    }
}

/// A successful answer from a chain, with the story of how it was obtained.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// The model's refusal message, when it declined to answer.
    pub refusal: Option<String>,
    /// The tool calls the model made.
    pub tool_calls: Vec<ToolCall>,
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
            refusal: completion.refusal,
            tool_calls: completion.tool_calls,
            attempts,
        }
    }

    /// The answer without the attempt record (the answering attempt's upstream id kept).
    pub fn into_completion(self) -> Completion {
        let upstream_request_id = self
            .attempts
            .iter()
            .rev()
            .find(|a| a.outcome == crate::AttemptOutcome::Success)
            .and_then(|a| a.upstream_request_id.clone());
        Completion {
            text: self.text,
            model: self.model,
            usage: self.usage,
            finish_reason: self.finish_reason,
            refusal: self.refusal,
            tool_calls: self.tool_calls,
            upstream_request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_sent_are_always_openai_values() {
        let openai = [
            "stop",
            "length",
            "tool_calls",
            "content_filter",
            "function_call",
        ];
        for raw in [
            "pause_turn",
            "abort",
            "refusal",
            "tool_use",
            "SAFETY",
            "end_turn",
            "weird",
            "",
        ] {
            let r = FinishReason::Other(raw.to_owned());
            assert!(openai.contains(&r.as_openai_str()), "{raw}");
            assert_eq!(r.as_str(), raw, "the original is kept");
        }
        assert_eq!(
            FinishReason::Other("pause_turn".into()).as_openai_str(),
            "length"
        );
        assert_eq!(
            FinishReason::Other("abort".into()).as_openai_str(),
            "length"
        );
        assert_eq!(
            FinishReason::Other("SAFETY".into()).as_openai_str(),
            "content_filter"
        );
        assert_eq!(FinishReason::Other("weird".into()).as_openai_str(), "stop");
        assert_eq!(FinishReason::Length.as_str(), "length");
    }

    #[test]
    fn a_refusal_chunk_is_content() {
        let c = Chunk {
            refusal: Some("I can't help with that.".into()),
            ..Chunk::default()
        };
        assert!(c.is_content());
        assert!(!Chunk::default().is_content());
    }
}
