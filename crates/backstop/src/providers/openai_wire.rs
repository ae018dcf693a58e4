//! The OpenAI chat-completions wire format, shared by OpenAI, Groq and OpenAI-compatible
//! servers: request body, response and chunk types, and error classification.

use std::time::Duration;

use serde::Deserialize;

mod fast_chunk;
mod fast_completion;
pub(super) mod json_cursor;

use super::core::{HttpCore, WireFormat};
use super::http::{self, Step, StreamParser};
use super::openai_request::check;
pub(crate) use super::openai_request::request_body;
use super::sse::SseEvent;
use crate::{
    ChatRequest, Chunk, Completion, ErrorKind, FinishReason, LlmConfig, ProviderError, ToolCall,
    ToolCallDelta, Unsupported, Usage,
};

// ---------------------------------------------------------------------------------------------
// Responses

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct ChatCompletion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorValue>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A streamed `delta.tool_calls[i]` fragment.
#[derive(Deserialize)]
struct WireToolCallDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

/// OpenAI `usage`; a count that is absent is unknown, not zero.
#[derive(Deserialize, Clone, Copy, Debug)]
#[cfg_attr(test, derive(PartialEq))]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[cfg_attr(test, derive(PartialEq))]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[cfg_attr(test, derive(PartialEq))]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// The usage, when both main counts were reported.
    fn to_usage(self) -> Option<Usage> {
        let usage = Usage::new(
            http::tokens(self.prompt_tokens?),
            http::tokens(self.completion_tokens?),
        );
        Some(
            usage
                .cached_input(
                    self.prompt_tokens_details
                        .and_then(|d| d.cached_tokens)
                        .map(http::tokens),
                )
                .reasoning(
                    self.completion_tokens_details
                        .and_then(|d| d.reasoning_tokens)
                        .map(http::tokens),
                ),
        )
    }
}

