//! The OpenAI chat-completions wire format as the gateway speaks it: parse and validate
//! requests, encode answers, stream chunks and errors.

use backstop::{ApiFormat, ChatRequest, Chunk, FinishReason, ToolCall, ToolCallDelta, Usage};

/// A request the gateway refuses, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// The JSON path of the offending field (`messages[2].content`), if any.
    pub param: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl BadRequest {
    pub(crate) fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            message: message.into(),
        }
    }
}

/// A field backstop cannot relay, refused by name.
pub(crate) fn refused(field: &str, why: &str) -> BadRequest {
    BadRequest::new(
        field,
        format!("`{field}` is not supported by backstop ({why})"),
    )
}

/// Fields of a nested object backstop does not model: refused by name (`at.key`), so none is
/// dropped silently. `null`s and empty lists are as good as absent (SDKs echo them back).
/// `at` is formatted only for the error (callers pass `format_args!`): every message of every
/// request passes through here.
pub(crate) fn no_extras(
    extra: &serde_json::Map<String, serde_json::Value>,
    at: impl std::fmt::Display,
) -> Result<(), BadRequest> {
    let set = |v: &serde_json::Value| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty));
    match extra.iter().find(|(_, v)| set(v)) {
        Some((key, _)) => Err(refused(
            &format!("{at}.{key}"),
            "not relayed across providers",
        )),
        None => Ok(()),
    }
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
    /// The API the request came in (and is answered in): OpenAI chat completions, or
    /// Anthropic messages.
    pub api: ApiFormat,
}

impl GatewayRequest {
    /// The request's id (set from `x-request-id` before the chain runs), `-` before that.
    pub fn request_id(&self) -> &str {
        self.request.request_id.as_deref().unwrap_or("-")
    }
}

pub use crate::openai_request::parse_request;

/// Parses `body` again as a `T`, tracking the JSON path, to say where and why it is not one.
pub(crate) fn explain_parse_error<T: serde::de::DeserializeOwned>(body: &[u8]) -> BadRequest {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
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
                param: (path != ".").then(|| bounded_path(path)),
                message,
            }
        }
        // The object parsed, so what failed the plain parse is what follows it.
        Ok(_) => BadRequest {
            param: None,
            message: match de.end() {
                Err(e) => format!("request body is not valid JSON: {e}"),
                Ok(()) => "request body is not a valid request".to_owned(),
            },
        },
    }
}

/// A JSON path cut to its first 100 characters (deeply nested input makes huge ones).
fn bounded_path(mut path: String) -> String {
    if path.len() > 100 {
        let mut end = 100;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path.truncate(end);
        path.push('…');
    }
    path
}

