//! The parts of an incoming request the simulator looks at. Unknown fields are ignored;
//! missing ones get defaults (the simulator is lenient, real providers are not).

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Model echoed when the request names none.
pub(crate) const DEFAULT_MODEL: &str = "sim-model";

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub messages: Vec<WireMessage>,
    /// Anthropic's top-level system prompt.
    #[serde(default)]
    pub system: Option<Content>,
    /// Offered tools (OpenAI `{type, function: {name, parameters}}`, Anthropic
    /// `{name, input_schema}`).
    #[serde(default)]
    pub tools: Vec<WireTool>,
    #[serde(default)]
    pub tool_choice: Option<serde_json::Value>,
    /// OpenAI `parallel_tool_calls` (Anthropic: `tool_choice.disable_parallel_tool_use`).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// OpenAI structured output.
    #[serde(default)]
    pub response_format: Option<serde_json::Value>,
    /// Anthropic structured output (`{"format": {"type": "json_schema", "schema"}}`).
    #[serde(default)]
    pub output_config: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireTool {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input_schema: Option<serde_json::Value>,
    #[serde(default)]
    pub function: Option<WireFunction>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireFunction {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message body: a string or a list of parts (only `text` parts count).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<Part>),
    #[allow(dead_code)]
    Other(IgnoredAny),
}

#[derive(Debug, Deserialize)]
pub(crate) struct Part {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// A `tool_result` block's content: a string or text blocks.
    #[serde(default)]
    pub content: Option<Box<Content>>,
}

impl Content {
    fn for_each_text(&self, mut f: impl FnMut(&str)) {
        match self {
            Content::Text(s) => f(s),
            Content::Parts(parts) => parts.iter().filter_map(|p| p.text.as_deref()).for_each(f),
            Content::Other(_) => {}
        }
    }

    pub(crate) fn all_text(&self) -> String {
        let mut out = String::new();
        self.for_each_text(|t| out.push_str(t));
        out
    }

    fn first_text(&self) -> &str {
        match self {
            Content::Text(s) => s,
            Content::Parts(parts) => parts
                .iter()
                .find_map(|p| p.text.as_deref())
                .unwrap_or_default(),
            Content::Other(_) => "",
        }
    }
}

impl WireRequest {
    pub(crate) fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    pub(crate) fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// Words in every message and the system prompt, at least 1.
    pub(crate) fn input_tokens(&self) -> u64 {
        let mut words = 0u64;
        let mut count = |s: &str| words += s.split_whitespace().count() as u64;
        if let Some(system) = &self.system {
            system.for_each_text(&mut count);
        }
        for m in &self.messages {
            if let Some(c) = &m.content {
                c.for_each_text(&mut count);
            }
        }
        words.max(1)
    }

    /// A continuation request, as `(original prompt, partial answer)`: the conversation ends
    /// with the partial answer as an assistant message (prefill), or with that message followed
    /// by a user message quoting it (a request to continue from exactly there).
    pub(crate) fn continuation(&self) -> Option<(&str, &str)> {
        fn role(m: &WireMessage) -> Option<&str> {
            m.role.as_deref()
        }
        let text = |m: &WireMessage| m.content.as_ref().map(Content::all_text);
        let n = self.messages.len();
        let (assistant_at, last) = match self.messages.last() {
            Some(m) if role(m) == Some("assistant") => (n - 1, None),
            Some(m) if role(m) == Some("user") && n >= 2 => (n - 2, Some(m)),
            _ => return None,
        };
        let assistant = &self.messages[assistant_at];
        if role(assistant) != Some("assistant") {
            return None;
        }
        let partial = assistant.content.as_ref().map(Content::first_text)?;
        if partial.is_empty() {
            return None;
        }
        if let Some(ask) = last
            && !text(ask).is_some_and(|t| t.contains(partial))
        {
            return None;
        }
        let prompt = self.messages[..assistant_at]
            .iter()
            .rev()
            .find(|m| role(m) == Some("user"))
            .and_then(|m| m.content.as_ref())
            .map(Content::first_text)
            .unwrap_or_default();
        Some((prompt, partial))
    }

    /// True when the conversation ends with an assistant message (prefill).
    pub(crate) fn ends_with_assistant(&self) -> bool {
        self.messages
            .last()
            .is_some_and(|m| m.role.as_deref() == Some("assistant"))
    }

    /// Text of the last `user` message (its first text part), or "".
    pub(crate) fn last_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role.as_deref() == Some("user"))
            .and_then(|m| m.content.as_ref())
            .map(Content::first_text)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strings_and_parts() {
        let r: WireRequest = serde_json::from_str(
            r#"{"model":"m","stream":true,"system":[{"type":"text","text":"be brief"}],
                "messages":[{"role":"user","content":"one two"},
                            {"role":"assistant","content":"three"},
                            {"role":"user","content":[{"type":"image"},{"type":"text","text":"four five six"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.model(), "m");
        assert!(r.is_stream());
        assert_eq!(r.input_tokens(), 8);
        assert_eq!(r.last_user_text(), "four five six");
    }

    #[test]
    fn continuations_are_recognised_in_both_forms() {
        let prefill: WireRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"half an"}]}"#,
        )
        .unwrap();
        assert_eq!(prefill.continuation(), Some(("q", "half an")));
        assert!(prefill.ends_with_assistant());
        let asked: WireRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"half an"},
                {"role":"user","content":"Continue exactly after: <<<half an>>>"}]}"#,
        )
        .unwrap();
        assert_eq!(asked.continuation(), Some(("q", "half an")));
        assert!(!asked.ends_with_assistant());
        let plain: WireRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"},{"role":"user","content":"next"}]}"#,
        )
        .unwrap();
        assert_eq!(plain.continuation(), None, "an ordinary follow-up question");
    }

    #[test]
    fn defaults() {
        let r: WireRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(r.model(), DEFAULT_MODEL);
        assert!(!r.is_stream());
        assert_eq!(r.input_tokens(), 1);
        assert_eq!(r.last_user_text(), "");
    }
}
