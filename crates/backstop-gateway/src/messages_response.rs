//! Answers in Anthropic's Messages format, for clients of `POST /v1/messages`: the `message`
//! object, the streamed event sequence (`message_start`, content blocks, `message_delta`,
//! `message_stop`) and the error shape.

use backstop::{Chunk, FinishReason, ToolCall, Usage};
use serde_json::{Map, Value, json};

use crate::sse::StreamEncoder;

/// Anthropic's `stop_reason` for a finish reason (`end_turn` when none was reported).
pub(crate) fn stop_reason(finish: Option<&FinishReason>) -> String {
    match finish {
        None | Some(FinishReason::Stop) => "end_turn".into(),
        Some(FinishReason::Length) => "max_tokens".into(),
        Some(FinishReason::ContentFilter) => "refusal".into(),
        Some(FinishReason::ToolCalls) => "tool_use".into(),
        // Anthropic's own reasons travel as they are; another provider's are mapped.
        Some(FinishReason::Other(raw)) => match raw.as_str() {
            "pause_turn" | "stop_sequence" | "model_context_window_exceeded" => raw.clone(),
            _ => match FinishReason::Other(raw.clone()).as_openai_str() {
                "length" => "max_tokens".into(),
                "content_filter" => "refusal".into(),
                "tool_calls" => "tool_use".into(),
                _ => "end_turn".into(),
            },
        },
    }
}

/// Anthropic's `usage`: input tokens exclude cache reads and writes, which have their own.
fn usage_json(u: Option<&Usage>) -> Value {
    let Some(u) = u else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let read = u.cached_input_tokens.unwrap_or(0);
    let write = u.cache_write_input_tokens.unwrap_or(0);
    let mut o = Map::new();
    o.insert(
        "input_tokens".into(),
        json!(u.input_tokens.saturating_sub(read).saturating_sub(write)),
    );
    if let Some(w) = u.cache_write_input_tokens {
        o.insert("cache_creation_input_tokens".into(), json!(w));
    }
    if let Some(r) = u.cached_input_tokens {
        o.insert("cache_read_input_tokens".into(), json!(r));
    }
    o.insert("output_tokens".into(), json!(u.output_tokens));
    Value::Object(o)
}

/// A message id (`msg_…`) from the gateway's completion id.
pub(crate) fn message_id(id: &str) -> String {
    format!("msg_{}", id.strip_prefix("chatcmpl-").unwrap_or(id))
}

/// What a whole answer says, for [`message_body`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageAnswer<'a> {
    pub text: &'a str,
    pub refusal: Option<&'a str>,
    pub tool_calls: &'a [ToolCall],
    pub finish: Option<&'a FinishReason>,
    pub usage: Option<&'a Usage>,
}

/// The whole `message` object. Tool-call arguments become the `input` object; arguments
/// that are not a JSON object (a provider's garbage) are an error, never invented.
pub(crate) fn message_body(id: &str, model: &str, a: MessageAnswer<'_>) -> Result<Vec<u8>, String> {
    let mut content = Vec::new();
    let text = match (a.text, a.refusal) {
        ("", Some(r)) => r,
        (t, _) => t,
    };
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for c in a.tool_calls {
        let input = tool_input(c)?;
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
    }
    let body = json!({
        "id": message_id(id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(a.finish),
        "stop_sequence": null,
        "usage": usage_json(a.usage),
    });
    serde_json::to_vec(&body).map_err(|e| e.to_string())
}

fn tool_input(c: &ToolCall) -> Result<Value, String> {
    if c.arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(&c.arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(format!(
            "the provider's arguments for tool call {:?} are not a JSON object",
            c.id
        )),
    }
}

/// Anthropic's error `type` for an HTTP status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"type":"error","error":{"type","message"}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Vec<u8> {
    let v = json!({"type": "error", "error": {"type": error_type(status), "message": message}});
    serde_json::to_vec(&v).unwrap_or_default()
}

/// An SSE event: `event: <name>` and its JSON data.
fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// The content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    /// A `tool_use` block for the call of this index.
    Tool(u32),
}

/// Encodes one stream as Anthropic's event sequence: chunks' text becomes `text` blocks,
/// tool-call fragments `tool_use` blocks with `input_json_delta`s, each block started and
/// stopped, then `message_delta` (stop reason, usage) and `message_stop`.
pub(crate) struct MessageEncoder {
    id: String,
    model: String,
    open: Open,
    /// The index of the open block (the next block gets `blocks`).
    blocks: u32,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

impl MessageEncoder {
    pub(crate) fn new(id: &str, model: &str) -> Self {
        Self {
            id: message_id(id),
            model: model.to_owned(),
            open: Open::None,
            blocks: 0,
            usage: None,
            finish: None,
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            let index = self.blocks - 1;
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
            self.open = Open::None;
        }
    }

    fn open(&mut self, out: &mut Vec<u8>, kind: Open, block: Value) {
        self.close(out);
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.blocks, "content_block": block}),
        );
        self.blocks += 1;
        self.open = kind;
    }

    fn delta(&self, out: &mut Vec<u8>, delta: Value) {
        let index = self.blocks.saturating_sub(1);
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }
}

