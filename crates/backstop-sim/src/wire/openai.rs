//! OpenAI chat-completions format (also Groq's, which adds `x_groq`).

use std::borrow::Cow;

use super::{ErrorSpec, Flavor, Meta, Piece, ToolUse, push_opt_str, push_str, push_u64};

/// Context window the simulated OpenAI models claim.
const CONTEXT_WINDOW: u64 = 128_000;

pub(crate) fn status_error(status: u16, model: &str) -> ErrorSpec {
    let (kind, code, message): (&'static str, Option<&'static str>, Cow<'static, str>) =
        match status {
            400 => (
                "invalid_request_error",
                None,
                "Invalid request (simulated by backstop-sim).".into(),
            ),
            401 => (
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided (simulated by backstop-sim).".into(),
            ),
            403 => (
                "invalid_request_error",
                Some("unsupported_country_region_territory"),
                "Country, region, or territory not supported (simulated by backstop-sim).".into(),
            ),
            404 => (
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model `{model}` does not exist or you do not have access to it.")
                    .into(),
            ),
            429 => (
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests (simulated by backstop-sim). Please try again later."
                    .into(),
            ),
            503 | 529 => (
                "server_error",
                None,
                "The engine is currently overloaded, please try again later.".into(),
            ),
            s if s >= 500 => (
                "server_error",
                None,
                "The server had an error while processing your request. Sorry about that!".into(),
            ),
            _ => (
                "invalid_request_error",
                None,
                "Invalid request (simulated by backstop-sim).".into(),
            ),
        };
    ErrorSpec {
        status,
        kind,
        code,
        param: None,
        message,
    }
}

pub(crate) fn context_length_error(input_tokens: u64) -> ErrorSpec {
    ErrorSpec {
        status: 400,
        kind: "invalid_request_error",
        code: Some("context_length_exceeded"),
        param: Some("messages"),
        message: format!(
            "This model's maximum context length is {CONTEXT_WINDOW} tokens. However, your messages resulted in {} tokens. Please reduce the length of the messages.",
            CONTEXT_WINDOW + input_tokens
        )
        .into(),
    }
}

/// Content filtering: 400 with code `content_filter` (the Azure OpenAI shape).
pub(crate) fn content_filter_error() -> ErrorSpec {
    ErrorSpec {
        status: 400,
        kind: "invalid_request_error",
        code: Some("content_filter"),
        param: Some("prompt"),
        message: "The response was filtered due to the prompt triggering content management policy (simulated by backstop-sim).".into(),
    }
}

/// `{"error":{"message","type","param","code"}}`
pub(crate) fn error_json(buf: &mut Vec<u8>, err: &ErrorSpec) {
    buf.extend_from_slice(b"{\"error\":{\"message\":");
    push_str(buf, &err.message);
    buf.extend_from_slice(b",\"type\":");
    push_str(buf, err.kind);
    buf.extend_from_slice(b",\"param\":");
    push_opt_str(buf, err.param);
    buf.extend_from_slice(b",\"code\":");
    push_opt_str(buf, err.code);
    buf.extend_from_slice(b"}}");
}

fn usage(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    let total = meta.input_tokens + meta.output_tokens;
    if meta.flavor == Flavor::Groq {
        buf.extend_from_slice(b"{\"queue_time\":0.0001,\"prompt_tokens\":");
        push_u64(buf, meta.input_tokens);
        buf.extend_from_slice(b",\"prompt_time\":0.0001,\"completion_tokens\":");
        push_u64(buf, meta.output_tokens);
        buf.extend_from_slice(b",\"completion_time\":0.0001,\"total_tokens\":");
        push_u64(buf, total);
        buf.extend_from_slice(b",\"total_time\":0.0002}");
    } else {
        buf.extend_from_slice(b"{\"prompt_tokens\":");
        push_u64(buf, meta.input_tokens);
        buf.extend_from_slice(b",\"completion_tokens\":");
        push_u64(buf, meta.output_tokens);
        buf.extend_from_slice(b",\"total_tokens\":");
        push_u64(buf, total);
        buf.extend_from_slice(
            b",\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
        );
    }
}

fn x_groq(buf: &mut Vec<u8>, meta: &Meta<'_>, with_usage: bool) {
    buf.extend_from_slice(b",\"x_groq\":{\"id\":");
    push_str(buf, meta.request_id);
    if with_usage {
        buf.extend_from_slice(b",\"usage\":");
        usage(buf, meta);
    }
    buf.push(b'}');
}

/// The `chat.completion` object: `texts` are the reply's text, or each tool call's arguments.
pub(crate) fn completion(buf: &mut Vec<u8>, meta: &Meta<'_>, texts: &[String]) {
    buf.extend_from_slice(b"{\"id\":");
    push_str(buf, meta.id);
    buf.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    push_u64(buf, meta.created);
    buf.extend_from_slice(b",\"model\":");
    push_str(buf, meta.model);
    buf.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    if meta.tools.is_empty() {
        push_str(buf, &texts.concat());
    } else {
        buf.extend_from_slice(b"null,\"tool_calls\":[");
        for (i, (tool, args)) in meta.tools.iter().zip(texts).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            tool_call_head(buf, *tool, None);
            push_str(buf, args);
            buf.extend_from_slice(b"}}");
        }
        buf.push(b']');
    }
    buf.extend_from_slice(
        b",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":",
    );
    push_str(buf, finish_reason(meta));
    buf.extend_from_slice(b"}],\"usage\":");
    usage(buf, meta);
    if meta.flavor == Flavor::Groq {
        buf.extend_from_slice(b",\"system_fingerprint\":\"fp_sim\"");
        x_groq(buf, meta, false);
    } else {
        buf.extend_from_slice(b",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_sim\"");
    }
    buf.push(b'}');
}

