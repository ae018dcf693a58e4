//! OpenAI chat-completions requests: what the wire cannot carry, and the body for a request.

use serde_json::{Map, Value, json};

use crate::{
    ApiFormat, ChatRequest, ContentPart, LlmConfig, Message, ProviderError, ResponseFormat, Role,
    ToolCall, ToolChoice, Unsupported,
};

/// What the OpenAI wire cannot carry: several choices (a completion holds one), log
/// probabilities (not relayed back), Anthropic-only parameters and extras.
pub(super) fn check(request: &ChatRequest, refused: &[&str]) -> Result<(), Unsupported> {
    let mut u = Unsupported::new();
    let p = &request.params;
    u.add_if(p.n.is_some_and(|n| n > 1), "n");
    u.add_if(p.logprobs == Some(true), "logprobs");
    u.add_if(p.top_logprobs.is_some(), "top_logprobs");
    u.add_if(p.top_k.is_some(), "top_k");
    if let Some((ApiFormat::Anthropic, extra)) = &p.extra {
        extra.keys().for_each(|k| u.add(k.as_str()));
    }
    for f in request.features() {
        u.add_if(refused.contains(&f.as_str()), &f);
    }
    if refused.contains(&"messages[].name") && request.messages.iter().any(|m| m.name.is_some()) {
        u.add("messages[].name");
    }
    u.into_result()
}

fn wire_message(m: &Message) -> Value {
    let mut o = Map::new();
    o.insert("role".into(), json!(m.role.as_str()));
    let content = if m.parts.is_empty() {
        if m.content.is_empty() && !m.tool_calls.is_empty() {
            Value::Null
        } else {
            json!(m.content)
        }
    } else {
        Value::Array(
            m.parts
                .iter()
                .map(|p| match p {
                    ContentPart::Image(i) => {
                        let mut url = Map::new();
                        url.insert("url".into(), json!(i.url));
                        if let Some(d) = &i.detail {
                            url.insert("detail".into(), json!(d));
                        }
                        json!({"type": "image_url", "image_url": url})
                    }
                    ContentPart::Text(t) => json!({"type": "text", "text": t}),
                })
                .collect(),
        )
    };
    o.insert("content".into(), content);
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m.tool_calls.iter().map(wire_tool_call).collect();
        o.insert("tool_calls".into(), Value::Array(calls));
    }
    if m.role == Role::Tool {
        o.insert(
            "tool_call_id".into(),
            json!(m.tool_call_id.as_deref().unwrap_or_default()),
        );
    }
    if let Some(n) = &m.name {
        o.insert("name".into(), json!(n));
    }
    Value::Object(o)
}

fn wire_tool_call(c: &ToolCall) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}

/// OpenAI's `tool_choice` value.
fn wire_tool_choice(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn wire_response_format(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        } => {
            let mut s = Map::new();
            s.insert("name".into(), json!(name));
            s.insert("schema".into(), schema.clone());
            if let Some(strict) = strict {
                s.insert("strict".into(), json!(strict));
            }
            if let Some(d) = description {
                s.insert("description".into(), json!(d));
            }
            json!({"type": "json_schema", "json_schema": s})
        }
    }
}

/// Inserts `value` under `key` when set.
fn put<T: serde::Serialize>(o: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value.and_then(|v| serde_json::to_value(v).ok()) {
        o.insert(key.to_owned(), v);
    }
}

/// The JSON body for `POST …/chat/completions`.
pub(crate) fn request_body(
    model: &str,
    request: &ChatRequest,
    provider_config: &LlmConfig,
    stream: bool,
) -> Result<Vec<u8>, ProviderError> {
    let config = request.config.over(provider_config);
    let mut o = Map::new();
    o.insert("model".into(), json!(model));
    o.insert(
        "messages".into(),
        Value::Array(request.messages.iter().map(wire_message).collect()),
    );
    put(&mut o, "temperature", config.temperature);
    put(&mut o, "max_tokens", config.max_tokens);
    put(&mut o, "top_p", config.top_p);
    if !config.stop.is_empty() {
        o.insert("stop".into(), json!(config.stop));
    }
    if stream {
        o.insert("stream".into(), json!(true));
        o.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), json!(t.name));
                put(&mut f, "description", t.description.as_deref());
                f.insert("parameters".into(), t.parameters.clone());
                put(&mut f, "strict", t.strict);
                json!({"type": "function", "function": f})
            })
            .collect();
        o.insert("tools".into(), Value::Array(tools));
    }
    put(
        &mut o,
        "tool_choice",
        request.tool_choice.as_ref().map(wire_tool_choice),
    );
    put(&mut o, "parallel_tool_calls", request.parallel_tool_calls);
    put(
        &mut o,
        "response_format",
        request.response_format.as_ref().map(wire_response_format),
    );
    let p = &request.params;
    put(&mut o, "seed", p.seed);
    put(&mut o, "frequency_penalty", p.frequency_penalty);
    put(&mut o, "presence_penalty", p.presence_penalty);
    put(&mut o, "logit_bias", p.logit_bias.as_ref());
    put(&mut o, "user", p.user.as_deref());
    put(&mut o, "n", p.n);
    put(&mut o, "reasoning_effort", p.reasoning_effort.as_deref());
    put(&mut o, "metadata", p.metadata.as_ref());
    put(&mut o, "store", p.store);
    put(&mut o, "service_tier", p.service_tier.as_deref());
    super::http::encode_body(o, p, ApiFormat::OpenAi)
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // one parameter per line reads best
mod tests {
    use super::*;
    use crate::{Image, Params, Tool};

