//! Tool calling: the tools a request offers, how the model may use them, the calls it makes
//! (whole, and streamed in fragments).

/// A function the model may call. `parameters` is its JSON Schema (an object schema).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// JSON Schema of the arguments (OpenAI `parameters`, Anthropic `input_schema`).
    pub parameters: serde_json::Value,
    /// OpenAI `strict`: arguments must match the schema exactly.
    pub strict: Option<bool>,
}

impl Tool {
    /// A tool named `name` taking arguments described by the JSON Schema `parameters`.
    pub fn new(name: impl Into<String>, parameters: serde_json::Value) -> Self {
        Self {
            name: name.into(),
            description: None,
            parameters,
            strict: None,
        }
    }

    /// With a description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// With OpenAI's `strict` flag.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = Some(strict);
        self
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides (OpenAI `auto`, Anthropic `auto`).
    Auto,
    /// No tool call (OpenAI `none`, Anthropic `none`).
    None,
    /// At least one tool call (OpenAI `required`, Anthropic `any`).
    Required,
    /// This tool (OpenAI `{"type":"function","function":{"name"}}`, Anthropic `tool`).
    Function(String),
}

/// One call the model made: which function, with which arguments (JSON text, as OpenAI sends
/// it; Anthropic's `input` object is serialised to it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The call's id, echoed by the tool result (`tool_call_id`, `tool_use_id`).
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

impl ToolCall {
    /// A call of `name` with `arguments` (JSON text).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// A fragment of a streamed tool call. The first fragment of call `index` carries its `id` and
/// `name`; later ones append to its `arguments` (OpenAI `delta.tool_calls[i]`, Anthropic
/// `tool_use` block start and `input_json_delta`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ToolCallDelta {
    /// Which call of the answer (0 for the first), across every provider's numbering.
    pub index: u32,
    /// The call's id (first fragment).
    pub id: Option<String>,
    /// The function's name (first fragment).
    pub name: Option<String>,
    /// The next piece of the arguments' JSON text (may be empty).
    pub arguments: String,
}

impl ToolCallDelta {
    /// The opening fragment of call `index`.
    pub fn start(index: u32, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            index,
            id: Some(id.into()),
            name: Some(name.into()),
            arguments: String::new(),
        }
    }

    /// A piece of call `index`'s arguments.
    pub fn arguments(index: u32, arguments: impl Into<String>) -> Self {
        Self {
            index,
            arguments: arguments.into(),
            ..Self::default()
        }
    }
}

/// Assembles streamed [`ToolCallDelta`]s into whole [`ToolCall`]s (in index order).
#[derive(Debug, Clone, Default)]
pub struct ToolCallAccumulator {
    calls: Vec<(u32, ToolCall)>,
}

impl ToolCallAccumulator {
    /// Adds one fragment.
    pub fn push(&mut self, delta: &ToolCallDelta) {
        let slot = match self.calls.iter().position(|(i, _)| *i == delta.index) {
            Some(p) => p,
            None => {
                self.calls.push((
                    delta.index,
                    ToolCall::new(String::new(), String::new(), String::new()),
                ));
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot].1;
        if let Some(id) = &delta.id {
            call.id.clone_from(id);
        }
        if let Some(name) = &delta.name {
            call.name.push_str(name);
        }
        call.arguments.push_str(&delta.arguments);
    }

    /// True when no fragment was pushed.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls so far, in index order.
    pub fn calls(&self) -> Vec<ToolCall> {
        let mut calls = self.calls.clone();
        calls.sort_by_key(|(i, _)| *i);
        calls.into_iter().map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_assemble_into_calls_in_index_order() {
        let mut acc = ToolCallAccumulator::default();
        acc.push(&ToolCallDelta::start(1, "b", "second"));
        acc.push(&ToolCallDelta::start(0, "a", "first"));
        acc.push(&ToolCallDelta::arguments(0, "{\"x\":"));
        acc.push(&ToolCallDelta::arguments(1, "{}"));
        acc.push(&ToolCallDelta::arguments(0, "1}"));
        assert_eq!(
            acc.calls(),
            vec![
                ToolCall::new("a", "first", "{\"x\":1}"),
                ToolCall::new("b", "second", "{}")
            ]
        );
    }
}
