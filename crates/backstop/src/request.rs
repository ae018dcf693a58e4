//! What the caller asks for: messages plus sampling settings, tools, output format and the
//! other parameters.

use std::time::Duration;

use crate::{ContentPart, Params, ResponseFormat, Tool, ToolCall, ToolChoice};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The end user.
    User,
    /// The model's earlier turns.
    Assistant,
    /// The result of a tool call (OpenAI `role: "tool"`, Anthropic `tool_result` blocks).
    Tool,
}

impl Role {
    /// The lowercase wire name used by OpenAI and Anthropic (`"system"`, `"user"`, `"assistant"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The text (of every text part, when the message has [`parts`](Self::parts)).
    pub content: String,
    /// Text and image parts in order; empty for a text-only message. When not empty, the
    /// providers send these (and `content` is their text).
    pub parts: Vec<ContentPart>,
    /// The calls an assistant message made.
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the call it answers.
    pub tool_call_id: Option<String>,
    /// A participant name (OpenAI `name`).
    pub name: Option<String>,
}

impl Message {
    /// A message from `role` with text `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            parts: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    /// A user message of text and image parts.
    pub fn user_parts(parts: Vec<ContentPart>) -> Self {
        Self::new(Role::User, String::new()).with_parts(parts)
    }
    /// An assistant turn that called tools (with optional text before the calls).
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        let mut m = Self::new(Role::Assistant, content);
        m.tool_calls = calls;
        m
    }
    /// The result of tool call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        let mut m = Self::new(Role::Tool, content);
        m.tool_call_id = Some(tool_call_id.into());
        m
    }
    /// With these parts (and `content` set to their text).
    #[must_use]
    pub fn with_parts(mut self, parts: Vec<ContentPart>) -> Self {
        self.content = parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        self.parts = parts;
        self
    }
    /// With a participant name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The parts to send: [`parts`](Self::parts), or the text as one part.
    pub fn content_parts(&self) -> std::borrow::Cow<'_, [ContentPart]> {
        if self.parts.is_empty() {
            std::borrow::Cow::Owned(if self.content.is_empty() {
                Vec::new()
            } else {
                vec![ContentPart::Text(self.content.clone())]
            })
        } else {
            std::borrow::Cow::Borrowed(&self.parts)
        }
    }
    /// True when the message carries an image.
    pub fn has_image(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, ContentPart::Image(_)))
    }
}

/// Sampling settings. `None` means "use the provider's configured value, else the API default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmConfig {
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
}

impl LlmConfig {
    /// `max_tokens` used where an API requires one (Anthropic) and none was given.
    pub const DEFAULT_MAX_TOKENS: u32 = 1024;

    /// A config with `temperature` and `max_tokens` set, the seed's common case.
    pub fn new(temperature: f32, max_tokens: u32) -> Self {
        Self {
            temperature: Some(temperature),
            max_tokens: Some(max_tokens),
            ..Self::default()
        }
    }

    /// Sets the temperature.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }
    /// Sets max tokens.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }
    /// Sets top_p.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn top_p(mut self, p: f32) -> Self {
        self.top_p = Some(p);
        self
    }
    /// Adds a stop sequence.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn stop(mut self, s: impl Into<String>) -> Self {
        self.stop.push(s.into());
        self
    }

    /// Values set in `self` win; unset ones come from `base` (a provider's defaults).
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn over(&self, base: &LlmConfig) -> LlmConfig {
        LlmConfig {
            temperature: self.temperature.or(base.temperature),
            max_tokens: self.max_tokens.or(base.max_tokens),
            top_p: self.top_p.or(base.top_p),
            stop: if self.stop.is_empty() {
                base.stop.clone()
            } else {
                self.stop.clone()
            },
        }
    }
}

