//! Parsing and validating an Anthropic Messages request (`POST /v1/messages`) into a
//! [`ChatRequest`], so an Anthropic SDK client is served by the same chains (and falls back
//! to OpenAI-format providers). Fields backstop does not model travel as Anthropic extras:
//! passed to Anthropic providers, refused by the others. Errors name the JSON path at fault.

use backstop::{
    ApiFormat, ChatRequest, ContentPart, Image, LlmConfig, Message, Params, ResponseFormat, Role,
    Tool, ToolCall, ToolChoice,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::openai_request::MAX_TOKENS_LIMIT;
use crate::wire::{BadRequest, GatewayRequest, no_extras, refused};

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    max_tokens: i64,
    messages: Vec<WireMessage>,
    #[serde(default)]
    system: Option<Blocks>,
    #[serde(default)]
    stream: Option<bool>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    stop_sequences: Option<Vec<String>>,
    metadata: Option<Metadata>,
    service_tier: Option<String>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    output_config: Option<OutputConfig>,
    /// Everything else (`thinking`, `container`, ...): Anthropic extras.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Blocks,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A string, or a list of content blocks (kept as JSON: their shape depends on `type`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Blocks {
    Text(String),
    List(Vec<Map<String, Value>>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
    /// `cache_control`, `input_examples`, ...: refused by name.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct OutputConfig {
    format: Option<OutputFormat>,
    /// `effort`, ...: refused by name.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct OutputFormat {
    #[serde(rename = "type")]
    kind: String,
    schema: Option<Value>,
}

/// Parses and validates a Messages body. Errors name the field at fault.
pub fn parse_messages_request(body: &[u8]) -> Result<GatewayRequest, BadRequest> {
    match backstop::providers::from_json_body::<WireRequest>(body) {
        Ok(wire) => validate(wire),
        Err(_) => Err(crate::wire::explain_parse_error::<WireRequest>(body)),
    }
}

fn validate(w: WireRequest) -> Result<GatewayRequest, BadRequest> {
    if w.model.trim().is_empty() {
        return Err(BadRequest::new("model", "`model` must name a chain"));
    }
    let max_tokens = u32::try_from(w.max_tokens)
        .ok()
        .filter(|n| (1..=MAX_TOKENS_LIMIT).contains(n))
        .ok_or_else(|| {
            BadRequest::new(
                "max_tokens",
                format!(
                    "`max_tokens` must be between 1 and {MAX_TOKENS_LIMIT}, got {}",
                    w.max_tokens
                ),
            )
        })?;
    if w.messages.is_empty() {
        return Err(BadRequest::new(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let mut messages = Vec::new();
    if let Some(system) = w.system {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(Message::system(text));
        }
    }
    for (i, m) in w.messages.into_iter().enumerate() {
        turn(i, m, &mut messages)?;
    }
    let mut config = LlmConfig::default().max_tokens(max_tokens);
    if let Some(t) = w.temperature {
        config.temperature = Some(in_range("temperature", t, 0.0, 1.0)?);
    }
    if let Some(p) = w.top_p {
        config.top_p = Some(in_range("top_p", p, 0.0, 1.0)?);
    }
    config.stop = w.stop_sequences.unwrap_or_default();
    crate::wire::check_stop(&config.stop, "stop_sequences")?;

    let mut params = Params::default();
    params.top_k = w.top_k;
    params.user = w.metadata.and_then(|m| m.user_id);
    // The library speaks OpenAI's tiers: `standard_only` is OpenAI's `default`.
    params.service_tier = w.service_tier.map(|t| match t.as_str() {
        "standard_only" => "default".to_owned(),
        _ => t,
    });
    let mut extra = w.extra;
    extra.retain(|_, v| !v.is_null());
    if !extra.is_empty() {
        params.extra = Some((ApiFormat::Anthropic, extra));
    }

    let mut request = ChatRequest::new(messages).config(config).params(params);
    for (i, t) in w.tools.unwrap_or_default().into_iter().enumerate() {
        request.tools.push(tool(i, t)?);
    }
    if let Some(c) = w.tool_choice {
        no_extras(&c.extra, "tool_choice")?;
        if c.disable_parallel_tool_use == Some(true) {
            request.parallel_tool_calls = Some(false);
        }
        request.tool_choice = match c.kind.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "any" => Some(ToolChoice::Required),
            "none" => Some(ToolChoice::None),
            "tool" => match c.name {
                Some(n) => Some(ToolChoice::Function(n)),
                None => {
                    return Err(BadRequest::new(
                        "tool_choice.name",
                        "a tool_choice of type tool needs `name`",
                    ));
                }
            },
            other => {
                return Err(BadRequest::new(
                    "tool_choice.type",
                    format!("unknown tool_choice type {other:?}; expected auto, any, tool or none"),
                ));
            }
        };
    }
    if let Some(o) = &w.output_config {
        no_extras(&o.extra, "output_config")?;
    }
    if let Some(format) = w.output_config.and_then(|o| o.format) {
        if format.kind != "json_schema" {
            return Err(BadRequest::new(
                "output_config.format.type",
                format!(
                    "unknown output format {:?}; expected json_schema",
                    format.kind
                ),
            ));
        }
        let Some(schema) = format.schema else {
            return Err(BadRequest::new(
                "output_config.format.schema",
                "a json_schema output format needs `schema`",
            ));
        };
        request.response_format = Some(ResponseFormat::JsonSchema {
            name: "output".into(),
            schema,
            strict: Some(true),
            description: None,
        });
    }
    Ok(GatewayRequest {
        chain: w.model,
        request,
        stream: w.stream.unwrap_or(false),
        include_usage: false,
        api: ApiFormat::Anthropic,
    })
}

fn in_range(field: &str, v: f32, lo: f32, hi: f32) -> Result<f32, BadRequest> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(BadRequest::new(
            field,
            format!("`{field}` must be between {lo} and {hi}, got {v}"),
        ))
    }
}