/// Maps OpenAI's `finish_reason`.
pub(crate) fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Parses a 2xx chat completion body.
pub(crate) fn parse_completion(
    body: &[u8],
    fallback_model: &str,
) -> Result<Completion, ProviderError> {
    let fast = std::str::from_utf8(body)
        .ok()
        .and_then(fast_completion::fast_completion);
    let parsed: ChatCompletion = match fast {
        Some(parsed) => parsed,
        None => http::from_json_body(body)
            .map_err(|e| ProviderError::protocol(format!("malformed chat completion: {e}")))?,
    };
    if let Some(error) = parsed.error {
        return Err(in_band_error(&error));
    }
    let choice = parsed
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::protocol("chat completion has no choices"))?;
    let (text, refusal, calls) = match choice.message {
        Some(m) => (
            m.content.unwrap_or_default(),
            m.refusal,
            m.tool_calls.unwrap_or_default(),
        ),
        None => (String::new(), None, Vec::new()),
    };
    let tool_calls = calls
        .into_iter()
        .map(|c| {
            let f = c.function.unwrap_or(WireFunction {
                name: None,
                arguments: None,
            });
            ToolCall::new(
                c.id.unwrap_or_default(),
                f.name.unwrap_or_default(),
                f.arguments.unwrap_or_default(),
            )
        })
        .collect();
    Ok(Completion {
        text,
        model: parsed.model.unwrap_or_else(|| fallback_model.to_owned()),
        usage: parsed.usage.and_then(WireUsage::to_usage),
        finish_reason: choice.finish_reason.as_deref().map(finish_reason),
        refusal: refusal.filter(|r| !r.is_empty()),
        tool_calls,
        upstream_request_id: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The error shapes OpenAI-compatible servers send: `{"error":{...}}` or `{"error":"..."}`
/// (OpenAI, most servers), a top-level `message` (vLLM's older `{"object":"error",...}`),
/// or a top-level `detail` string (FastAPI-based servers).
#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<ErrorValue>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

impl ErrorEnvelope {
    /// The error in the envelope, whichever shape it came in.
    fn into_error(self) -> Option<ErrorValue> {
        if self.error.is_some() {
            return self.error;
        }
        if let Some(message) = self.message {
            return Some(ErrorValue::Object(WireError {
                message: Some(message),
                kind: self.kind,
                code: None,
            }));
        }
        match self.detail {
            Some(serde_json::Value::String(d)) => Some(ErrorValue::Text(d)),
            _ => None,
        }
    }
}

/// `error` is an object on OpenAI; some compatible servers send a bare string.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(untagged)]
pub(crate) enum ErrorValue {
    Object(WireError),
    Text(String),
}

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ErrorValue {
    fn parts(&self) -> (Option<&str>, Option<&str>, Option<&serde_json::Value>) {
        match self {
            ErrorValue::Object(e) => (e.message.as_deref(), e.kind.as_deref(), e.code.as_ref()),
            ErrorValue::Text(s) => (Some(s), None, None),
        }
    }
}

/// Provider error codes that decide the kind whatever the status.
fn kind_from_code(code: Option<&str>, kind: Option<&str>, message: &str) -> Option<ErrorKind> {
    match code {
        Some("context_length_exceeded" | "string_above_max_length") => {
            return Some(ErrorKind::ContextLengthExceeded);
        }
        Some("content_filter" | "content_policy_violation") => {
            return Some(ErrorKind::ContentFiltered);
        }
        _ => {}
    }
    if kind == Some("content_filter") {
        return Some(ErrorKind::ContentFiltered);
    }
    // vLLM and other compatible servers say it in words only.
    if message.contains("maximum context length") {
        return Some(ErrorKind::ContextLengthExceeded);
    }
    None
}

/// Classifies an error status with an OpenAI-style body.
pub(crate) fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> ProviderError {
    let error = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(ErrorEnvelope::into_error);
    let (message, kind, code) = error.as_ref().map(ErrorValue::parts).unwrap_or_default();
    let mut err = http::status_error(status, retry_after, message, body);
    let code = code.and_then(serde_json::Value::as_str);
    // Out of credit is not a rate limit, whatever the status says.
    if is_quota(code, kind) {
        err.kind = ErrorKind::QuotaExhausted;
        return err;
    }
    // Servers that answer in plain text still say "maximum context length" in words: the
    // body decides the kind even when it is not shown.
    let words = match message {
        Some(m) => std::borrow::Cow::Borrowed(m),
        None => String::from_utf8_lossy(body),
    };
    // A 429 stays a rate limit and 5xx stay themselves; codes refine client errors.
    if (400..500).contains(&status)
        && status != 429
        && let Some(k) = kind_from_code(code, kind, &words)
    {
        err.kind = k;
    }
    err
}

/// OpenAI's "you exceeded your current quota" (a 429 with `insufficient_quota`) and billing limits.
fn is_quota(code: Option<&str>, kind: Option<&str>) -> bool {
    const QUOTA: [&str; 3] = [
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
    ];
    code.is_some_and(|c| QUOTA.contains(&c)) || kind.is_some_and(|k| QUOTA.contains(&k))
}

/// Classifies an error delivered inside a 2xx body or stream (no HTTP status of its own).
pub(crate) fn in_band_error(error: &ErrorValue) -> ProviderError {
    let (message, kind, code) = error.parts();
    let message = message.unwrap_or("provider reported an error");
    let code_str = code.and_then(serde_json::Value::as_str);
    let code_num = code
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (400..600).contains(n));
    let overloaded = message.to_ascii_lowercase().contains("overloaded");
    let by_type = match (kind, code_str) {
        (_, Some("rate_limit_exceeded"))
        | (Some("requests" | "tokens" | "rate_limit_exceeded" | "rate_limit_error"), _) => {
            ErrorKind::RateLimited { retry_after: None }
        }
        (Some("overloaded_error" | "service_unavailable" | "overloaded"), _) => {
            ErrorKind::Overloaded
        }
        (_, Some("invalid_api_key")) | (Some("authentication_error" | "permission_error"), _) => {
            ErrorKind::Auth
        }
        (Some("invalid_request_error" | "not_found_error"), _) => ErrorKind::InvalidRequest,
        _ if overloaded => ErrorKind::Overloaded,
        _ => ErrorKind::Server,
    };
    let resolved = if is_quota(code_str, kind) {
        ErrorKind::QuotaExhausted
    } else {
        kind_from_code(code_str, kind, message)
            .or(code_num.map(|n| ErrorKind::from_status(n, None)))
            .unwrap_or(by_type)
    };
    let err = ProviderError::new(resolved, message);
    match code_num {
        Some(n) => err.with_status(n),
        None => err,
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming

#[derive(Deserialize)]
struct WireChunk<'a> {
    /// Borrowed: it is kept only from the first chunk.
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorValue>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

/// OpenAI stream state: ends at `data: [DONE]`; the model goes on the first chunk we yield.
#[derive(Debug, Default)]
pub(crate) struct OpenAiStream {
    model: Option<String>,
    model_sent: bool,
    /// What this stream's chunks start with, read once.
    known: fast_chunk::Known,
}

impl StreamParser for OpenAiStream {
    fn on_event(&mut self, event: &SseEvent) -> Step {
        // A JSON object needs no trim (trim would only remove whitespace).
        let data = event.data.as_str();
        let data = if data.starts_with('{') && data.ends_with('}') {
            data
        } else {
            data.trim()
        };
        if data == "[DONE]" {
            return Step::Done;
        }
        if event.event.as_deref() == Some("error") {
            return Step::Fail(
                match serde_json::from_str::<ErrorEnvelope>(data)
                    .ok()
                    .and_then(ErrorEnvelope::into_error)
                {
                    Some(e) => in_band_error(&e),
                    None => ProviderError::new(
                        ErrorKind::Server,
                        format!(
                            "error event in no known format ({} bytes, not shown)",
                            data.len()
                        ),
                    ),
                },
            );
        }
        let (model, first, usage) = match fast_chunk::fast_chunk(data, &mut self.known) {
            Some(c) => (c.model, c.choice, c.usage),
            None => match http::parse_event_json::<WireChunk>(data, "chat completion chunk") {
                Ok(c) => {
                    if let Some(error) = c.error {
                        return Step::Fail(in_band_error(&error));
                    }
                    (c.model, c.choices.into_iter().next(), c.usage)
                }
                Err(e) => return Step::Unreadable(e),
            },
        };
        if self.model.is_none() {
            self.model = model.map(std::borrow::Cow::into_owned);
        }
        let (delta, finish) = match first {
            Some(c) => (c.delta, c.finish_reason),
            None => (None, None),
        };
        let (text, refusal, calls) = match delta {
            Some(d) => (
                d.content.unwrap_or_default(),
                d.refusal.filter(|r| !r.is_empty()),
                d.tool_calls.unwrap_or_default(),
            ),
            None => (String::new(), None, Vec::new()),
        };
        // An empty list skips the adapter's in-place collect (124 instructions an event).
        let tool_calls: Vec<ToolCallDelta> = if calls.is_empty() {
            Vec::new()
        } else {
            calls
                .into_iter()
                .enumerate()
                .map(|(k, c)| {
                    let (name, arguments) = match c.function {
                        Some(f) => (f.name, f.arguments.unwrap_or_default()),
                        None => (None, String::new()),
                    };
                    let mut d = ToolCallDelta::arguments(c.index.unwrap_or(k as u32), arguments);
                    d.id = c.id;
                    d.name = name;
                    d
                })
                .collect()
        };
        let usage = usage.and_then(WireUsage::to_usage);
        if text.is_empty()
            && refusal.is_none()
            && tool_calls.is_empty()
            && finish.is_none()
            && usage.is_none()
        {
            return Step::Skip; // role-only or empty delta
        }
        let model = if self.model_sent {
            None
        } else {
            self.model_sent = true;
            self.model.clone()
        };
        Step::Chunk(Chunk {
            text,
            usage,
            finish_reason: finish.as_deref().map(finish_reason),
            model,
            refusal,
            tool_calls,
            ..Chunk::default()
        })
    }

    fn terminal_marker(&self) -> &'static str {
        "[DONE]"
    }
}

// ---------------------------------------------------------------------------------------------
// The provider core

/// The OpenAI chat-completions wire format (OpenAI, Groq, compatible servers).
pub(crate) struct OpenAiWire;

impl WireFormat for OpenAiWire {
    type Stream = OpenAiStream;
    fn check(request: &ChatRequest, refused: &[&str]) -> Result<(), Unsupported> {
        check(request, refused)
    }
    fn request_body(
        model: &str,
        request: &ChatRequest,
        config: &LlmConfig,
        stream: bool,
    ) -> Result<Vec<u8>, ProviderError> {
        request_body(model, request, config, stream)
    }
    fn stream_parser(_request: &ChatRequest) -> OpenAiStream {
        OpenAiStream::default()
    }
    fn parse_completion(
        _request: &ChatRequest,
        body: &[u8],
        model: &str,
    ) -> Result<Completion, ProviderError> {
        parse_completion(body, model)
    }
    fn classify_status(status: u16, retry_after: Option<Duration>, body: &[u8]) -> ProviderError {
        classify_status(status, retry_after, body)
    }
}

/// An OpenAI-wire provider.
pub(crate) type OpenAiCore = HttpCore<OpenAiWire>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    const COMPLETION: &str = include_str!("../../tests/fixtures/openai/chat_completion.json");
    const STREAM: &str = include_str!("../../tests/fixtures/openai/stream_basic.sse");

    fn run_stream(input: &str) -> Vec<Step> {
        let mut decoder = super::super::sse::SseDecoder::new();
        decoder.push(input.as_bytes());
        let mut parser = OpenAiStream::default();
        let mut steps = Vec::new();
        while let Some(ev) = decoder.next_event().unwrap() {
            steps.push(parser.on_event(&ev));
        }
        steps
    }

    #[test]
    fn documented_completion_parses() {
        let c = parse_completion(COMPLETION.as_bytes(), "fallback").unwrap();
        assert_eq!(c.text, "\n\nHello there, how may I assist you today?");
        assert_eq!(c.model, "gpt-4o-mini");
        // The documented body reports `completion_tokens_details.reasoning_tokens: 0`.
        assert_eq!(c.usage, Some(Usage::new(9, 12).reasoning(Some(0))));
        assert_eq!(c.finish_reason, Some(FinishReason::Stop));
    }

    #[test]
    fn a_completion_that_is_not_utf8_is_protocol_saying_where() {
        let e = parse_completion(b"{\"choices\":[{\"message\":{\"content\":\"\xff\"}}]}", "m")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(
            e.message
                .contains("invalid unicode code point at line 1 column 36"),
            "{}",
            e.message
        );
        let c = parse_completion(
            "{\"choices\":[{\"message\":{\"content\":\"\u{e9}\u{1f600}\"}}]}".as_bytes(),
            "m",
        )
        .unwrap();
        assert_eq!(c.text, "\u{e9}\u{1f600}");
    }

    #[test]
    fn completion_without_choices_or_json_is_protocol() {
        let e = parse_completion(br#"{"model":"m","choices":[]}"#, "m").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        let e = parse_completion(b"<html>oops</html>", "m").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
    }

    #[test]
    fn null_content_and_other_finish_reasons() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"tool_calls"}]}"#;
        let c = parse_completion(body, "fallback").unwrap();
        assert_eq!(c.text, "");
        assert_eq!(c.model, "fallback");
        assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(finish_reason("length"), FinishReason::Length);
        assert_eq!(finish_reason("content_filter"), FinishReason::ContentFilter);
        assert_eq!(finish_reason("weird"), FinishReason::Other("weird".into()));
    }

    #[test]
    fn documented_stream_yields_text_model_finish_and_usage_then_done() {
        let steps = run_stream(STREAM);
        let mut chunks = Vec::new();
        let mut done = false;
        for s in steps {
            match s {
                Step::Chunk(c) => {
                    assert!(!done);
                    chunks.push(c)
                }
                Step::Skip => {}
                Step::Done => done = true,
                Step::Fail(e) | Step::Unreadable(e) => panic!("{e}"),
            }
        }
        assert!(done);
        let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(text, "Hello!");
        assert_eq!(chunks[0].model.as_deref(), Some("gpt-4o-mini"));
        assert!(chunks[1..].iter().all(|c| c.model.is_none()));
        assert!(
            chunks
                .iter()
                .any(|c| c.finish_reason == Some(FinishReason::Stop))
        );
        assert_eq!(chunks.last().unwrap().usage, Some(Usage::new(9, 2)));
    }

    #[test]
    fn in_band_stream_errors_are_classified() {
        let steps = run_stream(
            "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
        );
        match &steps[0] {
            Step::Fail(e) => {
                assert_eq!(e.kind, ErrorKind::Server);
                assert_eq!(e.message, "The server had an error");
            }
            other => panic!("{other:?}"),
        }
        let steps = run_stream(
            "data: {\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n",
        );
        assert!(
            matches!(&steps[0], Step::Fail(e) if e.kind == ErrorKind::RateLimited { retry_after: None })
        );
        let steps = run_stream("data: {\"error\":{\"message\":\"busy\",\"code\":503}}\n\n");
        assert!(
            matches!(&steps[0], Step::Fail(e) if e.kind == ErrorKind::Overloaded && e.status == Some(503))
        );
    }

    #[test]
    fn malformed_chunk_is_unreadable_not_fatal() {
        let steps = run_stream("data: {\"choices\": [\n\n");
        assert!(matches!(&steps[0], Step::Unreadable(e) if e.kind == ErrorKind::Protocol));
    }

    #[test]
    fn error_bodies_classify() {
        let ctx = include_bytes!("../../tests/fixtures/openai/error_context_length.json");
        let e = classify_status(400, None, ctx);
        assert_eq!(e.kind, ErrorKind::ContextLengthExceeded);
        assert_eq!(e.status, Some(400));
        assert!(e.message.starts_with("This model's maximum context length"));

        let cf = include_bytes!("../../tests/fixtures/openai/error_content_policy.json");
        assert_eq!(
            classify_status(400, None, cf).kind,
            ErrorKind::ContentFiltered
        );

        let rl = include_bytes!("../../tests/fixtures/openai/error_rate_limit.json");
        let d = Some(Duration::from_secs(20));
        assert_eq!(
            classify_status(429, d, rl).kind,
            ErrorKind::RateLimited { retry_after: d }
        );

        let quota = br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(
            classify_status(429, None, quota).kind,
            ErrorKind::QuotaExhausted
        );
        let auth = include_bytes!("../../tests/fixtures/openai/error_invalid_api_key.json");
        assert_eq!(classify_status(401, None, auth).kind, ErrorKind::Auth);

        let e = classify_status(500, None, b"{\"error\":\"boom\"}");
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Server, "boom"));
        let e = classify_status(404, None, b"not json");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                ErrorKind::InvalidRequest,
                "Not Found (error body in no known format, 8 bytes, not shown)"
            )
        );
        // vLLM's top-level shape and FastAPI's `detail` are error shapes too.
        let e = classify_status(
            400,
            None,
            br#"{"object":"error","message":"This model's maximum context length is 4096 tokens","type":"BadRequestError","code":400}"#,
        );
        assert_eq!(e.kind, ErrorKind::ContextLengthExceeded);
        assert!(e.message.starts_with("This model's maximum"), "{e}");
        let e = classify_status(503, None, br#"{"detail":"warming up"}"#);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Overloaded, "warming up")
        );
        // Plain text still decides the kind, without being shown.
        let e = classify_status(400, None, b"maximum context length exceeded");
        assert_eq!(e.kind, ErrorKind::ContextLengthExceeded);
        assert!(!e.message.contains("maximum"), "{e}");
    }

    #[test]
    fn usage_details_refusal_and_unknown_usage() {
        let body = br#"{"model":"m","choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":12},"completion_tokens_details":{"reasoning_tokens":5}}}"#;
        let c = parse_completion(body, "m").unwrap();
        assert_eq!(c.text, "");
        assert_eq!(c.refusal.as_deref(), Some("I can't help with that."));
        let u = c.usage.unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (20, 8));
        assert_eq!(u.cached_input_tokens, Some(12));
        assert_eq!(u.reasoning_tokens, Some(5));
        assert_eq!(u.cache_write_input_tokens, None);
        // A usage object without its counts is unknown usage, not zeros.
        let body = br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"total_tokens":3}}"#;
        assert_eq!(parse_completion(body, "m").unwrap().usage, None);
        // Streamed refusal deltas are chunks (and content for the commit point).
        let steps = run_stream(
            "data: {\"choices\":[{\"delta\":{\"refusal\":\"No.\"},\"finish_reason\":null}]}\n\n",
        );
        match &steps[0] {
            Step::Chunk(c) => {
                assert_eq!(c.refusal.as_deref(), Some("No."));
                assert!(c.is_content());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_body_maps_config_and_stream_options() {
        let req = ChatRequest::new(vec![Message::system("be brief"), Message::user("hi")])
            .config(LlmConfig::default().temperature(0.5).stop("END"));
        let provider = LlmConfig::new(0.9, 77).top_p(0.8);
        let v: serde_json::Value =
            serde_json::from_slice(&request_body("m", &req, &provider, true).unwrap()).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][1]["content"], "hi");
        assert_eq!(v["temperature"], 0.5);
        assert_eq!(v["max_tokens"], 77);
        assert!((v["top_p"].as_f64().unwrap() - 0.8).abs() < 1e-6);
        assert_eq!(v["stop"], serde_json::json!(["END"]));
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);

        let v: serde_json::Value = serde_json::from_slice(
            &request_body("m", &ChatRequest::user("x"), &LlmConfig::default(), false).unwrap(),
        )
        .unwrap();
        let obj = v.as_object().unwrap();
        for absent in [
            "stream",
            "stream_options",
            "temperature",
            "max_tokens",
            "stop",
            "top_p",
        ] {
            assert!(!obj.contains_key(absent), "{absent} in {v}");
        }
    }
}
