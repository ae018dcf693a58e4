//! The OpenAI chat-completions wire format as the gateway speaks it: parse and validate
//! requests, encode answers, stream chunks and errors.

use std::fmt::Write as _;

use backstop::{ChatRequest, Chunk, FinishReason, LlmConfig, Message, Role, Usage};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Largest `max_tokens` we pass on; anything above is surely a mistake.
const MAX_TOKENS_LIMIT: u32 = 1_000_000;
/// OpenAI accepts at most four stop sequences.
const MAX_STOP: usize = 4;

/// A request the gateway refuses, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// The JSON path of the offending field (`messages[2].content`), if any.
    pub param: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl BadRequest {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
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
    // Features the chain cannot translate across providers yet: present → 400 naming them.
    tools: Option<IgnoredAny>,
    functions: Option<IgnoredAny>,
    tool_choice: Option<serde_json::Value>,
    function_call: Option<IgnoredAny>,
    audio: Option<IgnoredAny>,
    modalities: Option<Vec<String>>,
    response_format: Option<ResponseFormat>,
    logprobs: Option<bool>,
    prediction: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    tool_calls: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

/// A validated request: which chain, what to send, how to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRequest {
    /// The `model` field: the name of a chain.
    pub chain: String,
    /// What the providers receive.
    pub request: ChatRequest,
    /// Answer as a stream of SSE chunks.
    pub stream: bool,
    /// Send a usage chunk before `[DONE]`.
    pub include_usage: bool,
}

impl GatewayRequest {
    /// The request's id (set from `x-request-id` before the chain runs), `-` before that.
    pub fn request_id(&self) -> &str {
        self.request.request_id.as_deref().unwrap_or("-")
    }
}

/// Parses and validates a chat-completions body. Errors name the field at fault.
pub fn parse_request(body: &[u8]) -> Result<GatewayRequest, BadRequest> {
    // Fast path: a plain parse (which also rejects trailing characters). Only a body that
    // fails it is parsed again with path tracking, to name the bad field.
    match serde_json::from_slice::<WireRequest>(body) {
        Ok(wire) => validate(wire),
        Err(_) => Err(explain_parse_error(body)),
    }
}

/// Parses `body` again, tracking the JSON path, to say where and why it is not a request.
fn explain_parse_error(body: &[u8]) -> BadRequest {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let result: Result<WireRequest, _> = serde_path_to_error::deserialize(&mut *de);
    match result {
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = if inner.is_syntax() || inner.is_eof() {
                format!("request body is not valid JSON: {inner}")
            } else {
                inner.to_string()
            };
            BadRequest {
                param: (path != ".").then_some(path),
                message,
            }
        }
        // The object parsed, so what failed the plain parse is what follows it.
        Ok(_) => BadRequest {
            param: None,
            message: match de.end() {
                Err(e) => format!("request body is not valid JSON: {e}"),
                Ok(()) => "request body is not a valid chat completion request".to_owned(),
            },
        },
    }
}

