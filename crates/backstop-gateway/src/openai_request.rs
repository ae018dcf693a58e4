//! Parsing and validating an OpenAI chat-completions request into a [`ChatRequest`]: every
//! documented parameter is read into the library's types (translated by each provider, passed
//! through or refused by name there), refused here when no provider path exists, and fields
//! backstop does not model travel as OpenAI extras (passed to OpenAI-wire providers, refused
//! by others). Errors name the JSON path of the field at fault.

use backstop::{
    ApiFormat, ChatRequest, ContentPart, Image, LlmConfig, Message, Params, ResponseFormat, Role,
    Tool, ToolCall, ToolChoice,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::wire::{BadRequest, GatewayRequest, no_extras, refused};

/// Largest `max_tokens` we pass on; anything above is surely a mistake.
pub(crate) const MAX_TOKENS_LIMIT: u32 = 1_000_000;
/// OpenAI accepts at most four stop sequences.
pub(crate) const MAX_STOP: usize = 4;

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    temperature: Option<f32>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    top_p: Option<f32>,
    stop: Option<Stop>,
    n: Option<i64>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    parallel_tool_calls: Option<bool>,
    response_format: Option<WireResponseFormat>,
    seed: Option<i64>,
    frequency_penalty: Option<f32>,
    presence_penalty: Option<f32>,
    logit_bias: Option<Map<String, Value>>,
    logprobs: Option<bool>,
    top_logprobs: Option<i64>,
    user: Option<String>,
    reasoning_effort: Option<String>,
    metadata: Option<Map<String, Value>>,
    store: Option<bool>,
    service_tier: Option<String>,
    // No provider path for these: refused by name.
    functions: Option<Value>,
    function_call: Option<Value>,
    audio: Option<Value>,
    modalities: Option<Vec<String>>,
    /// Everything else (`prediction`, `verbosity`, `web_search_options`, ...).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// An earlier assistant turn's refusal, echoed back: its text.
    #[serde(default)]
    refusal: Option<String>,
    /// `audio`, `function_call`, ...: refused by name unless null or empty.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A message's `content`: a string or an array of parts.
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// By the value's JSON type, where `#[serde(untagged)]` buffered every message's content and
/// retried it per variant (and said only "did not match any variant" when a part was wrong).
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content::Text(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Content, E> {
                Ok(Content::Text(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Content, A::Error> {
                Vec::<Part>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Content::Parts)
            }
        }
        d.deserialize_any(Shape)
    }
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    image_url: Option<ImageUrl>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct ImageUrl {
    url: String,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireToolCall {
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    function: WireFunctionCall,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    function: Option<WireFunction>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireFunction {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Named(NamedChoice),
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct NamedChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<NamedFunction>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct NamedFunction {
    name: String,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json_schema: Option<WireJsonSchema>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireJsonSchema {
    name: String,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
    #[serde(default)]
    description: Option<String>,
}

/// Parses and validates a chat-completions body. Errors name the field at fault.
pub fn parse_request(body: &[u8]) -> Result<GatewayRequest, BadRequest> {
    // The common shape by the scanner (it reads what serde would, or declines).
    if let Some(wire) = std::str::from_utf8(body).ok().and_then(fast::fast_request) {
        return validate(wire);
    }
    // A plain parse (which also rejects trailing characters). Only a body that fails it is
    // parsed again with path tracking, to name the bad field.
    match backstop::providers::from_json_body::<WireRequest>(body) {
        Ok(wire) => validate(wire),
        Err(_) => Err(crate::wire::explain_parse_error::<WireRequest>(body)),
    }
}

fn validate(w: WireRequest) -> Result<GatewayRequest, BadRequest> {
    if w.functions.is_some() {
        return Err(refused("functions", "deprecated by OpenAI: send `tools`"));
    }
    if w.function_call.is_some() {
        return Err(refused(
            "function_call",
            "deprecated by OpenAI: send `tool_choice`",
        ));
    }
    if w.audio.is_some() {
        return Err(refused("audio", "audio output is not relayed"));
    }
    if w.modalities
        .as_ref()
        .is_some_and(|m| m.iter().any(|x| x != "text"))
    {
        return Err(refused("modalities", "only text output is relayed"));
    }
    if w.model.trim().is_empty() {
        return Err(BadRequest::new("model", "`model` must name a chain"));
    }
    if w.messages.is_empty() {
        return Err(BadRequest::new(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(w.messages.len());
    for (i, m) in w.messages.into_iter().enumerate() {
        messages.push(message(i, m)?);
    }
    let mut config = LlmConfig::default();
    if let Some(t) = w.temperature {
        config.temperature = Some(in_range("temperature", t, 0.0, 2.0)?);
    }
    if let Some(p) = w.top_p {
        config.top_p = Some(in_range("top_p", p, 0.0, 1.0)?);
    }
    for (field, value) in [
        ("max_completion_tokens", w.max_completion_tokens),
        ("max_tokens", w.max_tokens),
    ] {
        if let Some(n) = value {
            let n = u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_TOKENS_LIMIT).contains(n))
                .ok_or_else(|| {
                    BadRequest::new(
                        field,
                        format!("`{field}` must be between 1 and {MAX_TOKENS_LIMIT}, got {n}"),
                    )
                })?;
            config.max_tokens = config.max_tokens.or(Some(n));
        }
    }
    config.stop = match w.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    crate::wire::check_stop(&config.stop, "stop")?;

    let mut params = Params::default();
    params.n = match w.n {
        None => None,
        Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        Some(n) => {
            return Err(BadRequest::new(
                "n",
                format!("`n` must be at least 1, got {n}"),
            ));
        }
    };
    params.seed = w.seed;
    if let Some(f) = w.frequency_penalty {
        params.frequency_penalty = Some(in_range("frequency_penalty", f, -2.0, 2.0)?);
    }
    if let Some(p) = w.presence_penalty {
        params.presence_penalty = Some(in_range("presence_penalty", p, -2.0, 2.0)?);
    }
    params.logit_bias = w.logit_bias;
    params.logprobs = w.logprobs;
    params.top_logprobs = match w.top_logprobs {
        None => None,
        Some(n) if (0..=20).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(BadRequest::new(
                "top_logprobs",
                format!("`top_logprobs` must be between 0 and 20, got {n}"),
            ));
        }
    };
    params.user = w.user;
    params.reasoning_effort = w.reasoning_effort;
    params.metadata = w.metadata;
    params.store = w.store;
    params.service_tier = w.service_tier;
    let mut extra = w.extra;
    extra.retain(|_, v| !v.is_null());
    if !extra.is_empty() {
        params.extra = Some((ApiFormat::OpenAi, extra));
    }

    let mut request = ChatRequest::new(messages).config(config).params(params);
    for (i, t) in w.tools.unwrap_or_default().into_iter().enumerate() {
        request.tools.push(tool(i, t)?);
    }
    request.tool_choice = w.tool_choice.map(tool_choice).transpose()?;
    request.parallel_tool_calls = w.parallel_tool_calls;
    request.response_format = w.response_format.map(response_format).transpose()?;
    Ok(GatewayRequest {
        chain: w.model,
        request,
        stream: w.stream.unwrap_or(false),
        include_usage: w.stream_options.is_some_and(|o| o.include_usage),
        api: ApiFormat::OpenAi,
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

fn message(i: usize, m: WireMessage) -> Result<Message, BadRequest> {
    let at = |f: &str| format!("messages[{i}].{f}");
    no_extras(&m.extra, format_args!("messages[{i}]"))?;
    let role = match m.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        "function" => {
            return Err(refused(
                &at("role"),
                "the deprecated `function` role: send `tool` results",
            ));
        }
        other => {
            return Err(BadRequest::new(
                at("role"),
                format!(
                    "unknown role {other:?}; expected system, developer, user, assistant or tool"
                ),
            ));
        }
    };
    let mut out = match m.content {
        Some(Content::Text(t)) => Message::new(role, t),
        Some(Content::Parts(parts)) => {
            let mut list = Vec::with_capacity(parts.len());
            for (j, p) in parts.into_iter().enumerate() {
                let here = format!("messages[{i}].content[{j}]");
                if matches!(p.kind.as_str(), "text" | "image_url") {
                    no_extras(&p.extra, &here)?;
                }
                list.push(match (p.kind.as_str(), p.text, p.image_url) {
                    ("text", Some(t), _) => ContentPart::Text(t),
                    ("text", None, _) => {
                        return Err(BadRequest::new(
                            format!("{here}.text"),
                            "text part without `text`",
                        ));
                    }
                    ("image_url", _, Some(img)) if role == Role::User => {
                        ContentPart::Image(image(&format!("{here}.image_url.url"), img)?)
                    }
                    ("image_url", _, Some(_)) => {
                        return Err(BadRequest::new(
                            here,
                            "image parts are only allowed in user messages",
                        ));
                    }
                    ("image_url", _, None) => {
                        return Err(BadRequest::new(
                            format!("{here}.image_url"),
                            "image part without `image_url`",
                        ));
                    }
                    (kind, _, _) => {
                        return Err(refused(&here, &format!("{kind} input is not relayed")));
                    }
                });
            }
            if list.iter().all(|p| matches!(p, ContentPart::Text(_))) {
                // Text parts only: one plain text message.
                let text: String = list
                    .into_iter()
                    .filter_map(|p| match p {
                        ContentPart::Text(t) => Some(t),
                        _ => None,
                    })
                    .collect();
                Message::new(role, text)
            } else {
                Message::new(role, String::new()).with_parts(list)
            }
        }
        None if role == Role::Assistant => Message::new(role, String::new()),
        None => return Err(BadRequest::new(at("content"), "message has no content")),
    };
    if let Some(calls) = m.tool_calls {
        if role != Role::Assistant {
            return Err(BadRequest::new(
                at("tool_calls"),
                "only assistant messages carry `tool_calls`",
            ));
        }
        for (j, c) in calls.into_iter().enumerate() {
            if c.kind.as_deref().is_some_and(|k| k != "function") {
                return Err(refused(
                    &format!("messages[{i}].tool_calls[{j}].type"),
                    "only function tools",
                ));
            }
            out.tool_calls
                .push(ToolCall::new(c.id, c.function.name, c.function.arguments));
        }
    }
    if role == Role::Tool {
        let Some(id) = m.tool_call_id.filter(|id| !id.is_empty()) else {
            return Err(BadRequest::new(
                at("tool_call_id"),
                "a tool message needs `tool_call_id`",
            ));
        };
        if out.has_image() {
            return Err(refused(&at("content"), "images in tool results"));
        }
        out.tool_call_id = Some(id);
        out.parts.clear();
    }
    if let Some(refusal) = m.refusal {
        // An assistant turn that refused has no content: its refusal is what it said.
        if role != Role::Assistant || !out.content.is_empty() || out.has_image() {
            return Err(BadRequest::new(
                at("refusal"),
                "`refusal` is only taken on an assistant message without content",
            ));
        }
        out.content = refusal;
    }
    if let Some(name) = m.name {
        out = out.with_name(name);
    }
    Ok(out)
}

fn image(at: &str, img: ImageUrl) -> Result<Image, BadRequest> {
    let url = img.url;
    let ok = url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:");
    if !ok {
        return Err(BadRequest::new(
            at,
            "an image URL must be https://, http:// or a data: URL",
        ));
    }
    let mut image = Image::url(url);
    if image.url.starts_with("data:") && image.as_base64().is_none() {
        return Err(BadRequest::new(
            at,
            "a data URL image must be `data:<media type>;base64,<data>`",
        ));
    }
    if let Some(d) = img.detail {
        image = image.detail(d);
    }
    Ok(image)
}

fn tool(i: usize, t: WireTool) -> Result<Tool, BadRequest> {
    if t.kind != "function" {
        return Err(refused(
            &format!("tools[{i}].type"),
            &format!("{:?} tools; only function tools", t.kind),
        ));
    }
    no_extras(&t.extra, format_args!("tools[{i}]"))?;
    let Some(f) = t.function else {
        return Err(BadRequest::new(
            format!("tools[{i}].function"),
            "a function tool needs `function`",
        ));
    };
    no_extras(&f.extra, format_args!("tools[{i}].function"))?;
    if f.name.is_empty() {
        return Err(BadRequest::new(
            format!("tools[{i}].function.name"),
            "a tool needs a name",
        ));
    }
    let parameters = f
        .parameters
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    let mut tool = Tool::new(f.name, parameters);
    tool.description = f.description;
    tool.strict = f.strict;
    Ok(tool)
}

fn tool_choice(c: WireToolChoice) -> Result<ToolChoice, BadRequest> {
    match c {
        WireToolChoice::Mode(m) => match m.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(BadRequest::new(
                "tool_choice",
                format!(
                    "unknown tool_choice {other:?}; expected none, auto, required or a named function"
                ),
            )),
        },
        WireToolChoice::Named(n) if n.kind == "function" => match n.function {
            Some(f) => Ok(ToolChoice::Function(f.name)),
            None => Err(BadRequest::new(
                "tool_choice.function",
                "a named tool_choice needs `function.name`",
            )),
        },
        WireToolChoice::Named(n) => Err(refused(
            "tool_choice.type",
            &format!("{:?} tool choices", n.kind),
        )),
    }
}

fn response_format(f: WireResponseFormat) -> Result<ResponseFormat, BadRequest> {
    match f.kind.as_str() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let Some(s) = f.json_schema else {
                return Err(BadRequest::new(
                    "response_format.json_schema",
                    "`json_schema` is required for type json_schema",
                ));
            };
            Ok(ResponseFormat::JsonSchema {
                name: s.name,
                schema: s
                    .schema
                    .unwrap_or_else(|| serde_json::json!({"type": "object"})),
                strict: s.strict,
                description: s.description,
            })
        }
        other => Err(BadRequest::new(
            "response_format.type",
            format!(
                "unknown response_format type {other:?}; expected text, json_object or json_schema"
            ),
        )),
    }
}

mod fast;

#[cfg(test)]
mod tests;