fn str_field<'a>(b: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, BadRequest> {
    b.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| BadRequest::new(format!("{at}.{key}"), format!("`{key}` must be a string")))
}

/// Block fields backstop cannot relay: refused by name (a cache hint, citations).
fn unrelayed_fields(b: &Map<String, Value>, at: &str) -> Result<(), BadRequest> {
    for key in ["cache_control", "citations"] {
        if b.get(key).is_some_and(|v| !v.is_null()) {
            return Err(refused(
                &format!("{at}.{key}"),
                "not relayed across providers",
            ));
        }
    }
    Ok(())
}

fn system_text(system: Blocks) -> Result<String, BadRequest> {
    match system {
        Blocks::Text(t) => Ok(t),
        Blocks::List(blocks) => {
            let mut out = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                let at = format!("system[{j}]");
                if b.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(BadRequest::new(
                        format!("{at}.type"),
                        "system blocks must be text",
                    ));
                }
                unrelayed_fields(b, &at)?;
                out.push(str_field(b, "text", &at)?.to_owned());
            }
            Ok(out.join("\n\n"))
        }
    }
}

fn image(b: &Map<String, Value>, at: &str) -> Result<Image, BadRequest> {
    let source = b
        .get("source")
        .and_then(Value::as_object)
        .ok_or_else(|| BadRequest::new(format!("{at}.source"), "an image block needs `source`"))?;
    let at = format!("{at}.source");
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(Image::base64(
            str_field(source, "media_type", &at)?,
            str_field(source, "data", &at)?,
        )),
        Some("url") => {
            let url = str_field(source, "url", &at)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(BadRequest::new(
                    format!("{at}.url"),
                    "an image URL must be https:// or http://",
                ));
            }
            Ok(Image::url(url))
        }
        _ => Err(refused(
            &format!("{at}.type"),
            "image sources other than base64 and url",
        )),
    }
}

/// The text of a `tool_result`'s content: a string or text blocks. An error result says so.
fn tool_result_text(b: &Map<String, Value>, at: &str) -> Result<String, BadRequest> {
    let mut text = match b.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (k, p) in parts.iter().enumerate() {
                let here = format!("{at}.content[{k}]");
                let Some(p) = p.as_object() else {
                    return Err(BadRequest::new(here, "a content block must be an object"));
                };
                if p.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(refused(
                        &format!("{here}.type"),
                        "tool results other than text",
                    ));
                }
                out.push_str(str_field(p, "text", &here)?);
            }
            out
        }
        Some(_) => {
            return Err(BadRequest::new(
                format!("{at}.content"),
                "`content` must be a string or a list of text blocks",
            ));
        }
    };
    if b.get("is_error") == Some(&Value::Bool(true)) {
        // OpenAI's tool messages have no error flag: the text says it.
        text = format!("Error: {text}");
    }
    Ok(text)
}

