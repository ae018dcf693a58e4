//! Anthropic Messages requests: what the API cannot honour, and the body for a request
//! (system prompt, tool results as `tool_result` blocks, images, tools and tool choice,
//! structured output, translated parameters).

use serde_json::{Map, Value, json};

use crate::{
    ApiFormat, ChatRequest, ContentPart, ErrorKind, LlmConfig, Message, ProviderError,
    ResponseFormat, Role, ToolChoice, Unsupported,
};

/// The tool that carries a JSON-mode answer (`response_format: json_object`): Anthropic's
/// output format needs a schema, so JSON mode is a forced single tool whose input is the
/// answer, returned as text.
pub(super) const JSON_TOOL: &str = "json_output";

/// What Anthropic's Messages API cannot honour (OpenAI names).
pub(super) fn check(request: &ChatRequest, refused: &[&str]) -> Result<(), Unsupported> {
    let mut u = Unsupported::new();
    let p = &request.params;
    u.add_if(p.seed.is_some(), "seed");
    u.add_if(p.frequency_penalty.is_some(), "frequency_penalty");
    u.add_if(p.presence_penalty.is_some(), "presence_penalty");
    u.add_if(p.logit_bias.is_some(), "logit_bias");
    u.add_if(p.logprobs == Some(true), "logprobs");
    u.add_if(p.top_logprobs.is_some(), "top_logprobs");
    u.add_if(p.n.is_some_and(|n| n > 1), "n");
    u.add_if(p.reasoning_effort.is_some(), "reasoning_effort");
    u.add_if(p.metadata.is_some(), "metadata");
    u.add_if(p.store == Some(true), "store");
    u.add_if(
        p.service_tier
            .as_deref()
            .is_some_and(|t| anthropic_service_tier(t).is_none()),
        "service_tier",
    );
    if let Some((ApiFormat::OpenAi, extra)) = &p.extra {
        extra.keys().for_each(|k| u.add(k.as_str()));
    }
    u.add_if(
        request.config.temperature.is_some_and(|t| t > 1.0),
        "temperature",
    );
    u.add_if(
        request.response_format == Some(ResponseFormat::JsonObject) && !request.tools.is_empty(),
        "response_format",
    );
    u.add_if(
        request.messages.iter().any(|m| m.name.is_some()),
        "messages[].name",
    );
    u.add_if(
        request.messages.iter().all(|m| m.role == Role::System),
        "system-only messages",
    );
    let detail = request.messages.iter().flat_map(|m| &m.parts).any(
        |p| matches!(p, ContentPart::Image(i) if i.detail.as_deref().is_some_and(|d| d != "auto")),
    );
    u.add_if(detail, "image_url.detail");
    // Listing the features allocates: only done for a provider kind that refuses some.
    if !refused.is_empty() {
        for f in request.features() {
            u.add_if(refused.contains(&f.as_str()), &f);
        }
    }
    u.into_result()
}

/// Anthropic's `service_tier` for an OpenAI one (`auto` is both; `default` is standard only).
fn anthropic_service_tier(openai: &str) -> Option<&'static str> {
    match openai {
        "auto" => Some("auto"),
        "default" | "standard_only" => Some("standard_only"),
        _ => None,
    }
}

fn image_block(url: &str, image: &crate::Image) -> Value {
    match image.as_base64() {
        Some((media_type, data)) => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}
        }),
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

/// The content blocks of one message.
fn blocks(m: &Message) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    if m.role == Role::Tool {
        out.push(json!({
            "type": "tool_result",
            "tool_use_id": m.tool_call_id.as_deref().unwrap_or_default(),
            "content": m.content,
        }));
        return Ok(out);
    }
    for part in m.content_parts().iter() {
        match part {
            ContentPart::Text(t) if t.is_empty() => {}
            ContentPart::Text(t) => out.push(json!({"type": "text", "text": t})),
            ContentPart::Image(i) => out.push(image_block(&i.url, i)),
        }
    }
    for call in &m.tool_calls {
        let input: Value = if call.arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&call.arguments).map_err(|e| {
                ProviderError::new(
                    ErrorKind::InvalidRequest,
                    format!("the arguments of tool call {:?} are not JSON: {e}", call.id),
                )
            })?
        };
        out.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    Ok(out)
}

