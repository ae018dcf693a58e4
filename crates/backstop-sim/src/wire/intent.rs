//! What a request asks the simulator for: a tool call (tools offered, no result yet, or a
//! forced choice), JSON (structured output), an answer to a tool result, or plain text.

use serde_json::Value;

use super::example::example;
use super::request::{Content, WireMessage, WireRequest};

/// The kind of reply a request gets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Intent {
    /// The usual deterministic text.
    Text,
    /// Calls of tools, in order (several: parallel calls).
    ToolCalls(Vec<Call>),
    /// JSON text valid against the requested schema.
    Json(String),
    /// A final answer quoting the last tool result.
    AfterTool(String),
}

/// A call of tool `name` with `arguments` (JSON text valid against its schema).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub name: String,
    pub arguments: String,
}

/// How the request's `tool_choice` constrains the call (OpenAI or Anthropic shape).
enum Choice<'a> {
    Auto,
    None,
    /// Some tool must be called (OpenAI `required`, Anthropic `any`).
    Any,
    Named(&'a str),
}

fn choice(v: Option<&Value>) -> Choice<'_> {
    let Some(v) = v else { return Choice::Auto };
    let kind = v.as_str().or_else(|| v.get("type").and_then(Value::as_str));
    match kind {
        Some("none") => Choice::None,
        Some("required" | "any") => Choice::Any,
        // OpenAI `{"type":"function","function":{"name"}}`, Anthropic `{"type":"tool","name"}`.
        Some("function") => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map_or(Choice::Any, Choice::Named),
        Some("tool") => v
            .get("name")
            .and_then(Value::as_str)
            .map_or(Choice::Any, Choice::Named),
        _ => Choice::Auto,
    }
}

impl WireRequest {
    /// What to answer. A forced tool choice always calls; `auto` calls unless the conversation
    /// ends with a tool result. Unnamed calls are of every offered tool at once (parallel
    /// calls) unless parallel calls are off, then of the first. Structured output comes next.
    pub(crate) fn intent(&self) -> Intent {
        let result = self.messages.last().and_then(tool_result);
        let tools: Vec<(&str, Option<&Value>)> = self
            .tools
            .iter()
            .filter_map(|t| match &t.function {
                Some(f) => Some((f.name.as_deref()?, f.parameters.as_ref())),
                None => Some((t.name.as_deref()?, t.input_schema.as_ref())),
            })
            .collect();
        let parallel = self.parallel_tool_calls != Some(false)
            && self
                .tool_choice
                .as_ref()
                .and_then(|c| c.get("disable_parallel_tool_use"))
                != Some(&Value::Bool(true));
        let calls: Vec<(&str, Option<&Value>)> = match choice(self.tool_choice.as_ref()) {
            Choice::None => Vec::new(),
            Choice::Auto if result.is_some() => Vec::new(),
            Choice::Auto | Choice::Any if parallel => tools,
            Choice::Auto | Choice::Any => tools.into_iter().take(1).collect(),
            Choice::Named(n) => tools
                .into_iter()
                .filter(|(name, _)| *name == n)
                .take(1)
                .collect(),
        };
        if !calls.is_empty() {
            return Intent::ToolCalls(
                calls
                    .into_iter()
                    .map(|(name, schema)| Call {
                        name: name.to_owned(),
                        arguments: schema
                            .map_or(Value::Object(Default::default()), example)
                            .to_string(),
                    })
                    .collect(),
            );
        }
        if let Some(schema) = self.json_schema() {
            return Intent::Json(example(&schema).to_string());
        }
        match result {
            Some(r) => Intent::AfterTool(r),
            None => Intent::Text,
        }
    }

    /// The schema structured output asks for: OpenAI `response_format` (json_object: any
    /// object) or Anthropic `output_config.format`.
    fn json_schema(&self) -> Option<Value> {
        if let Some(f) = &self.response_format {
            return match f.get("type").and_then(Value::as_str) {
                Some("json_object") => Some(serde_json::json!({"type": "object"})),
                Some("json_schema") => Some(
                    f.pointer("/json_schema/schema")
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({"type": "object"})),
                ),
                _ => None,
            };
        }
        let format = self.output_config.as_ref()?.get("format")?;
        (format.get("type").and_then(Value::as_str) == Some("json_schema"))
            .then(|| format.get("schema").cloned())
            .flatten()
    }
}