/// One Anthropic turn: a user turn's `tool_result` blocks become tool messages (before its
/// other content), an assistant turn's `tool_use` blocks its tool calls.
fn turn(i: usize, m: WireMessage, out: &mut Vec<Message>) -> Result<(), BadRequest> {
    no_extras(&m.extra, format_args!("messages[{i}]"))?;
    let role = match m.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(BadRequest::new(
                format!("messages[{i}].role"),
                format!("unknown role {other:?}; expected user or assistant"),
            ));
        }
    };
    let blocks = match m.content {
        Blocks::Text(t) => {
            out.push(Message::new(role, t));
            return Ok(());
        }
        Blocks::List(blocks) => blocks,
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut results = 0;
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        unrelayed_fields(b, &at)?;
        match (b.get("type").and_then(Value::as_str), role) {
            (Some("text"), _) => {
                parts.push(ContentPart::Text(str_field(b, "text", &at)?.to_owned()))
            }
            (Some("image"), Role::User) => parts.push(ContentPart::Image(image(b, &at)?)),
            (Some("tool_result"), Role::User) => {
                let id = str_field(b, "tool_use_id", &at)?;
                out.push(Message::tool_result(id, tool_result_text(b, &at)?));
                results += 1;
            }
            (Some("tool_use"), Role::Assistant) => {
                let input = b.get("input").cloned().unwrap_or(Value::Object(Map::new()));
                calls.push(ToolCall::new(
                    str_field(b, "id", &at)?,
                    str_field(b, "name", &at)?,
                    input.to_string(),
                ));
            }
            (Some(kind @ ("image" | "tool_result" | "tool_use")), _) => {
                return Err(BadRequest::new(
                    format!("{at}.type"),
                    format!("a {kind} block is not allowed in a {} turn", m.role),
                ));
            }
            (Some(kind), _) => {
                return Err(refused(
                    &format!("{at}.type"),
                    &format!("{kind} blocks are not relayed"),
                ));
            }
            (None, _) => {
                return Err(BadRequest::new(
                    format!("{at}.type"),
                    "a content block needs `type`",
                ));
            }
        }
    }
    let message = Message::new(role, String::new()).with_parts(parts);
    let message = if message.has_image() {
        message
    } else {
        Message::new(role, message.content)
    };
    if !calls.is_empty() {
        out.push(Message::assistant_tool_calls(message.content, calls));
    } else if !message.content.is_empty() || message.has_image() || results == 0 {
        // (A turn of tool results only is just those.)
        out.push(message);
    }
    Ok(())
}