    fn body(request: &ChatRequest) -> Value {
        serde_json::from_slice(&request_body("gpt", request, &LlmConfig::default(), false).unwrap())
            .unwrap()
    }

    #[test]
    fn tools_tool_messages_and_images_are_sent_as_openai_documents_them() {
        let schema = json!({"type":"object","properties":{"location":{"type":"string"}},"required":["location"]});
        let mut req = ChatRequest::new(vec![
            Message::user_parts(vec![
                ContentPart::Text("What's in this image?".into()),
                ContentPart::Image(Image::url("https://example.com/a.jpg").detail("low")),
            ]),
            Message::assistant_tool_calls(
                "",
                vec![ToolCall::new(
                    "call_abc123",
                    "get_current_weather",
                    "{\"location\":\"Boston, MA\"}",
                )],
            ),
            Message::tool_result("call_abc123", "{\"temperature\": 22}"),
        ])
        .tool(Tool::new("get_current_weather", schema.clone()).strict(true))
        .tool_choice(ToolChoice::Function("get_current_weather".into()));
        req.parallel_tool_calls = Some(false);
        let v = body(&req);
        assert_eq!(
            v["messages"][0]["content"],
            json!([{"type":"text","text":"What's in this image?"},
                   {"type":"image_url","image_url":{"url":"https://example.com/a.jpg","detail":"low"}}])
        );
        assert_eq!(
            v["messages"][1],
            json!({"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function",
                   "function":{"name":"get_current_weather","arguments":"{\"location\":\"Boston, MA\"}"}}]})
        );
        assert_eq!(
            v["messages"][2],
            json!({"role":"tool","content":"{\"temperature\": 22}","tool_call_id":"call_abc123"})
        );
        assert_eq!(
            v["tools"],
            json!([{"type":"function","function":{"name":"get_current_weather","parameters":schema,"strict":true}}])
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type":"function","function":{"name":"get_current_weather"}})
        );
        assert_eq!(v["parallel_tool_calls"], false);
    }

    #[test]
    fn response_format_and_parameters_pass_through() {
        let mut p = Params::default();
        p.seed = Some(3);
        p.frequency_penalty = Some(0.1);
        p.presence_penalty = Some(0.2);
        let mut bias = Map::new();
        bias.insert("50256".into(), json!(-100));
        p.logit_bias = Some(bias);
        p.user = Some("u".into());
        p.reasoning_effort = Some("low".into());
        p.metadata = Some(Map::new());
        p.store = Some(true);
        p.service_tier = Some("flex".into());
        let mut extra = Map::new();
        extra.insert("verbosity".into(), json!("low"));
        extra.insert("seed".into(), json!(999)); // a modelled field is never overridden
        p.extra = Some((ApiFormat::OpenAi, extra));
        let req = ChatRequest::user("x")
            .params(p)
            .response_format(ResponseFormat::JsonSchema {
                name: "math".into(),
                schema: json!({"type":"object"}),
                strict: Some(true),
                description: None,
            });
        let v = body(&req);
        assert_eq!(
            v["response_format"],
            json!({"type":"json_schema","json_schema":{"name":"math","schema":{"type":"object"},"strict":true}})
        );
        for (k, want) in [
            ("seed", json!(3)),
            ("logit_bias", json!({"50256": -100})),
            ("user", json!("u")),
            ("reasoning_effort", json!("low")),
            ("metadata", json!({})),
            ("store", json!(true)),
            ("service_tier", json!("flex")),
            ("verbosity", json!("low")),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
        assert!((v["frequency_penalty"].as_f64().unwrap() - 0.1).abs() < 1e-6);
        let v = body(&ChatRequest::user("x").response_format(ResponseFormat::JsonObject));
        assert_eq!(v["response_format"], json!({"type":"json_object"}));
    }

    #[test]
    fn what_no_openai_wire_provider_serves_is_refused_by_name() {
        let mut p = Params::default();
        p.n = Some(3);
        p.logprobs = Some(true);
        p.top_logprobs = Some(2);
        p.top_k = Some(5);
        let mut extra = Map::new();
        extra.insert("thinking".into(), json!({"type":"enabled"}));
        p.extra = Some((ApiFormat::Anthropic, extra));
        let u = check(&ChatRequest::user("x").params(p), &[]).unwrap_err();
        assert_eq!(
            u.params,
            ["n", "logprobs", "top_logprobs", "top_k", "thinking"]
        );
    }

    #[cfg(feature = "groq")]
    #[test]
    fn groq_refuses_what_its_api_documents_as_unsupported() {
        let mut p = Params::default();
        p.logit_bias = Some(Map::new());
        let req = ChatRequest::new(vec![Message::user("x").with_name("bob")]).params(p);
        let groq = crate::providers::GroqLlm::REFUSED;
        assert_eq!(
            check(&req, groq).unwrap_err().params,
            ["logit_bias", "messages[].name"]
        );
        assert!(check(&req, &[]).is_ok(), "OpenAI takes both");
    }
}