/// `{"index":..,"id":..,"type":"function","function":{"name":..,"arguments":` (arguments
/// follow; the index only in a stream).
fn tool_call_head(buf: &mut Vec<u8>, tool: ToolUse<'_>, index: Option<usize>) {
    buf.push(b'{');
    if let Some(i) = index {
        buf.extend_from_slice(b"\"index\":");
        push_u64(buf, i as u64);
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"id\":");
    push_str(buf, tool.id);
    buf.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
    push_str(buf, tool.name);
    buf.extend_from_slice(b",\"arguments\":");
}

/// `tool_calls` for a tool call, else `stop`.
fn finish_reason(meta: &Meta<'_>) -> &'static str {
    if meta.tools.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

/// `data: {"id":..,"object":"chat.completion.chunk",...,"choices":[`
fn chunk_head(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    buf.extend_from_slice(b"data: {\"id\":");
    push_str(buf, meta.id);
    buf.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    push_u64(buf, meta.created);
    buf.extend_from_slice(b",\"model\":");
    push_str(buf, meta.model);
    buf.extend_from_slice(b",\"system_fingerprint\":\"fp_sim\",\"choices\":[");
}

/// Closes a chunk opened by [`chunk_head`] after its choices.
fn chunk_tail(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    buf.push(b']');
    if meta.include_usage {
        buf.extend_from_slice(b",\"usage\":null");
    }
    buf.extend_from_slice(b"}\n\n");
}

/// First chunk: `delta.role`, empty content.
pub(crate) fn role_chunk(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    chunk_head(buf, meta);
    match meta.tools.first() {
        // As OpenAI streams a call: the first delta names it, with empty arguments.
        Some(tool) => {
            buf.extend_from_slice(
                b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[",
            );
            tool_call_head(buf, *tool, Some(0));
            buf.extend_from_slice(b"\"\"}}]},\"logprobs\":null,\"finish_reason\":null}");
        }
        None => buf.extend_from_slice(
            b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}",
        ),
    }
    chunk_tail(buf, meta);
}

/// One `delta.content` chunk, or `delta.tool_calls` fragment (a later call's first names it).
pub(crate) fn content_chunk(buf: &mut Vec<u8>, meta: &Meta<'_>, piece: Piece<'_>) {
    chunk_head(buf, meta);
    match meta.tools.get(piece.call) {
        Some(tool) => {
            buf.extend_from_slice(b"{\"index\":0,\"delta\":{\"tool_calls\":[");
            if piece.starts_call && piece.call > 0 {
                tool_call_head(buf, *tool, Some(piece.call));
            } else {
                buf.extend_from_slice(b"{\"index\":");
                push_u64(buf, piece.call as u64);
                buf.extend_from_slice(b",\"function\":{\"arguments\":");
            }
            push_str(buf, piece.text);
            buf.extend_from_slice(b"}}]");
        }
        None => {
            buf.extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":");
            push_str(buf, piece.text);
        }
    }
    buf.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}");
    chunk_tail(buf, meta);
}

/// The `finish_reason:"stop"` chunk, then the usage chunk when asked for.
pub(crate) fn finish(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    chunk_head(buf, meta);
    buf.extend_from_slice(b"{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":");
    push_str(buf, finish_reason(meta));
    buf.extend_from_slice(b"}]");
    if meta.include_usage {
        buf.extend_from_slice(b",\"usage\":null");
    }
    if meta.flavor == Flavor::Groq {
        x_groq(buf, meta, true);
    }
    buf.extend_from_slice(b"}\n\n");
    if meta.include_usage {
        chunk_head(buf, meta);
        buf.extend_from_slice(b"],\"usage\":");
        usage(buf, meta);
        buf.extend_from_slice(b"}\n\n");
    }
}