fn tool(i: usize, t: WireTool) -> Result<Tool, BadRequest> {
    no_extras(&t.extra, format_args!("tools[{i}]"))?;
    if let Some(kind) = t.kind.filter(|k| k != "custom") {
        return Err(refused(
            &format!("tools[{i}].type"),
            &format!("server tool {kind:?}: only client tools with `input_schema`"),
        ));
    }
    if t.name.is_empty() {
        return Err(BadRequest::new(
            format!("tools[{i}].name"),
            "a tool needs a name",
        ));
    }
    let Some(schema) = t.input_schema else {
        return Err(BadRequest::new(
            format!("tools[{i}].input_schema"),
            "a tool needs `input_schema`",
        ));
    };
    let mut tool = Tool::new(t.name, schema);
    tool.description = t.description;
    tool.strict = t.strict;
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(body: &str) -> BadRequest {
        match parse_messages_request(body.as_bytes()) {
            Ok(r) => panic!("accepted {body}: {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_full_request_lands_in_the_library_types() {
        let r = parse_messages_request(
            br#"{"model":"default","max_tokens":300,"stream":true,
              "system":[{"type":"text","text":"be brief"}],
              "messages":[
                {"role":"user","content":[{"type":"text","text":"what is this?"},
                   {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
                {"role":"assistant","content":[{"type":"text","text":"checking"},{"type":"tool_use","id":"t1","name":"look","input":{"q":1}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"a cat"}]},{"type":"text","text":"and?"}]}],
              "tools":[{"name":"look","description":"d","input_schema":{"type":"object"}}],
              "tool_choice":{"type":"any","disable_parallel_tool_use":true},
              "temperature":0.5,"top_k":5,"stop_sequences":["END"],"metadata":{"user_id":"u1"},
              "service_tier":"standard_only","thinking":{"type":"enabled","budget_tokens":1024}}"#,
        )
        .unwrap();
        assert_eq!(r.api, ApiFormat::Anthropic);
        assert!(r.stream);
        let q = &r.request;
        assert_eq!(q.messages[0], Message::system("be brief"));
        assert_eq!(
            q.messages[1].parts[1],
            ContentPart::Image(Image::base64("image/png", "iVBORw0KGgo="))
        );
        assert_eq!(
            q.messages[2],
            Message::assistant_tool_calls(
                "checking",
                vec![ToolCall::new("t1", "look", "{\"q\":1}")]
            )
        );
        assert_eq!(q.messages[3], Message::tool_result("t1", "a cat"));
        assert_eq!(q.messages[4], Message::user("and?"));
        assert_eq!(q.tools[0].name, "look");
        assert_eq!(q.tool_choice, Some(ToolChoice::Required));
        assert_eq!(q.parallel_tool_calls, Some(false));
        assert_eq!(q.config.max_tokens, Some(300));
        assert_eq!(q.config.stop, ["END"]);
        assert_eq!(q.params.top_k, Some(5));
        assert_eq!(q.params.user.as_deref(), Some("u1"));
        assert_eq!(q.params.service_tier.as_deref(), Some("default"));
        let (format, extra) = q.params.extra.as_ref().unwrap();
        assert_eq!(*format, ApiFormat::Anthropic);
        assert!(extra.contains_key("thinking"));
    }

    #[test]
    fn errors_name_the_field() {
        let ok = r#""model":"m","max_tokens":10"#;
        for (body, param) in [
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.to_owned(),
                None,
            ),
            (format!(r#"{{{ok},"messages":[]}}"#), Some("messages")),
            (
                format!(r#"{{{ok},"messages":[{{"role":"system","content":"x"}}]}}"#),
                Some("messages[0].role"),
            ),
            (
                r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#
                    .to_owned(),
                Some("max_tokens"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":[{{"type":"document","source":{{}}}}]}}]}}"#
                ),
                Some("messages[0].content[0].type"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":[{{"type":"text","text":"x","cache_control":{{"type":"ephemeral"}}}}]}}]}}"#
                ),
                Some("messages[0].content[0].cache_control"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"assistant","content":[{{"type":"image","source":{{"type":"url","url":"https://x"}}}}]}}]}}"#
                ),
                Some("messages[0].content[0].type"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":"x"}}],"tools":[{{"type":"web_search_20250305","name":"web_search"}}]}}"#
                ),
                Some("tools[0].type"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":"x"}}],"temperature":1.5}}"#
                ),
                Some("temperature"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":"x"}}],"tool_choice":{{"type":"tool"}}}}"#
                ),
                Some("tool_choice.name"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":"x"}}],"tools":[{{"name":"f","input_schema":{{}},"cache_control":{{"type":"ephemeral"}}}}]}}"#
                ),
                Some("tools[0].cache_control"),
            ),
            (
                format!(
                    r#"{{{ok},"messages":[{{"role":"user","content":"x"}}],"output_config":{{"effort":"low"}}}}"#
                ),
                Some("output_config.effort"),
            ),
            (
                format!(r#"{{{ok},"messages":[{{"role":"user","content":"x","name":"ann"}}]}}"#),
                Some("messages[0].name"),
            ),
        ] {
            let e = bad(&body);
            assert_eq!(e.param.as_deref(), param, "{body}: {e:?}");
        }
        assert!(
            bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#)
                .message
                .contains("max_tokens")
        );
    }
}