/// The text of a tool result ending the conversation: an OpenAI `role: "tool"` message, or an
/// Anthropic user turn with a `tool_result` block.
fn tool_result(m: &WireMessage) -> Option<String> {
    let content = m.content.as_ref();
    match m.role.as_deref() {
        Some("tool") => Some(content.map(Content::all_text).unwrap_or_default()),
        Some("user") => match content? {
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind.as_deref() == Some("tool_result"))
                .map(|p| {
                    p.content
                        .as_deref()
                        .map(Content::all_text)
                        .unwrap_or_default()
                })
                .reduce(|a, b| a + "; " + &b),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(body: &str) -> Intent {
        serde_json::from_str::<WireRequest>(body).unwrap().intent()
    }

    #[test]
    fn offered_tools_are_called_until_a_result_comes_back() {
        let openai_tools = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;
        assert_eq!(
            intent(&format!(
                r#"{{"messages":[{{"role":"user","content":"weather?"}}],{openai_tools}}}"#
            )),
            Intent::ToolCalls(vec![Call {
                name: "get_weather".into(),
                arguments: r#"{"city":"sim"}"#.into()
            }])
        );
        assert_eq!(
            intent(&format!(
                r#"{{"messages":[{{"role":"user","content":"weather?"}},{{"role":"tool","tool_call_id":"c","content":"sunny"}}],{openai_tools}}}"#
            )),
            Intent::AfterTool("sunny".into())
        );
        assert_eq!(
            intent(&format!(
                r#"{{"messages":[{{"role":"user","content":"weather?"}}],{openai_tools},"tool_choice":"none"}}"#
            )),
            Intent::Text
        );
        let anthropic = r#"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"rainy"}]}]}],
            "tools":[{"name":"a","input_schema":{"type":"object"}},{"name":"b","input_schema":{"type":"object","properties":{"n":{"type":"integer"}}}}]"#;
        assert_eq!(
            intent(&format!("{anthropic}}}")),
            Intent::AfterTool("rainy".into())
        );
        assert_eq!(
            intent(&format!(
                r#"{anthropic},"tool_choice":{{"type":"tool","name":"b"}}}}"#
            )),
            Intent::ToolCalls(vec![Call {
                name: "b".into(),
                arguments: r#"{"n":1}"#.into()
            }])
        );
    }

    #[test]
    fn several_tools_are_called_in_parallel_unless_parallel_calls_are_off() {
        let two = r#""messages":[{"role":"user","content":"x"}],"tools":[{"name":"a","input_schema":{"type":"object"}},{"name":"b","input_schema":{"type":"object"}}]"#;
        let names = |i: Intent| match i {
            Intent::ToolCalls(c) => c.into_iter().map(|c| c.name).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(names(intent(&format!("{{{two}}}"))), ["a", "b"]);
        assert_eq!(
            names(intent(&format!(r#"{{{two},"parallel_tool_calls":false}}"#))),
            ["a"]
        );
        assert_eq!(
            names(intent(&format!(
                r#"{{{two},"tool_choice":{{"type":"any","disable_parallel_tool_use":true}}}}"#
            ))),
            ["a"]
        );
    }

    #[test]
    fn structured_output_is_json_in_both_formats() {
        assert_eq!(
            intent(
                r#"{"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"ok":{"type":"boolean"}}}}}}"#
            ),
            Intent::Json(r#"{"ok":true}"#.into())
        );
        assert_eq!(
            intent(
                r#"{"messages":[],"output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"n":{"type":"number"}}}}}}"#
            ),
            Intent::Json(r#"{"n":1.5}"#.into())
        );
        assert_eq!(
            intent(r#"{"messages":[],"response_format":{"type":"text"}}"#),
            Intent::Text
        );
    }
}