impl StreamEncoder for MessageEncoder {
    fn start(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}
        });
        event(
            &mut out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        event(&mut out, "ping", &json!({"type": "ping"}));
        out
    }

    fn chunk(&mut self, chunk: &Chunk, out: &mut Vec<u8>) {
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.finish_reason.is_some() {
            self.finish.clone_from(&chunk.finish_reason);
        }
        let refusal = chunk.refusal.as_deref().unwrap_or_default();
        for text in [chunk.text.as_str(), refusal] {
            if text.is_empty() {
                continue;
            }
            if self.open != Open::Text {
                self.open(out, Open::Text, json!({"type": "text", "text": ""}));
            }
            self.delta(out, json!({"type": "text_delta", "text": text}));
        }
        for d in &chunk.tool_calls {
            if let (Some(id), Some(name)) = (&d.id, &d.name) {
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                self.open(out, Open::Tool(d.index), block);
            }
            if !d.arguments.is_empty() && self.open == Open::Tool(d.index) {
                self.delta(
                    out,
                    json!({"type": "input_json_delta", "partial_json": d.arguments}),
                );
            }
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.close(&mut out);
        let mut usage = usage_json(self.usage.as_ref());
        if self.usage.is_none()
            && let Some(o) = usage.as_object_mut()
        {
            o.remove("input_tokens");
        }
        event(
            &mut out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_ref()), "stop_sequence": null},
                "usage": usage}),
        );
        event(&mut out, "message_stop", &json!({"type": "message_stop"}));
        out
    }

    fn error(&self, message: &str, kind: &str, _code: Option<&str>) -> Vec<u8> {
        let kind = match kind {
            "server_error" => "api_error",
            other => other,
        };
        let mut out = Vec::new();
        event(
            &mut out,
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
        );
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backstop::ToolCallDelta;

    /// `(event name, data)` of each event.
    fn events(bytes: &[u8]) -> Vec<(String, Value)> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                (
                    name.strip_prefix("event: ").unwrap().to_owned(),
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_stream_is_anthropics_event_sequence_with_text_then_tool_use_blocks() {
        let mut enc = MessageEncoder::new("chatcmpl-1", "m");
        let mut bytes = enc.start();
        enc.chunk(&Chunk::text("Let me check."), &mut bytes);
        enc.chunk(
            &Chunk::tool_call(ToolCallDelta::start(0, "call_1", "get_weather")),
            &mut bytes,
        );
        enc.chunk(
            &Chunk::tool_call(ToolCallDelta::arguments(0, "{\"city\":")),
            &mut bytes,
        );
        enc.chunk(
            &Chunk::tool_call(ToolCallDelta::arguments(0, "\"Oslo\"}")),
            &mut bytes,
        );
        enc.chunk(
            &Chunk {
                finish_reason: Some(FinishReason::ToolCalls),
                usage: Some(Usage::new(10, 5)),
                ..Chunk::default()
            },
            &mut bytes,
        );
        bytes.extend(enc.finish());
        let ev = events(&bytes);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[0].1["message"]["id"], "msg_1");
        assert_eq!(
            ev[3].1["delta"],
            json!({"type": "text_delta", "text": "Let me check."})
        );
        assert_eq!(
            ev[5].1,
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}})
        );
        assert_eq!(
            ev[6].1["delta"],
            json!({"type": "input_json_delta", "partial_json": "{\"city\":"})
        );
        assert_eq!(ev[7].1["index"], 1);
        assert_eq!(ev[9].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            ev[9].1["usage"],
            json!({"input_tokens": 10, "output_tokens": 5})
        );
    }

    #[test]
    fn parallel_tool_calls_stream_as_consecutive_tool_use_blocks() {
        let mut enc = MessageEncoder::new("chatcmpl-2", "m");
        let mut bytes = enc.start();
        for chunk in [
            Chunk::tool_call(ToolCallDelta::start(0, "a", "first")),
            Chunk::tool_call(ToolCallDelta::arguments(0, "{}")),
            Chunk::tool_call(ToolCallDelta::start(1, "b", "second")),
            Chunk::tool_call(ToolCallDelta::arguments(1, "{\"x\":1}")),
        ] {
            enc.chunk(&chunk, &mut bytes);
        }
        bytes.extend(enc.finish());
        let ev = events(&bytes);
        let starts: Vec<(u64, &str)> = ev
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .map(|(_, d)| {
                (
                    d["index"].as_u64().unwrap(),
                    d["content_block"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(starts, [(0, "first"), (1, "second")]);
        let deltas: Vec<(u64, &str)> = ev
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, d)| {
                (
                    d["index"].as_u64().unwrap(),
                    d["delta"]["partial_json"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(deltas, [(0, "{}"), (1, "{\"x\":1}")]);
        let stops = ev.iter().filter(|(n, _)| n == "content_block_stop").count();
        assert_eq!(stops, 2);
    }

    #[test]
    fn a_whole_message_has_text_and_tool_use_blocks() {
        let calls = [ToolCall::new("call_1", "f", "{\"a\":1}")];
        let mut u = Usage::new(100, 7);
        u.cached_input_tokens = Some(60);
        let body = message_body(
            "chatcmpl-9",
            "m",
            MessageAnswer {
                text: "hi",
                refusal: None,
                tool_calls: &calls,
                finish: Some(&FinishReason::ToolCalls),
                usage: Some(&u),
            },
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["content"],
            json!([{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}])
        );
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 40, "cache_read_input_tokens": 60, "output_tokens": 7})
        );
        let garbage = [ToolCall::new("c", "f", "not json")];
        let answer = MessageAnswer {
            text: "",
            refusal: None,
            tool_calls: &garbage,
            finish: None,
            usage: None,
        };
        assert!(message_body("x", "m", answer).is_err());
    }

    #[test]
    fn stop_reasons_are_anthropics() {
        assert_eq!(stop_reason(None), "end_turn");
        assert_eq!(stop_reason(Some(&FinishReason::Length)), "max_tokens");
        assert_eq!(stop_reason(Some(&FinishReason::ContentFilter)), "refusal");
        assert_eq!(
            stop_reason(Some(&FinishReason::Other("pause_turn".into()))),
            "pause_turn"
        );
        assert_eq!(error_type(529), "overloaded_error");
        assert_eq!(error_type(400), "invalid_request_error");
    }
}