fn validate(w: WireRequest) -> Result<GatewayRequest, BadRequest> {
    let unsupported = |field: &str, what: &str| {
        Err(BadRequest::new(
            field,
            format!("`{field}` is not supported by backstop yet ({what})"),
        ))
    };
    if w.tools.is_some() || w.functions.is_some() {
        return unsupported(
            if w.tools.is_some() {
                "tools"
            } else {
                "functions"
            },
            "tool calling",
        );
    }
    if w.function_call.is_some() {
        return unsupported("function_call", "tool calling");
    }
    if w.tool_choice
        .as_ref()
        .is_some_and(|v| v.as_str() != Some("none"))
    {
        return unsupported("tool_choice", "tool calling");
    }
    if w.audio.is_some()
        || w.modalities
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x != "text"))
    {
        return unsupported(
            if w.audio.is_some() {
                "audio"
            } else {
                "modalities"
            },
            "audio output",
        );
    }
    if w.prediction.is_some() {
        return unsupported("prediction", "predicted outputs");
    }
    if w.logprobs == Some(true) {
        return unsupported("logprobs", "log probabilities");
    }
    if let Some(f) = &w.response_format
        && f.kind != "text"
    {
        return unsupported("response_format", "structured output");
    }
    match w.n {
        None | Some(1) => {}
        Some(n) if n > 1 => return unsupported("n", "several choices per request"),
        Some(n) => return Err(BadRequest::new("n", format!("`n` must be 1, got {n}"))),
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
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" | "function" => {
                return unsupported(&format!("messages[{i}].role"), "tool results");
            }
            other => {
                return Err(BadRequest::new(
                    format!("messages[{i}].role"),
                    format!(
                        "unknown role {other:?}; expected system, developer, user or assistant"
                    ),
                ));
            }
        };
        if m.tool_calls.is_some() {
            return unsupported(&format!("messages[{i}].tool_calls"), "tool calling");
        }
        let content = match m.content {
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for (j, p) in parts.into_iter().enumerate() {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        ("text", None) => {
                            return Err(BadRequest::new(
                                format!("messages[{i}].content[{j}].text"),
                                "text part without `text`",
                            ));
                        }
                        (kind, _) => {
                            return unsupported(
                                &format!("messages[{i}].content[{j}]"),
                                &format!("{kind} input"),
                            );
                        }
                    }
                }
                text
            }
            None if role == Role::Assistant => String::new(),
            None => {
                return Err(BadRequest::new(
                    format!("messages[{i}].content"),
                    "message has no content",
                ));
            }
        };
        messages.push(Message::new(role, content));
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return Err(BadRequest::new(
            "messages",
            "`messages` must contain at least one user message",
        ));
    }
    let mut config = LlmConfig::default();
    if let Some(t) = w.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(BadRequest::new(
                "temperature",
                format!("`temperature` must be between 0 and 2, got {t}"),
            ));
        }
        config.temperature = Some(t);
    }
    if let Some(p) = w.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(BadRequest::new(
                "top_p",
                format!("`top_p` must be between 0 and 1, got {p}"),
            ));
        }
        config.top_p = Some(p);
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
    if config.stop.len() > MAX_STOP {
        return Err(BadRequest::new(
            "stop",
            format!("`stop` takes at most {MAX_STOP} sequences"),
        ));
    }
    if config.stop.iter().any(String::is_empty) {
        return Err(BadRequest::new(
            "stop",
            "`stop` sequences must not be empty",
        ));
    }
    Ok(GatewayRequest {
        chain: w.model,
        request: ChatRequest::new(messages).config(config),
        stream: w.stream.unwrap_or(false),
        include_usage: w.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// Appends `s` as a JSON string literal (quotes included).
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string escaping is correct and fast; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// OpenAI's `usage` object, with `prompt_tokens_details` / `completion_tokens_details` when
/// the provider reported them; `null` when usage is unknown (never invented zeros).
fn push_usage(out: &mut Vec<u8>, usage: Option<&Usage>) {
    let Some(u) = usage else {
        out.extend_from_slice(b"null");
        return;
    };
    let _ = write!(
        Utf8(out),
        r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}"#,
        u.input_tokens,
        u.output_tokens,
        u.total()
    );
    if let Some(cached) = u.cached_input_tokens {
        let _ = write!(
            Utf8(out),
            r#","prompt_tokens_details":{{"cached_tokens":{cached}}}"#
        );
    }
    if let Some(reasoning) = u.reasoning_tokens {
        let _ = write!(
            Utf8(out),
            r#","completion_tokens_details":{{"reasoning_tokens":{reasoning}}}"#
        );
    }
    out.push(b'}');
}

/// The finish reason as sent: always one of OpenAI's values (`stop` when none was reported).
fn openai_finish(finish: Option<&FinishReason>) -> &'static str {
    finish.map_or("stop", FinishReason::as_openai_str)
}

/// A whole answer, as the `chat.completion` body says it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The generated text.
    pub text: &'a str,
    /// The model's refusal, when it declined (`message.refusal`).
    pub refusal: Option<&'a str>,
    /// Why generation stopped.
    pub finish: Option<&'a FinishReason>,
    /// Token counts, when known.
    pub usage: Option<&'a Usage>,
}

