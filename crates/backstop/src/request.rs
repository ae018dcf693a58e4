//! What the caller asks for: messages plus sampling settings.

use std::time::Duration;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The end user.
    User,
    /// The model's earlier turns.
    Assistant,
}

impl Role {
    /// The lowercase wire name used by OpenAI and Anthropic (`"system"`, `"user"`, `"assistant"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
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
