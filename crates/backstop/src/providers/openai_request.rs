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
    // Listing the features allocates: only done for a provider kind that refuses some.
    if !refused.is_empty() {
        for f in request.features() {
            u.add_if(refused.contains(&f.as_str()), &f);
        }
    }
    if refused.contains(&"messages[].name") && request.messages.iter().any(|m| m.name.is_some()) {
        u.add("messages[].name");
    }
    u.into_result()
}

/// Writes one message: text content as a string (null for tool calls without text), parts
/// (text and images) as OpenAI's content array.
fn write_message(out: &mut Object<'_>, m: &Message) {
    out.str("role", m.role.as_str());
    if !m.parts.is_empty() {
        let parts: Vec<Value> = m
            .parts
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
            .collect();
        out.value("content", &parts);
    } else if m.content.is_empty() && !m.tool_calls.is_empty() {
        out.raw("content", b"null");
    } else {
        out.str("content", &m.content);
    }
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m.tool_calls.iter().map(wire_tool_call).collect();
        out.value("tool_calls", &calls);
    }
    if m.role == Role::Tool {
        out.str(
            "tool_call_id",
            m.tool_call_id.as_deref().unwrap_or_default(),
        );
    }
    if let Some(n) = &m.name {
        out.str("name", n);
    }
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

/// A JSON object written straight into its bytes, remembering its keys (extras never
/// override a modelled field). Building a `serde_json::Map` first cost 4,500 instructions per
/// request (BENCHMARKS.md); this also writes an `f32` as the caller wrote it (`0.7`, not the
/// `0.699999988079071` its widening to `f64` in a `Value` gave).
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// The keys written, when extras may follow (`finish` skips those); else none are kept.
    keys: Option<Vec<&'static str>>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object {
            out,
            keys: None,
            empty: true,
        }
    }

    /// An object that [`Object::finish`] may add `format`'s extras of `params` to.
    fn with_extras(out: &'a mut Vec<u8>, params: &crate::Params, format: ApiFormat) -> Self {
        let mut o = Object::new(out);
        if params
            .extra
            .as_ref()
            .is_some_and(|(from, _)| *from == format)
        {
            o.keys = Some(Vec::with_capacity(16));
        }
        o
    }

    fn any_key(&mut self, key: &str) {
        if !std::mem::replace(&mut self.empty, false) {
            self.out.push(b',');
        }
        super::push_json_str(self.out, key);
        self.out.push(b':');
    }

    /// One of ours: a plain literal, written as it is (no escaping to look for).
    fn key(&mut self, key: &'static str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if let Some(keys) = &mut self.keys {
            keys.push(key);
        }
        if !std::mem::replace(&mut self.empty, false) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn raw(&mut self, key: &'static str, json: &[u8]) {
        self.key(key);
        self.out.extend_from_slice(json);
    }

    fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        super::push_json_str(self.out, value);
    }

    fn value<T: serde::Serialize + ?Sized>(&mut self, key: &'static str, value: &T) {
        self.key(key);
        write_value(self.out, value);
    }

    /// `value` when set; nothing when not.
    fn put<T: serde::Serialize>(&mut self, key: &'static str, value: Option<T>) {
        if let Some(v) = value {
            self.value(key, &v);
        }
    }

    /// Ends the object, adding the caller's extra members for `format` whose keys were not
    /// written.
    fn finish(mut self, params: &crate::Params, format: ApiFormat) {
        if let Some((from, extra)) = &params.extra
            && *from == format
        {
            let written = self.keys.take().unwrap_or_default();
            for (k, v) in extra {
                if !written.contains(&k.as_str()) {
                    self.any_key(k);
                    write_value(self.out, v);
                }
            }
        }
        self.close();
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Writes `value` as JSON. Writing into a Vec fails only for what JSON cannot say (a map with
/// non-string keys, which no field here has): null then.
fn write_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
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
    let mut bytes = Vec::with_capacity(
        256 + request
            .messages
            .iter()
            .map(|m| m.content.len())
            .sum::<usize>(),
    );
    let mut o = Object::with_extras(&mut bytes, &request.params, ApiFormat::OpenAi);
    o.str("model", model);
    o.key("messages");
    o.out.push(b'[');
    for (i, m) in request.messages.iter().enumerate() {
        if i > 0 {
            o.out.push(b',');
        }
        let mut inner = Object::new(o.out);
        write_message(&mut inner, m);
        inner.close();
    }
    o.out.push(b']');
    o.put("temperature", config.temperature);
    o.put("max_tokens", config.max_tokens);
    o.put("top_p", config.top_p);
    if !config.stop.is_empty() {
        o.value("stop", &config.stop);
    }
    if stream {
        o.raw("stream", b"true");
        o.raw("stream_options", br#"{"include_usage":true}"#);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), json!(t.name));
                if let Some(d) = &t.description {
                    f.insert("description".into(), json!(d));
                }
                f.insert("parameters".into(), t.parameters.clone());
                if let Some(strict) = t.strict {
                    f.insert("strict".into(), json!(strict));
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        o.value("tools", &tools);
    }
    o.put(
        "tool_choice",
        request.tool_choice.as_ref().map(wire_tool_choice),
    );
    o.put("parallel_tool_calls", request.parallel_tool_calls);
    o.put(
        "response_format",
        request.response_format.as_ref().map(wire_response_format),
    );
    let p = &request.params;
    o.put("seed", p.seed);
    o.put("frequency_penalty", p.frequency_penalty);
    o.put("presence_penalty", p.presence_penalty);
    o.put("logit_bias", p.logit_bias.as_ref());
    o.put("user", p.user.as_deref());
    o.put("n", p.n);
    o.put("reasoning_effort", p.reasoning_effort.as_deref());
    o.put("metadata", p.metadata.as_ref());
    o.put("store", p.store);
    o.put("service_tier", p.service_tier.as_deref());
    o.finish(p, ApiFormat::OpenAi);
    Ok(bytes)
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
    fn numbers_are_sent_as_the_caller_wrote_them() {
        let req = ChatRequest::user("x").config(LlmConfig::new(0.7, 64).top_p(0.9));
        let bytes = request_body("gpt", &req, &LlmConfig::default(), true).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        // An f32 through a serde_json `Value` became 0.699999988079071.
        assert!(text.contains(r#""temperature":0.7,"#), "{text}");
        assert!(text.contains(r#""top_p":0.9"#), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert_eq!(v["messages"], json!([{"role": "user", "content": "x"}]));
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
