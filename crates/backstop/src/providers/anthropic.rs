//! Anthropic's Messages API: `POST {base}/v1/messages`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::anthropic_request::{JSON_TOOL, check, request_body};
use super::core::{HttpCore, WireFormat};
use super::http::{self, ApiKey, AuthScheme, Endpoint, Step, StreamParser};
use super::sse::SseEvent;
use super::{env_nonempty, http_provider_common};
use crate::{
    ChatRequest, Chunk, Completion, ErrorKind, FinishReason, LlmConfig, ProviderError,
    ResponseFormat, ToolCall, ToolCallDelta, Unsupported, Usage,
};

/// The API version header value we speak.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic: `POST {base}/v1/messages` with `x-api-key: $ANTHROPIC_API_KEY` and
/// `anthropic-version: 2023-06-01`.
///
/// The key comes from `ANTHROPIC_API_KEY` and the base URL from `ANTHROPIC_BASE_URL`
/// (default `https://api.anthropic.com`), read once here; explicit builder values win.
/// System messages become the top-level `system` field; `max_tokens` defaults to
/// [`LlmConfig::DEFAULT_MAX_TOKENS`] because the API requires it.
pub struct AnthropicLlm {
    core: AnthropicCore,
}

impl AnthropicLlm {
    /// The public endpoint.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.anthropic.com";
    /// Where the key is read from.
    pub const API_KEY_ENV: &'static str = "ANTHROPIC_API_KEY";
    /// Where a base URL override is read from.
    pub const BASE_URL_ENV: &'static str = "ANTHROPIC_BASE_URL";

    /// A provider for `model`, configured from the environment.
    pub fn new(model: impl Into<String>) -> Self {
        let base =
            env_nonempty(Self::BASE_URL_ENV).unwrap_or_else(|| Self::DEFAULT_BASE_URL.into());
        AnthropicLlm {
            core: AnthropicCore::new(
                Endpoint::new(
                    "anthropic",
                    base,
                    "/v1/messages",
                    ApiKey::from_env(Self::API_KEY_ENV),
                    AuthScheme::Header("x-api-key"),
                    &[("anthropic-version", ANTHROPIC_VERSION)],
                ),
                model,
            ),
        }
    }
}

http_provider_common!(AnthropicLlm);

/// The Anthropic Messages wire format.
pub(super) struct AnthropicWire;

impl WireFormat for AnthropicWire {
    type Stream = AnthropicStream;
    fn check(request: &ChatRequest, refused: &[&str]) -> Result<(), Unsupported> {
        check(request, refused)
    }
    fn stream_parser(request: &ChatRequest) -> AnthropicStream {
        AnthropicStream::for_request(request)
    }
    fn request_body(
        model: &str,
        request: &ChatRequest,
        config: &LlmConfig,
        stream: bool,
    ) -> Result<Vec<u8>, ProviderError> {
        request_body(model, request, config, stream)
    }
    fn parse_completion(
        request: &ChatRequest,
        body: &[u8],
        model: &str,
    ) -> Result<Completion, ProviderError> {
        parse_message(body, model, json_mode(request))
    }
    fn classify_status(status: u16, retry_after: Option<Duration>, body: &[u8]) -> ProviderError {
        classify_status(status, retry_after, body)
    }
}

type AnthropicCore = HttpCore<AnthropicWire>;

// ---------------------------------------------------------------------------------------------
// Responses

#[derive(Deserialize)]
struct WireMessageResponse {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<Vec<ContentBlock>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

/// True when the request's JSON mode is carried by the forced [`JSON_TOOL`].
fn json_mode(request: &ChatRequest) -> bool {
    request.response_format == Some(ResponseFormat::JsonObject) && request.tools.is_empty()
}

/// Anthropic `usage`. `input_tokens` counts only the prompt tokens after the last cache
/// breakpoint; the whole prompt is it plus the cache reads and writes.
#[derive(Debug, Deserialize, Clone, Copy, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// The counts of `self`, falling back to `earlier` (from `message_start`) for the ones a
    /// `message_delta` leaves out.
    fn or(self, earlier: WireUsage) -> WireUsage {
        WireUsage {
            input_tokens: self.input_tokens.or(earlier.input_tokens),
            output_tokens: self.output_tokens.or(earlier.output_tokens),
            cache_read_input_tokens: self
                .cache_read_input_tokens
                .or(earlier.cache_read_input_tokens),
            cache_creation_input_tokens: self
                .cache_creation_input_tokens
                .or(earlier.cache_creation_input_tokens),
        }
    }