/// Anthropic's messages: system ones removed, tool results as `tool_result` blocks of a user
/// turn, consecutive turns of one role merged. A plain-text turn stays a string.
fn wire_messages(messages: &[Message]) -> Result<Vec<Value>, ProviderError> {
    let mut out: Vec<(&'static str, Vec<Value>, bool)> = Vec::new();
    for m in messages.iter().filter(|m| m.role != Role::System) {
        let role = match m.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        let plain = m.parts.is_empty() && m.tool_calls.is_empty() && m.role != Role::Tool;
        let b = blocks(m)?;
        match out.last_mut() {
            Some((r, prev, prev_plain)) if *r == role => {
                prev.extend(b);
                *prev_plain = false;
            }
            _ => out.push((role, b, plain)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, blocks, plain)| {
            let content = match (plain, blocks.as_slice()) {
                (true, [one]) => one.get("text").cloned().unwrap_or(Value::Array(blocks)),
                (true, []) => json!(""),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect())
}

fn wire_tool_choice(choice: Option<&ToolChoice>, parallel: Option<bool>) -> Option<Value> {
    let mut c = match choice {
        None if parallel == Some(false) => json!({"type": "auto"}),
        None => return None,
        Some(ToolChoice::None) => return Some(json!({"type": "none"})),
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Function(name)) => json!({"type": "tool", "name": name}),
    };
    if parallel == Some(false)
        && let Some(o) = c.as_object_mut()
    {
        o.insert("disable_parallel_tool_use".into(), json!(true));
    }
    Some(c)
}

pub(super) fn request_body(
    model: &str,
    request: &ChatRequest,
    provider_config: &LlmConfig,
    stream: bool,
) -> Result<Vec<u8>, ProviderError> {
    let config = request.config.over(provider_config);
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let mut o = Map::new();
    o.insert("model".into(), json!(model));
    o.insert(
        "max_tokens".into(),
        json!(config.max_tokens.unwrap_or(LlmConfig::DEFAULT_MAX_TOKENS)),
    );
    o.insert(
        "messages".into(),
        Value::Array(wire_messages(&request.messages)?),
    );
    if !system.is_empty() {
        o.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(t) = config.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(p) = config.top_p {
        o.insert("top_p".into(), json!(p));
    }
    if !config.stop.is_empty() {
        o.insert("stop_sequences".into(), json!(config.stop));
    }
    if stream {
        o.insert("stream".into(), json!(true));
    }
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| {
            let mut w = Map::new();
            w.insert("name".into(), json!(t.name));
            if let Some(d) = &t.description {
                w.insert("description".into(), json!(d));
            }
            w.insert("input_schema".into(), t.parameters.clone());
            if let Some(strict) = t.strict {
                w.insert("strict".into(), json!(strict));
            }
            Value::Object(w)
        })
        .collect();
    let mut tool_choice =
        wire_tool_choice(request.tool_choice.as_ref(), request.parallel_tool_calls);
    match &request.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            o.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        Some(ResponseFormat::JsonObject) => {
            tools.push(json!({
                "name": JSON_TOOL,
                "description": "Give the answer as a JSON object.",
                "input_schema": {"type": "object"}
            }));
            tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
        }
        _ => {}
    }
    if !tools.is_empty() {
        o.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = tool_choice {
        o.insert("tool_choice".into(), c);
    }
    let p = &request.params;
    if let Some(user) = &p.user {
        o.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tier) = p.service_tier.as_deref().and_then(anthropic_service_tier) {
        o.insert("service_tier".into(), json!(tier));
    }
    if let Some(k) = p.top_k {
        o.insert("top_k".into(), json!(k));
    }
    super::http::encode_body(o, p, ApiFormat::Anthropic)
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // one parameter per line reads best
mod tests {
    use super::*;
    use crate::{Image, Params, Tool, ToolCall};

    fn body(request: &ChatRequest) -> Value {
        serde_json::from_slice(
            &request_body("claude", request, &LlmConfig::default(), false).unwrap(),
        )
        .unwrap()
    }

    fn weather() -> Tool {
        Tool::new(
            "get_weather",
            json!({"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}),
        )
        .description("Get the current weather in a given location")
    }

    #[test]
    fn a_tool_round_trip_becomes_tool_use_and_tool_result_blocks() {
        // The documented second turn: the assistant's tool_use, then the user's tool_result.
        let req = ChatRequest::new(vec![
            Message::user("What's the weather like in San Francisco?"),
            Message::assistant_tool_calls(
                "",
                vec![ToolCall::new(
                    "toolu_01A09q90qw90lq917835lq9",
                    "get_weather",
                    "{\"location\": \"San Francisco, CA\"}",
                )],
            ),
            Message::tool_result("toolu_01A09q90qw90lq917835lq9", "15 degrees"),
        ])
        .tool(weather());
        let v = body(&req);
        assert_eq!(
            v["tools"],
            json!([{"name":"get_weather","description":"Get the current weather in a given location",
                    "input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}])
        );
        assert_eq!(
            v["messages"][0],
            json!({"role":"user","content":"What's the weather like in San Francisco?"})
        );
        assert_eq!(
            v["messages"][1],
            json!({"role":"assistant","content":[{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9",
                   "name":"get_weather","input":{"location":"San Francisco, CA"}}]})
        );
        assert_eq!(
            v["messages"][2],
            json!({"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01A09q90qw90lq917835lq9",
                   "content":"15 degrees"}]})
        );
    }

    #[test]
    fn parallel_tool_results_share_one_user_turn() {
        let req = ChatRequest::new(vec![
            Message::user("two cities"),
            Message::assistant_tool_calls(
                "Checking both.",
                vec![
                    ToolCall::new("a", "get_weather", "{\"location\":\"Paris\"}"),
                    ToolCall::new("b", "get_weather", "{\"location\":\"Oslo\"}"),
                ],
            ),
            Message::tool_result("a", "mild"),
            Message::tool_result("b", "cold"),
        ]);
        let v = body(&req);
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            msgs[1]["content"][0],
            json!({"type":"text","text":"Checking both."})
        );
        assert_eq!(msgs[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(msgs[2]["content"][1]["tool_use_id"], "b");
    }

    #[test]
    fn tool_choice_forms_translate() {
        let cases = [
            (ToolChoice::Auto, json!({"type":"auto"})),
            (ToolChoice::Required, json!({"type":"any"})),
            (ToolChoice::None, json!({"type":"none"})),
            (
                ToolChoice::Function("get_weather".into()),
                json!({"type":"tool","name":"get_weather"}),
            ),
        ];
        for (choice, expected) in cases {
            let v = body(&ChatRequest::user("x").tool(weather()).tool_choice(choice));
            assert_eq!(v["tool_choice"], expected);
        }
        let mut req = ChatRequest::user("x")
            .tool(weather())
            .tool_choice(ToolChoice::Required);
        req.parallel_tool_calls = Some(false);
        assert_eq!(
            body(&req)["tool_choice"],
            json!({"type":"any","disable_parallel_tool_use":true})
        );
    }

    #[test]
    fn images_become_url_or_base64_sources() {
        let req = ChatRequest::new(vec![Message::user_parts(vec![
            ContentPart::Text("What is in these?".into()),
            ContentPart::Image(Image::url("https://upload.wikimedia.org/cat.jpg")),
            ContentPart::Image(Image::base64("image/png", "iVBORw0KGgo=")),
        ])]);
        let v = body(&req);
        assert_eq!(
            v["messages"][0]["content"],
            json!([
                {"type":"text","text":"What is in these?"},
                {"type":"image","source":{"type":"url","url":"https://upload.wikimedia.org/cat.jpg"}},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}
            ])
        );
    }

    #[test]
    fn structured_output_uses_output_config_and_json_mode_a_forced_tool() {
        let schema = json!({"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false});
        let req = ChatRequest::user("x").response_format(ResponseFormat::JsonSchema {
            name: "person".into(),
            schema: schema.clone(),
            strict: Some(true),
            description: None,
        });
        let v = body(&req);
        assert_eq!(
            v["output_config"],
            json!({"format":{"type":"json_schema","schema":schema}})
        );
        assert!(v.get("tools").is_none());
        let v = body(&ChatRequest::user("x").response_format(ResponseFormat::JsonObject));
        assert_eq!(v["tools"][0]["name"], JSON_TOOL);
        assert_eq!(v["tool_choice"], json!({"type":"tool","name":JSON_TOOL}));
    }

    #[test]
    fn parameters_are_translated_or_refused_by_name() {
        let mut p = Params::default();
        p.user = Some("u-1".into());
        p.service_tier = Some("default".into());
        p.top_k = Some(5);
        let v = body(&ChatRequest::user("x").params(p));
        assert_eq!(v["metadata"], json!({"user_id":"u-1"}));
        assert_eq!(v["service_tier"], "standard_only");
        assert_eq!(v["top_k"], 5);

        let refused = |p: Params| {
            check(&ChatRequest::user("x").params(p), &[])
                .unwrap_err()
                .params
        };
        let mut p = Params::default();
        p.seed = Some(1);
        p.frequency_penalty = Some(0.5);
        p.presence_penalty = Some(0.5);
        p.logit_bias = Some(Map::new());
        p.logprobs = Some(true);
        p.top_logprobs = Some(2);
        p.n = Some(2);
        p.reasoning_effort = Some("low".into());
        p.metadata = Some(Map::new());
        p.store = Some(true);
        p.service_tier = Some("flex".into());
        assert_eq!(
            refused(p),
            [
                "seed",
                "frequency_penalty",
                "presence_penalty",
                "logit_bias",
                "logprobs",
                "top_logprobs",
                "n",
                "reasoning_effort",
                "metadata",
                "store",
                "service_tier"
            ]
        );
        let mut p = Params::default();
        p.n = Some(1);
        p.store = Some(false);
        assert!(
            check(&ChatRequest::user("x").params(p), &[]).is_ok(),
            "n=1 and store=false are what Anthropic does anyway"
        );
        let hot = ChatRequest::user("x").config(LlmConfig::default().temperature(1.5));
        assert_eq!(check(&hot, &[]).unwrap_err().params, ["temperature"]);
        let system_only = ChatRequest::new(vec![Message::system("only rules")]);
        assert_eq!(
            check(&system_only, &[]).unwrap_err().params,
            ["system-only messages"]
        );
        let named = ChatRequest::new(vec![Message::user("hi").with_name("alice")]);
        assert_eq!(check(&named, &[]).unwrap_err().params, ["messages[].name"]);
        let detailed = ChatRequest::new(vec![Message::user_parts(vec![ContentPart::Image(
            Image::url("https://x/y.png").detail("high"),
        )])]);
        assert_eq!(
            check(&detailed, &[]).unwrap_err().params,
            ["image_url.detail"]
        );
        let mut extra = Map::new();
        extra.insert("verbosity".into(), json!("low"));
        let mut p = Params::default();
        p.extra = Some((ApiFormat::OpenAi, extra));
        assert_eq!(refused(p), ["verbosity"]);
    }
}