/// A chat request: what every provider receives.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// Per-request sampling overrides; they win over each provider's own config.
    pub config: LlmConfig,
    /// Overall deadline for this request, overriding the chain's `timeout`.
    pub timeout: Option<Duration>,
    /// When the caller drops the request mid-attempt, record a Timeout on the provider being
    /// called (a caller-side timeout such as Python's `asyncio.wait_for`, which the tutorial says
    /// counts as a failure) instead of the default neutral cancellation.
    pub drop_counts_as_timeout: bool,
    /// Functions the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may make several calls in one turn (OpenAI `parallel_tool_calls`,
    /// Anthropic `disable_parallel_tool_use` inverted).
    pub parallel_tool_calls: Option<bool>,
    /// The shape of the answer (JSON mode, a JSON Schema).
    pub response_format: Option<ResponseFormat>,
    /// Every other parameter.
    pub params: Params,
    /// This request's id, for correlating logs and traces across services: HTTP providers send
    /// it upstream as `x-request-id` on every attempt (skipped if it is not a valid header
    /// value), and it is recorded on the chain's request span.
    pub request_id: Option<String>,
    /// The caller's W3C `traceparent`, sent upstream unchanged when no
    /// [trace source](crate::trace_context) renders one for the attempt's own span.
    pub traceparent: Option<String>,
}

impl ChatRequest {
    /// A request with these messages and default settings.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
    /// A single user message.
    pub fn user(prompt: impl Into<String>) -> Self {
        Self::new(vec![Message::user(prompt)])
    }
    /// Appends a message.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn message(mut self, m: Message) -> Self {
        self.messages.push(m);
        self
    }
    /// Sets the sampling overrides.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn config(mut self, config: LlmConfig) -> Self {
        self.config = config;
        self
    }
    /// Sets this request's overall deadline.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Whether dropping this request mid-attempt counts as a Timeout on the provider called.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn drop_counts_as_timeout(mut self, yes: bool) -> Self {
        self.drop_counts_as_timeout = yes;
        self
    }
    /// Offers a tool.
    #[must_use]
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }
    /// Sets the tool choice.
    #[must_use]
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }
    /// Sets the response format.
    #[must_use]
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }
    /// Sets the other parameters.
    #[must_use]
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }
    /// Every feature the request uses beyond plain text, by its OpenAI parameter name
    /// (`tools`, `tool_choice`, `parallel_tool_calls`, `response_format`, `image_url`, then
    /// [`Params::names`]): what providers check against.
    pub fn features(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            ("tools", !self.tools.is_empty()),
            ("tool_choice", self.tool_choice.is_some()),
            ("parallel_tool_calls", self.parallel_tool_calls.is_some()),
            (
                "response_format",
                self.response_format
                    .as_ref()
                    .is_some_and(|f| *f != ResponseFormat::Text),
            ),
            ("image_url", self.messages.iter().any(Message::has_image)),
        ]
        .into_iter()
        .filter(|(_, used)| *used)
        .map(|(n, _)| n.to_owned())
        .collect();
        out.extend(self.params.names());
        out
    }
    /// Sets the caller's W3C `traceparent` (sent upstream; see [`crate::trace_context`]).
    #[must_use]
    pub fn traceparent(mut self, value: impl Into<String>) -> Self {
        self.traceparent = Some(value.into());
        self
    }
    /// Sets this request's id (sent upstream as `x-request-id`).
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    /// The text of the last user message, if any (handy for logs and simulators).
    pub fn last_user_text(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }
}

impl From<&str> for ChatRequest {
    fn from(prompt: &str) -> Self {
        Self::user(prompt)
    }
}

impl From<String> for ChatRequest {
    fn from(prompt: String) -> Self {
        Self::user(prompt)
    }
}

impl From<&String> for ChatRequest {
    fn from(prompt: &String) -> Self {
        Self::user(prompt.as_str())
    }
}

impl From<Vec<Message>> for ChatRequest {
    fn from(messages: Vec<Message>) -> Self {
        Self::new(messages)
    }
}

impl From<&ChatRequest> for ChatRequest {
    fn from(r: &ChatRequest) -> Self {
        r.clone()
    }
}