    /// The usage in our terms, when the input and output counts are known.
    fn to_usage(self) -> Option<Usage> {
        let read = self.cache_read_input_tokens;
        let write = self.cache_creation_input_tokens;
        let input = self
            .input_tokens?
            .saturating_add(read.unwrap_or(0))
            .saturating_add(write.unwrap_or(0));
        Some(
            Usage::new(http::tokens(input), http::tokens(self.output_tokens?))
                .cached_input(read.map(http::tokens))
                .cache_write_input(write.map(http::tokens)),
        )
    }
}

/// Maps Anthropic's `stop_reason`.
fn finish_reason(s: &str) -> FinishReason {
    match s {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        "tool_use" => FinishReason::ToolCalls,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Reads a message; with `json_mode`, the [`JSON_TOOL`] call's input is the answer's text.
pub(super) fn parse_message(
    body: &[u8],
    fallback_model: &str,
    json_mode: bool,
) -> Result<Completion, ProviderError> {
    let parsed: WireMessageResponse = http::from_json_body(body)
        .map_err(|e| ProviderError::protocol(format!("malformed message: {e}")))?;
    if let Some(error) = parsed
        .error
        .as_ref()
        .filter(|_| parsed.kind.as_deref() == Some("error"))
    {
        return Err(in_band_error(error));
    }
    let content = parsed
        .content
        .ok_or_else(|| ProviderError::protocol("message has no content"))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut json_answered = false;
    for b in content {
        match b.kind.as_str() {
            "text" => text.push_str(b.text.as_deref().unwrap_or_default()),
            "tool_use" => {
                let input = b.input.unwrap_or_else(|| json!({})).to_string();
                if json_mode && b.name.as_deref() == Some(JSON_TOOL) {
                    text.push_str(&input);
                    json_answered = true;
                } else {
                    tool_calls.push(ToolCall::new(
                        b.id.unwrap_or_default(),
                        b.name.unwrap_or_default(),
                        input,
                    ));
                }
            }
            _ => {} // thinking, server tool blocks
        }
    }
    let mut finish = parsed.stop_reason.as_deref().map(finish_reason);
    if json_answered && finish == Some(FinishReason::ToolCalls) {
        finish = Some(FinishReason::Stop);
    }
    Ok(Completion {
        text,
        model: parsed.model.unwrap_or_else(|| fallback_model.to_owned()),
        usage: parsed.usage.and_then(WireUsage::to_usage),
        finish_reason: finish,
        refusal: None,
        tool_calls,
        upstream_request_id: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize, Default)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn is_prompt_too_long(message: &str) -> bool {
    message.to_ascii_lowercase().contains("prompt is too long")
}

/// Anthropic reports an empty credit balance as a 400 `invalid_request_error` ("Your credit
/// balance is too low…") or a `billing_error`.
fn is_billing(kind: Option<&str>, message: &str) -> bool {
    kind == Some("billing_error") || message.to_ascii_lowercase().contains("credit balance")
}

/// Classifies an error status with an Anthropic error body.
pub(super) fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> ProviderError {
    let envelope = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let error = envelope.as_ref().and_then(|e| e.error.as_ref());
    let message = error.and_then(|e| e.message.as_deref());
    let mut err = http::status_error(status, retry_after, message, body);
    let kind = error.and_then(|e| e.kind.as_deref());
    if is_billing(kind, message.unwrap_or_default()) {
        err.kind = ErrorKind::QuotaExhausted;
        return err;
    }
    match kind {
        Some("overloaded_error") => err.kind = ErrorKind::Overloaded,
        Some("invalid_request_error") | None if is_prompt_too_long(&err.message) => {
            err.kind = ErrorKind::ContextLengthExceeded;
        }
        _ => {}
    }
    err
}

/// Classifies an `error` event (or an error body under a 2xx status).
fn in_band_error(error: &WireError) -> ProviderError {
    let message = error
        .message
        .as_deref()
        .unwrap_or("provider reported an error");
    let kind = match error.kind.as_deref() {
        k if is_billing(k, message) => ErrorKind::QuotaExhausted,
        Some("overloaded_error") => ErrorKind::Overloaded,
        Some("rate_limit_error") => ErrorKind::RateLimited { retry_after: None },
        Some("authentication_error" | "permission_error") => ErrorKind::Auth,
        Some("invalid_request_error") if is_prompt_too_long(message) => {
            ErrorKind::ContextLengthExceeded
        }
        Some("invalid_request_error" | "not_found_error" | "request_too_large") => {
            ErrorKind::InvalidRequest
        }
        _ => ErrorKind::Server, // api_error, timeout_error, unknown
    };
    ProviderError::new(kind, message)
}

// ---------------------------------------------------------------------------------------------
// Streaming

#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default)]
    content_block: Option<ContentBlock>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What an open content block of the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// A tool call: its number among the answer's calls.
    Tool(u32),
    /// The JSON-mode tool: its input is answer text.
    JsonText,
}

/// Anthropic stream state: ends at `message_stop`; input tokens come from `message_start`,
/// output tokens and the stop reason from `message_delta`.
#[derive(Debug, Default)]
pub(super) struct AnthropicStream {
    model: Option<String>,
    model_sent: bool,
    start_usage: WireUsage,
    json_mode: bool,
    /// Open tool blocks by content-block index.
    blocks: Vec<(u32, Block)>,
    /// Tool calls started so far.
    tools: u32,
    /// Tool blocks started and not yet stopped.
    open_tools: u32,
    /// The JSON-mode tool answered.
    json_answered: bool,
}

impl AnthropicStream {
    pub(super) fn for_request(request: &ChatRequest) -> Self {
        Self {
            json_mode: json_mode(request),
            ..Self::default()
        }
    }

    fn block(&self, index: Option<u32>) -> Option<Block> {
        let index = index?;
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn tool_chunk(&mut self, delta: ToolCallDelta) -> Step {
        match self.chunk(String::new(), None, None) {
            Step::Chunk(mut c) => {
                c.tool_calls.push(delta);
                Step::Chunk(c)
            }
            other => other,
        }
    }

    fn chunk(&mut self, text: String, usage: Option<Usage>, finish: Option<FinishReason>) -> Step {
        let model = if self.model_sent {
            None
        } else {
            self.model_sent = true;
            self.model.clone()
        };
        Step::Chunk(Chunk {
            text,
            usage,
            finish_reason: finish,
            model,
            ..Chunk::default()
        })
    }
}

impl StreamParser for AnthropicStream {
    fn on_event(&mut self, event: &SseEvent) -> Step {
        let ev: WireEvent = match http::parse_event_json(&event.data, "message stream") {
            Ok(ev) => ev,
            Err(e) => return Step::Unreadable(e),
        };
        match ev.kind.as_str() {
            "message_start" => {
                if let Some(m) = ev.message {
                    self.model = m.model;
                    self.start_usage = m.usage.unwrap_or_default();
                }
                Step::Skip
            }
            "content_block_start" => match ev.content_block {
                Some(ContentBlock {
                    kind,
                    text: Some(text),
                    ..
                }) if kind == "text" && !text.is_empty() => self.chunk(text, None, None),
                Some(b) if b.kind == "tool_use" => {
                    let index = ev.index.unwrap_or(u32::MAX);
                    if self.json_mode && b.name.as_deref() == Some(JSON_TOOL) {
                        self.blocks.push((index, Block::JsonText));
                        self.json_answered = true;
                        return Step::Skip;
                    }
                    let n = self.tools;
                    self.tools += 1;
                    self.open_tools += 1;
                    self.blocks.push((index, Block::Tool(n)));
                    self.tool_chunk(ToolCallDelta::start(
                        n,
                        b.id.unwrap_or_default(),
                        b.name.unwrap_or_default(),
                    ))
                }
                _ => Step::Skip,
            },
            "content_block_delta" => match ev.delta {
                Some(WireDelta {
                    kind: Some(kind),
                    text: Some(text),
                    ..
                }) if kind == "text_delta" && !text.is_empty() => self.chunk(text, None, None),
                Some(WireDelta {
                    kind: Some(kind),
                    partial_json: Some(json),
                    ..
                }) if kind == "input_json_delta" && !json.is_empty() => {
                    match self.block(ev.index) {
                        Some(Block::Tool(n)) => self.tool_chunk(ToolCallDelta::arguments(n, json)),
                        Some(Block::JsonText) => self.chunk(json, None, None),
                        None => Step::Unreadable(ProviderError::protocol(
                            "input_json_delta for no open tool_use block",
                        )),
                    }
                }
                _ => Step::Skip, // thinking, signatures, empty deltas
            },
            "content_block_stop" => {
                if let Some(Block::Tool(_)) = self.block(ev.index) {
                    self.open_tools = self.open_tools.saturating_sub(1);
                }
                if let Some(index) = ev.index {
                    self.blocks.retain(|(i, _)| *i != index);
                }
                Step::Skip
            }
            "message_delta" => {
                let mut finish = ev
                    .delta
                    .and_then(|d| d.stop_reason)
                    .as_deref()
                    .map(finish_reason);
                if finish.is_some() && self.open_tools > 0 {
                    // A call whose arguments never closed is no call: never a truncated one.
                    return Step::Fail(ProviderError::protocol(
                        "the stream finished inside a tool call's arguments",
                    ));
                }
                if self.json_answered && finish == Some(FinishReason::ToolCalls) {
                    finish = Some(FinishReason::Stop);
                }
                let usage = ev.usage.and_then(|u| u.or(self.start_usage).to_usage());
                if finish.is_none() && usage.is_none() {
                    Step::Skip
                } else {
                    self.chunk(String::new(), usage, finish)
                }
            }
            "message_stop" => Step::Done,
            "error" => Step::Fail(in_band_error(&ev.error.unwrap_or_default())),
            // ping, and event types added after we were written
            _ => Step::Skip,
        }
    }

    fn terminal_marker(&self) -> &'static str {
        "message_stop"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Provider};

    fn run_stream(input: &str) -> Vec<Step> {
        let mut decoder = super::super::sse::SseDecoder::new();
        decoder.push(input.as_bytes());
        let mut parser = AnthropicStream::default();
        let mut steps = Vec::new();
        while let Some(ev) = decoder.next_event().unwrap() {
            steps.push(parser.on_event(&ev));
        }
        steps
    }

    #[test]
    fn documented_message_parses() {
        let body = include_bytes!("../../tests/fixtures/anthropic/message.json");
        let c = parse_message(body, "x", false).unwrap();
        assert_eq!(c.text, "Hi! My name is Claude.");
        assert_eq!(c.model, "claude-3-5-sonnet-20241022");
        assert_eq!(c.usage, Some(Usage::new(2095, 503)));
        assert_eq!(c.finish_reason, Some(FinishReason::Stop));
    }

    #[test]
    fn stop_reasons_map() {
        assert_eq!(finish_reason("stop_sequence"), FinishReason::Stop);
        assert_eq!(finish_reason("max_tokens"), FinishReason::Length);
        assert_eq!(finish_reason("refusal"), FinishReason::ContentFilter);
        assert_eq!(finish_reason("tool_use"), FinishReason::ToolCalls);
        assert_eq!(
            finish_reason("pause_turn"),
            FinishReason::Other("pause_turn".into())
        );
    }

    #[test]
    fn cache_tokens_count_in_the_prompt_and_as_cached_and_written() {
        let body = br#"{"type":"message","model":"c","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":3000,"output_tokens":7}}"#;
        let u = parse_message(body, "c", false).unwrap().usage.unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (3210, 7));
        assert_eq!(u.cached_input_tokens, Some(3000));
        assert_eq!(u.cache_write_input_tokens, Some(200));
        // No usage reported: none invented.
        let body = br#"{"type":"message","content":[{"type":"text","text":"hi"}]}"#;
        assert_eq!(parse_message(body, "c", false).unwrap().usage, None);
        // Streamed: cache counts from message_start, output from message_delta.
        let steps = run_stream(concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"pause_turn\"},\"usage\":{\"output_tokens\":9}}\n\n",
        ));
        match &steps[1] {
            Step::Chunk(c) => {
                let u = c.usage.unwrap();
                assert_eq!((u.input_tokens, u.output_tokens), (105, 9));
                assert_eq!(u.cached_input_tokens, Some(100));
                assert_eq!(
                    c.finish_reason,
                    Some(FinishReason::Other("pause_turn".into()))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_message_is_protocol() {
        assert_eq!(
            parse_message(b"{\"content\": 3}", "m", false)
                .unwrap_err()
                .kind,
            ErrorKind::Protocol
        );
        assert_eq!(
            parse_message(b"{}", "m", false).unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn documented_stream_yields_text_usage_and_stop() {
        let input = include_str!("../../tests/fixtures/anthropic/stream_basic.sse");
        let steps = run_stream(input);
        assert!(matches!(steps.last(), Some(Step::Done)));
        let chunks: Vec<Chunk> = steps
            .into_iter()
            .filter_map(|s| match s {
                Step::Chunk(c) => Some(c),
                Step::Fail(e) | Step::Unreadable(e) => panic!("{e}"),
                _ => None,
            })
            .collect();
        let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(text, "Hello!");
        assert_eq!(
            chunks[0].model.as_deref(),
            Some("claude-3-5-sonnet-20241022")
        );
        let last = chunks.last().unwrap();
        assert_eq!(last.finish_reason, Some(FinishReason::Stop));
        assert_eq!(last.usage, Some(Usage::new(25, 15)));
    }

    #[test]
    fn documented_error_event_is_overloaded() {
        let input = include_str!("../../tests/fixtures/anthropic/stream_error.sse");
        let steps = run_stream(input);
        match steps.last() {
            Some(Step::Fail(e)) => {
                assert_eq!(e.kind, ErrorKind::Overloaded);
                assert_eq!(e.message, "Overloaded");
            }
            other => panic!("{other:?}"),
        }
        for (t, kind) in [
            (
                "rate_limit_error",
                ErrorKind::RateLimited { retry_after: None },
            ),
            ("api_error", ErrorKind::Server),
            ("authentication_error", ErrorKind::Auth),
            ("invalid_request_error", ErrorKind::InvalidRequest),
        ] {
            let data = format!(
                "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{t}\",\"message\":\"m\"}}}}\n\n"
            );
            assert!(
                matches!(&run_stream(&data)[0], Step::Fail(e) if e.kind == kind),
                "{t}"
            );
        }
    }

    #[test]
    fn malformed_event_is_unreadable_not_fatal() {
        let steps = run_stream("event: content_block_delta\ndata: {\"type\": \"content_blo\n\n");
        assert!(matches!(&steps[0], Step::Unreadable(e) if e.kind == ErrorKind::Protocol));
    }

    #[test]
    fn error_bodies_classify() {
        let overloaded = include_bytes!("../../tests/fixtures/anthropic/error_overloaded.json");
        let e = classify_status(529, None, overloaded);
        assert_eq!((e.kind, e.status), (ErrorKind::Overloaded, Some(529)));
        assert_eq!(e.message, "Overloaded");
        let long = include_bytes!("../../tests/fixtures/anthropic/error_prompt_too_long.json");
        assert_eq!(
            classify_status(400, None, long).kind,
            ErrorKind::ContextLengthExceeded
        );
        let invalid = include_bytes!("../../tests/fixtures/anthropic/error_invalid_request.json");
        let e = classify_status(400, None, invalid);
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert!(e.message.starts_with("messages: roles must alternate"));
        let billing = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#;
        assert_eq!(
            classify_status(400, None, billing).kind,
            ErrorKind::QuotaExhausted
        );
        let rl = include_bytes!("../../tests/fixtures/anthropic/error_rate_limit.json");
        let d = Some(Duration::from_secs(3));
        assert_eq!(
            classify_status(429, d, rl).kind,
            ErrorKind::RateLimited { retry_after: d }
        );
    }

    #[test]
    fn request_body_moves_system_and_defaults_max_tokens() {
        let req = ChatRequest::new(vec![
            Message::system("rule one"),
            Message::user("hi"),
            Message::assistant("hello"),
            Message::system("rule two"),
            Message::user("again"),
        ])
        .config(LlmConfig::default().stop("STOP").temperature(0.1));
        let v: serde_json::Value = serde_json::from_slice(
            &request_body("claude", &req, &LlmConfig::default(), true).unwrap(),
        )
        .unwrap();
        assert_eq!(v["system"], "rule one\n\nrule two");
        assert_eq!(v["max_tokens"], 1024);
        assert_eq!(v["stop_sequences"], serde_json::json!(["STOP"]));
        assert_eq!(v["stream"], true);
        let roles: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert!(v.get("stop").is_none());
        assert!(v.get("stream_options").is_none());
    }

    #[tokio::test]
    async fn missing_key_is_auth_and_debug_redacts() {
        let llm = AnthropicLlm::new("claude").base_url("http://127.0.0.1:9");
        // The environment may hold a real key; only assert when it does not.
        if env_nonempty(AnthropicLlm::API_KEY_ENV).is_none() {
            let e = llm.complete(&ChatRequest::user("hi")).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Auth);
            assert_eq!(e.message, "ANTHROPIC_API_KEY is not set");
        }
        let llm = llm.api_key("sk-ant-unit-secret");
        assert!(!format!("{llm:?}").contains("sk-ant-unit-secret"));
        assert_eq!(Provider::name(&llm), "anthropic");
    }
}
