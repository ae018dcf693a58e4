//! Anthropic Messages format.

use std::borrow::Cow;

use super::{ErrorSpec, Meta, Piece, ToolUse, push_str, push_u64};

/// Context window the simulated Anthropic models claim.
const CONTEXT_WINDOW: u64 = 200_000;

pub(crate) fn status_error(status: u16) -> ErrorSpec {
    let (kind, message): (&'static str, &'static str) = match status {
        400 => (
            "invalid_request_error",
            "Invalid request (simulated by backstop-sim).",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => (
            "billing_error",
            "Billing issue (simulated by backstop-sim).",
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "The requested resource was not found."),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (simulated by backstop-sim).",
        ),
        503 | 529 => ("overloaded_error", "Overloaded"),
        504 => ("timeout_error", "Request timed out while processing."),
        s if s >= 500 => ("api_error", "Internal server error"),
        _ => (
            "invalid_request_error",
            "Invalid request (simulated by backstop-sim).",
        ),
    };
    ErrorSpec {
        status,
        kind,
        code: None,
        param: None,
        message: Cow::Borrowed(message),
    }
}

pub(crate) fn context_length_error(input_tokens: u64) -> ErrorSpec {
    ErrorSpec {
        status: 400,
        kind: "invalid_request_error",
        code: None,
        param: None,
        message: format!(
            "prompt is too long: {} tokens > {CONTEXT_WINDOW} maximum",
            CONTEXT_WINDOW + input_tokens
        )
        .into(),
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"}`
pub(crate) fn error_json(buf: &mut Vec<u8>, err: &ErrorSpec, request_id: Option<&str>) {
    buf.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
    push_str(buf, err.kind);
    buf.extend_from_slice(b",\"message\":");
    push_str(buf, &err.message);
    buf.push(b'}');
    if let Some(id) = request_id {
        buf.extend_from_slice(b",\"request_id\":");
        push_str(buf, id);
    }
    buf.push(b'}');
}

fn usage(buf: &mut Vec<u8>, input: u64, output: u64) {
    buf.extend_from_slice(b"{\"input_tokens\":");
    push_u64(buf, input);
    buf.extend_from_slice(
        b",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":",
    );
    push_u64(buf, output);
    buf.push(b'}');
}

/// The `message` object: one text block, or a `tool_use` block per call (`texts` are their
/// inputs); `None` renders `content: []` (refusal).
pub(crate) fn message(buf: &mut Vec<u8>, meta: &Meta<'_>, texts: Option<&[String]>, stop: &str) {
    message_inner(buf, meta, texts, Some(stop), meta.output_tokens);
}

fn message_inner(
    buf: &mut Vec<u8>,
    meta: &Meta<'_>,
    texts: Option<&[String]>,
    stop: Option<&str>,
    output_tokens: u64,
) {
    buf.extend_from_slice(b"{\"id\":");
    push_str(buf, meta.id);
    buf.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    push_str(buf, meta.model);
    buf.extend_from_slice(b",\"content\":[");
    match texts {
        // A tool call's text is its arguments: a JSON object, the block's `input`.
        Some(args) if !meta.tools.is_empty() => {
            for (i, (tool, args)) in meta.tools.iter().zip(args).enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                tool_use_head(buf, *tool);
                buf.extend_from_slice(args.as_bytes());
                buf.push(b'}');
            }
        }
        Some(texts) => {
            buf.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            push_str(buf, &texts.concat());
            buf.push(b'}');
        }
        None => {}
    }
    buf.extend_from_slice(b"],\"stop_reason\":");
    match stop {
        Some(s) => push_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"stop_sequence\":null,\"usage\":");
    usage(buf, meta.input_tokens, output_tokens);
    buf.push(b'}');
}

/// `{"type":"tool_use","id":..,"name":..,"input":` (the input follows).
fn tool_use_head(buf: &mut Vec<u8>, tool: ToolUse<'_>) {
    buf.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
    push_str(buf, tool.id);
    buf.extend_from_slice(b",\"name\":");
    push_str(buf, tool.name);
    buf.extend_from_slice(b",\"input\":");
}

/// The stop reason of a finished reply: `tool_use` for a tool call.
pub(crate) fn stop_reason(meta: &Meta<'_>) -> &'static str {
    if meta.tools.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

fn event_head(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
}

/// `message_start` only (used before a refusal, which has no content block).
pub(crate) fn message_start(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    event_head(buf, "message_start");
    buf.extend_from_slice(b"{\"type\":\"message_start\",\"message\":");
    message_inner(buf, meta, None, None, 1);
    buf.extend_from_slice(b"}\n\n");
}

/// `message_start`, `content_block_start`, `ping`.
pub(crate) fn preamble(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    message_start(buf, meta);
    block_start(buf, meta, 0);
    event_head(buf, "ping");
    buf.extend_from_slice(b"{\"type\": \"ping\"}\n\n");
}

/// `content_block_start` of block `index`: the text block, or tool call `index`.
fn block_start(buf: &mut Vec<u8>, meta: &Meta<'_>, index: usize) {
    event_head(buf, "content_block_start");
    buf.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
    push_u64(buf, index as u64);
    buf.extend_from_slice(b",\"content_block\":");
    match meta.tools.get(index) {
        Some(tool) => {
            tool_use_head(buf, *tool);
            buf.extend_from_slice(b"{}}");
        }
        None => buf.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}"),
    }
    buf.extend_from_slice(b"}\n\n");
}

fn block_stop(buf: &mut Vec<u8>, index: usize) {
    event_head(buf, "content_block_stop");
    buf.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
    push_u64(buf, index as u64);
    buf.extend_from_slice(b"}\n\n");
}

/// One `content_block_delta`: a `text_delta`, or an `input_json_delta` for a tool call (the
/// first piece of a later call closes the previous block and opens its own).
pub(crate) fn text_delta(buf: &mut Vec<u8>, meta: &Meta<'_>, piece: Piece<'_>) {
    if piece.starts_call && piece.call > 0 {
        block_stop(buf, piece.call - 1);
        block_start(buf, meta, piece.call);
    }
    event_head(buf, "content_block_delta");
    buf.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
    push_u64(buf, piece.call as u64);
    buf.extend_from_slice(b",\"delta\":");
    if !meta.tools.is_empty() {
        buf.extend_from_slice(b"{\"type\":\"input_json_delta\",\"partial_json\":");
    } else {
        buf.extend_from_slice(b"{\"type\":\"text_delta\",\"text\":");
    }
    push_str(buf, piece.text);
    buf.extend_from_slice(b"}}\n\n");
}

/// `content_block_stop` (of the last block) then `message_delta`.
pub(crate) fn finish(buf: &mut Vec<u8>, meta: &Meta<'_>, stop: &str) {
    block_stop(buf, meta.tools.len().saturating_sub(1));
    message_delta(buf, meta.output_tokens, stop);
}

/// `message_delta` with the stop reason and final output tokens.
pub(crate) fn message_delta(buf: &mut Vec<u8>, output_tokens: u64, stop: &str) {
    event_head(buf, "message_delta");
    buf.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    push_str(buf, stop);
    buf.extend_from_slice(b",\"stop_sequence\":null},\"usage\":{\"output_tokens\":");
    push_u64(buf, output_tokens);
    buf.extend_from_slice(b"}}\n\n");
}

/// `message_stop`.
pub(crate) fn message_stop(buf: &mut Vec<u8>) {
    event_head(buf, "message_stop");
    buf.extend_from_slice(b"{\"type\":\"message_stop\"}\n\n");
}