/// A whole `chat.completion` body.
pub fn completion_body(id: &str, created: u64, model: &str, answer: Answer<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(answer.text.len() + 256);
    out.extend_from_slice(br#"{"id":"#);
    push_json_str(&mut out, id);
    let _ = write!(
        Utf8(&mut out),
        r#","object":"chat.completion","created":{created},"model":"#
    );
    push_json_str(&mut out, model);
    out.extend_from_slice(br#","choices":[{"index":0,"message":{"role":"assistant","content":"#);
    match (answer.refusal, answer.text) {
        // A refusal with no text: content is null, as OpenAI sends it.
        (Some(_), "") => out.extend_from_slice(b"null"),
        (_, text) => push_json_str(&mut out, text),
    }
    out.extend_from_slice(br#","refusal":"#);
    match answer.refusal {
        Some(r) => push_json_str(&mut out, r),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#"},"logprobs":null,"finish_reason":"#);
    push_json_str(&mut out, openai_finish(answer.finish));
    out.extend_from_slice(br#"}],"usage":"#);
    push_usage(&mut out, answer.usage);
    out.extend_from_slice(b"}");
    out
}

/// Encodes one stream's chunks as OpenAI `chat.completion.chunk` SSE events. The constant
/// prefix (id, created, model) is rendered once per stream. With `include_usage`, every chunk
/// carries `"usage":null` and a last chunk before `[DONE]` carries the usage (or `null` when
/// the provider reported none), as OpenAI documents.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    prefix: Vec<u8>,
    include_usage: bool,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

impl ChunkEncoder {
    /// An encoder for one stream.
    pub fn new(id: &str, created: u64, model: &str, include_usage: bool) -> Self {
        let mut prefix = Vec::with_capacity(96 + model.len());
        prefix.extend_from_slice(br#"data: {"id":"#);
        push_json_str(&mut prefix, id);
        let _ = write!(
            Utf8(&mut prefix),
            r#","object":"chat.completion.chunk","created":{created},"model":"#
        );
        push_json_str(&mut prefix, model);
        Self {
            prefix,
            include_usage,
            usage: None,
            finish: None,
        }
    }

    /// Ends one chunk event: `"usage":null` when usage was asked for, then the blank line.
    fn close(&self, out: &mut Vec<u8>) {
        if self.include_usage {
            out.extend_from_slice(br#","usage":null"#);
        }
        out.extend_from_slice(b"}\n\n");
    }

    /// The first event: the assistant role with empty content.
    pub fn role(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        out.extend_from_slice(br#","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]"#);
        self.close(&mut out);
        out
    }

    /// The event for one chunk (empty when the chunk only carries metadata, which is kept for the end).
    pub fn chunk(&mut self, chunk: &Chunk) -> Vec<u8> {
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.finish_reason.is_some() {
            self.finish.clone_from(&chunk.finish_reason);
        }
        let refusal = chunk.refusal.as_deref().filter(|r| !r.is_empty());
        if chunk.text.is_empty() && refusal.is_none() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.prefix.len() + chunk.text.len() + 96);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(br#","choices":[{"index":0,"delta":{"#);
        if !chunk.text.is_empty() {
            out.extend_from_slice(br#""content":"#);
            push_json_str(&mut out, &chunk.text);
        }
        if let Some(r) = refusal {
            if !chunk.text.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""refusal":"#);
            push_json_str(&mut out, r);
        }
        out.extend_from_slice(br#"},"logprobs":null,"finish_reason":null}]"#);
        self.close(&mut out);
        out
    }

    /// Usage reported so far on this stream.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The finish reason reported so far, as the provider said it.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish.as_ref()
    }

    /// The closing events: finish reason, usage (when asked for) and `[DONE]`.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        out.extend_from_slice(
            br#","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"#,
        );
        push_json_str(&mut out, openai_finish(self.finish.as_ref()));
        out.extend_from_slice(b"}]");
        self.close(&mut out);
        if self.include_usage {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(br#","choices":[],"usage":"#);
            push_usage(&mut out, self.usage.as_ref());
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        out
    }
}

/// An OpenAI-shaped error body: `{"error":{"message","type","param","code"}}`.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 96);
    out.extend_from_slice(br#"{"error":{"message":"#);
    push_json_str(&mut out, message);
    out.extend_from_slice(br#","type":"#);
    push_json_str(&mut out, kind);
    out.extend_from_slice(br#","param":"#);
    match param {
        Some(p) => push_json_str(&mut out, p),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","code":"#);
    match code {
        Some(c) => push_json_str(&mut out, c),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
    out
}

/// An in-stream error event, ending a stream that already started.
pub fn error_event(message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&error_body(message, kind, None, code));
    out.extend_from_slice(b"\n\n");
    out
}

/// `fmt::Write` into a byte buffer.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(body: &str) -> BadRequest {
        match parse_request(body.as_bytes()) {
            Ok(r) => panic!("accepted {body}: {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_a_plain_request() {
        let r = parse_request(
            br#"{"model":"default","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],"temperature":0.2,"max_tokens":64,"stop":"END","stream":true,"stream_options":{"include_usage":true},"user":"u1"}"#,
        )
        .unwrap();
        assert_eq!(r.chain, "default");
        assert!(r.stream && r.include_usage);
        assert_eq!(
            r.request.messages,
            vec![Message::system("be brief"), Message::user("hi there")]
        );
        assert_eq!(r.request.config.temperature, Some(0.2));
        assert_eq!(r.request.config.max_tokens, Some(64));
        assert_eq!(r.request.config.stop, vec!["END".to_string()]);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            bad(r#"{"model":"m","messages":[]}"#).param.as_deref(),
            Some("messages")
        );
        assert_eq!(
            bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]}"#)
                .param
                .as_deref(),
            Some("tools")
        );
        assert_eq!(
            bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":3}"#)
                .param
                .as_deref(),
            Some("n")
        );
        assert_eq!(
            bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-5}"#)
                .param
                .as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"5"}"#)
                .param
                .as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            bad(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#).param.as_deref(),
            Some("messages[0].content[0]")
        );
        assert_eq!(
            bad(r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#)
                .param
                .as_deref(),
            Some("messages[0].role")
        );
        let e = bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}"#);
        assert!(e.message.contains("not valid JSON"), "{e:?}");
        let missing = bad(r#"{"messages":[{"role":"user","content":"x"}]}"#);
        assert!(
            missing.message.starts_with("missing field `model`"),
            "{missing:?}"
        );
    }

    /// The JSON of each `data:` event (but `[DONE]`).
    fn events(bytes: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty() && *e != "data: [DONE]")
            .map(|e| serde_json::from_str(&e[6..]).unwrap())
            .collect()
    }

    #[test]
    fn stream_events_are_valid_openai_chunks() {
        let mut enc = ChunkEncoder::new("chatcmpl-1", 7, "gpt-x", true);
        let role = &events(&enc.role())[0];
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert!(role["usage"].is_null() && role.get("usage").is_some());
        let ev = enc.chunk(&Chunk::text("he said \"hi\"\n"));
        assert!(ev.starts_with(b"data: ") && ev.ends_with(b"\n\n"));
        let v = &events(&ev)[0];
        assert_eq!(v["choices"][0]["delta"]["content"], "he said \"hi\"\n");
        assert_eq!(v["object"], "chat.completion.chunk");
        assert!(v.get("usage").is_some_and(serde_json::Value::is_null));
        assert!(
            enc.chunk(&Chunk {
                usage: Some(Usage::new(3, 4).cached_input(Some(2)).reasoning(Some(1))),
                finish_reason: Some(FinishReason::Other("pause_turn".into())),
                ..Chunk::default()
            })
            .is_empty()
        );
        let end = enc.finish();
        assert!(end.ends_with(b"data: [DONE]\n\n"));
        let events = events(&end);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["choices"][0]["finish_reason"], "length");
        assert!(events[0]["usage"].is_null());
        let usage = &events[1]["usage"];
        assert_eq!(usage["total_tokens"], 7);
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 1);
        assert_eq!(events[1]["choices"], serde_json::json!([]));
    }

    #[test]
    fn unknown_usage_is_null_never_zeros() {
        let mut enc = ChunkEncoder::new("c", 1, "m", true);
        enc.chunk(&Chunk::text("hi"));
        let events = events(&enc.finish());
        let last = events.last().unwrap();
        assert!(
            last.get("usage").is_some_and(serde_json::Value::is_null),
            "{last}"
        );
        // Without include_usage no chunk mentions usage at all.
        let mut plain = ChunkEncoder::new("c", 1, "m", false);
        let mut bytes = plain.role();
        bytes.extend(plain.chunk(&Chunk::text("hi")));
        bytes.extend(plain.finish());
        assert!(!String::from_utf8(bytes).unwrap().contains("usage"));
        let body = completion_body(
            "id",
            1,
            "m",
            Answer {
                text: "x",
                refusal: None,
                finish: None,
                usage: None,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("usage").is_some_and(serde_json::Value::is_null));
    }

    #[test]
    fn refusals_are_kept() {
        let mut enc = ChunkEncoder::new("c", 1, "m", false);
        let ev = enc.chunk(&Chunk {
            refusal: Some("I can't help with that.".into()),
            ..Chunk::default()
        });
        let v = &events(&ev)[0];
        assert_eq!(
            v["choices"][0]["delta"]["refusal"],
            "I can't help with that."
        );
        assert!(v["choices"][0]["delta"].get("content").is_none());
        let body = completion_body(
            "id",
            1,
            "m",
            Answer {
                text: "",
                refusal: Some("No."),
                finish: Some(&FinishReason::Stop),
                usage: None,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["choices"][0]["message"]["content"].is_null());
        assert_eq!(v["choices"][0]["message"]["refusal"], "No.");
    }

    #[test]
    fn completion_body_is_valid_json() {
        let body = completion_body(
            "id1",
            1,
            "m",
            Answer {
                text: "a \"quoted\" answer",
                refusal: None,
                finish: Some(&FinishReason::Length),
                usage: Some(&Usage::new(1, 2)),
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "a \"quoted\" answer");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 3);
        let err: serde_json::Value = serde_json::from_slice(&error_body(
            "no \"x\"",
            "invalid_request_error",
            Some("model"),
            None,
        ))
        .unwrap();
        assert_eq!(err["error"]["param"], "model");
        assert!(err["error"]["code"].is_null());
    }
}