/// Stop sequences: at most four, none empty.
pub(crate) fn check_stop(stop: &[String], field: &str) -> Result<(), BadRequest> {
    use crate::openai_request::MAX_STOP;
    if stop.len() > MAX_STOP {
        return Err(BadRequest::new(
            field,
            format!("`{field}` takes at most {MAX_STOP} sequences"),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(BadRequest::new(
            field,
            format!("`{field}` sequences must not be empty"),
        ));
    }
    Ok(())
}

/// Appends `s` as a JSON string literal (quotes included).
pub use backstop::providers::push_json_str;

/// OpenAI's `usage` object, with `prompt_tokens_details` / `completion_tokens_details` when
/// the provider reported them; `null` when usage is unknown (never invented zeros).
fn push_usage(out: &mut Vec<u8>, usage: Option<&Usage>) {
    let Some(u) = usage else {
        out.extend_from_slice(b"null");
        return;
    };
    out.extend_from_slice(br#"{"prompt_tokens":"#);
    push_int(out, u.input_tokens);
    out.extend_from_slice(br#","completion_tokens":"#);
    push_int(out, u.output_tokens);
    out.extend_from_slice(br#","total_tokens":"#);
    push_int(out, u.total());
    if let Some(cached) = u.cached_input_tokens {
        out.extend_from_slice(br#","prompt_tokens_details":{"cached_tokens":"#);
        push_int(out, cached);
        out.push(b'}');
    }
    if let Some(reasoning) = u.reasoning_tokens {
        out.extend_from_slice(br#","completion_tokens_details":{"reasoning_tokens":"#);
        push_int(out, reasoning);
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends an integer in decimal (itoa: `write!` costs a formatter per number).
pub fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
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
    /// The tool calls the model made.
    pub tool_calls: &'a [ToolCall],
}

/// A whole `chat.completion` body.
pub fn completion_body(id: &str, created: u64, model: &str, answer: Answer<'_>) -> Vec<u8> {
    // The frame around the text, usage details included, is some 450 bytes: no regrowth.
    let mut out = Vec::with_capacity(answer.text.len() + id.len() + model.len() + 512);
    out.extend_from_slice(br#"{"id":"#);
    push_json_str(&mut out, id);
    out.extend_from_slice(br#","object":"chat.completion","created":"#);
    push_int(&mut out, created);
    out.extend_from_slice(br#","model":"#);
    push_json_str(&mut out, model);
    out.extend_from_slice(br#","choices":[{"index":0,"message":{"role":"assistant","content":"#);
    match (answer.refusal, answer.text) {
        // A refusal or tool calls with no text: content is null, as OpenAI sends it.
        (Some(_), "") => out.extend_from_slice(b"null"),
        (None, "") if !answer.tool_calls.is_empty() => out.extend_from_slice(b"null"),
        (_, text) => push_json_str(&mut out, text),
    }
    out.extend_from_slice(br#","refusal":"#);
    match answer.refusal {
        Some(r) => push_json_str(&mut out, r),
        None => out.extend_from_slice(b"null"),
    }
    if !answer.tool_calls.is_empty() {
        out.extend_from_slice(br#","tool_calls":["#);
        for (i, c) in answer.tool_calls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            push_json_str(&mut out, &c.id);
            out.extend_from_slice(br#","type":"function","function":{"name":"#);
            push_json_str(&mut out, &c.name);
            out.extend_from_slice(br#","arguments":"#);
            push_json_str(&mut out, &c.arguments);
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
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
        prefix.extend_from_slice(br#","object":"chat.completion.chunk","created":"#);
        push_int(&mut prefix, created);
        prefix.extend_from_slice(br#","model":"#);
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

    /// Appends the event for one chunk to `out` (a frame gathering several events); nothing
    /// when the chunk only carries metadata, which is kept for the end.
    pub fn chunk(&mut self, chunk: &Chunk, out: &mut Vec<u8>) {
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.finish_reason.is_some() {
            self.finish.clone_from(&chunk.finish_reason);
        }
        let refusal = chunk.refusal.as_deref().filter(|r| !r.is_empty());
        if chunk.text.is_empty() && refusal.is_none() && chunk.tool_calls.is_empty() {
            return;
        }
        out.reserve(self.prefix.len() + chunk.text.len() + 96);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(br#","choices":[{"index":0,"delta":{"#);
        if !chunk.text.is_empty() {
            out.extend_from_slice(br#""content":"#);
            push_json_str(out, &chunk.text);
        }
        if let Some(r) = refusal {
            if !chunk.text.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""refusal":"#);
            push_json_str(out, r);
        }
        if !chunk.tool_calls.is_empty() {
            if !chunk.text.is_empty() || refusal.is_some() {
                out.push(b',');
            }
            push_tool_call_deltas(out, &chunk.tool_calls);
        }
        out.extend_from_slice(br#"},"logprobs":null,"finish_reason":null}]"#);
        self.close(out);
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

/// `"tool_calls":[{"index","id","type","function":{"name","arguments"}}]`: the opening
/// fragment of a call names it, later ones carry arguments only.
fn push_tool_call_deltas(out: &mut Vec<u8>, deltas: &[ToolCallDelta]) {
    out.extend_from_slice(br#""tool_calls":["#);
    for (i, d) in deltas.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"index":"#);
        push_int(out, d.index);
        if let Some(id) = &d.id {
            out.extend_from_slice(br#","id":"#);
            push_json_str(out, id);
            out.extend_from_slice(br#","type":"function""#);
        }
        out.extend_from_slice(br#","function":{"#);
        if let Some(name) = &d.name {
            out.extend_from_slice(br#""name":"#);
            push_json_str(out, name);
            out.push(b',');
        }
        out.extend_from_slice(br#""arguments":"#);
        push_json_str(out, &d.arguments);
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON of each `data:` event (but `[DONE]`).
    fn events(bytes: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty() && *e != "data: [DONE]")
            .map(|e| serde_json::from_str(&e[6..]).unwrap())
            .collect()
    }

    /// One chunk's event on its own.
    fn chunk(enc: &mut ChunkEncoder, c: &Chunk) -> Vec<u8> {
        let mut out = Vec::new();
        enc.chunk(c, &mut out);
        out
    }

    #[test]
    fn stream_events_are_valid_openai_chunks() {
        let mut enc = ChunkEncoder::new("chatcmpl-1", 7, "gpt-x", true);
        let role = &events(&enc.role())[0];
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert!(role["usage"].is_null() && role.get("usage").is_some());
        let ev = chunk(&mut enc, &Chunk::text("he said \"hi\"\n"));
        assert!(ev.starts_with(b"data: ") && ev.ends_with(b"\n\n"));
        let v = &events(&ev)[0];
        assert_eq!(v["choices"][0]["delta"]["content"], "he said \"hi\"\n");
        assert_eq!(v["object"], "chat.completion.chunk");
        assert!(v.get("usage").is_some_and(serde_json::Value::is_null));
        assert!(
            chunk(
                &mut enc,
                &Chunk {
                    usage: Some(Usage::new(3, 4).cached_input(Some(2)).reasoning(Some(1))),
                    finish_reason: Some(FinishReason::Other("pause_turn".into())),
                    ..Chunk::default()
                }
            )
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
        chunk(&mut enc, &Chunk::text("hi"));
        let events = events(&enc.finish());
        let last = events.last().unwrap();
        assert!(
            last.get("usage").is_some_and(serde_json::Value::is_null),
            "{last}"
        );
        // Without include_usage no chunk mentions usage at all.
        let mut plain = ChunkEncoder::new("c", 1, "m", false);
        let mut bytes = plain.role();
        plain.chunk(&Chunk::text("hi"), &mut bytes);
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
                tool_calls: &[],
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("usage").is_some_and(serde_json::Value::is_null));
    }

    #[test]
    fn refusals_are_kept() {
        let mut enc = ChunkEncoder::new("c", 1, "m", false);
        let ev = chunk(
            &mut enc,
            &Chunk {
                refusal: Some("I can't help with that.".into()),
                ..Chunk::default()
            },
        );
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
                tool_calls: &[],
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
                tool_calls: &[],
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

    #[test]
    fn tool_calls_are_encoded_as_openai_documents_them() {
        let calls = [ToolCall::new(
            "call_1",
            "get_weather",
            "{\"city\":\"Paris\"}",
        )];
        let body = completion_body(
            "id",
            1,
            "m",
            Answer {
                text: "",
                refusal: None,
                finish: Some(&FinishReason::ToolCalls),
                usage: None,
                tool_calls: &calls,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let m = &v["choices"][0]["message"];
        assert!(m["content"].is_null());
        assert_eq!(
            m["tool_calls"],
            serde_json::json!([{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}])
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

        let mut enc = ChunkEncoder::new("c", 1, "m", false);
        let open = &events(&chunk(
            &mut enc,
            &Chunk::tool_call(ToolCallDelta::start(0, "call_1", "get_weather")),
        ))[0];
        assert_eq!(
            open["choices"][0]["delta"]["tool_calls"],
            serde_json::json!([{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}])
        );
        let args = &events(&chunk(
            &mut enc,
            &Chunk::tool_call(ToolCallDelta::arguments(0, "{\"city\"")),
        ))[0];
        assert_eq!(
            args["choices"][0]["delta"]["tool_calls"],
            serde_json::json!([{"index":0,"function":{"arguments":"{\"city\""}}])
        );
        chunk(
            &mut enc,
            &Chunk {
                finish_reason: Some(FinishReason::ToolCalls),
                ..Chunk::default()
            },
        );
        let end = events(&enc.finish());
        assert_eq!(end[0]["choices"][0]["finish_reason"], "tool_calls");
    }
}
