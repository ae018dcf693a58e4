//! Wire formats: request parsing, the deterministic reply, and body/SSE rendering
//! per provider flavour. Everything renders into one `Vec<u8>` with serde_json doing
//! the string escaping; nothing here knows about HTTP.

pub(crate) mod anthropic;
pub(crate) mod example;
pub(crate) mod intent;
pub(crate) mod openai;
pub(crate) mod reply;
pub use reply::reply_text;
pub(crate) mod request;

use std::borrow::Cow;
use std::io::Write as _;

/// Which provider a route imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /openai/v1/chat/completions` (OpenAI format plus `x_groq`).
    Groq,
    /// `POST /v1/messages`.
    Anthropic,
}

impl Flavor {
    /// Lower-case provider name used in reply text.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::OpenAi => "openai",
            Flavor::Groq => "groq",
            Flavor::Anthropic => "anthropic",
        }
    }
}

/// What a rendered response talks about.
#[derive(Debug)]
pub(crate) struct Meta<'a> {
    pub flavor: Flavor,
    pub id: &'a str,
    pub request_id: &'a str,
    pub model: &'a str,
    pub created: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub include_usage: bool,
    /// When the reply is tool calls: their ids and function names, in order (the pieces are
    /// their arguments; [`Piece::call`] says whose).
    pub tools: &'a [ToolUse<'a>],
}

/// One piece of a streamed reply: its text, and for tool calls which call it belongs to and
/// whether it is that call's first piece.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece<'a> {
    pub text: &'a str,
    pub call: usize,
    pub starts_call: bool,
}

/// The tool call a reply makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolUse<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// A provider error: HTTP status plus the fields of the provider's error body.
#[derive(Debug, Clone)]
pub(crate) struct ErrorSpec {
    pub status: u16,
    /// OpenAI `error.type` / Anthropic `error.type`.
    pub kind: &'static str,
    /// OpenAI `error.code` (Anthropic has none).
    pub code: Option<&'static str>,
    /// OpenAI `error.param`.
    pub param: Option<&'static str>,
    pub message: Cow<'static, str>,
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str(buf: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail and a &str always serialises.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// Appends a decimal integer.
pub(crate) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    let _ = write!(buf, "{n}");
}

/// Appends `s` as a JSON string, or `null`.
pub(crate) fn push_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// The error a plain `Status(status)` fault produces for this flavour.
pub(crate) fn status_error(flavor: Flavor, status: u16, model: &str) -> ErrorSpec {
    let status = if (400..=599).contains(&status) {
        status
    } else {
        500
    };
    match flavor {
        Flavor::Anthropic => anthropic::status_error(status),
        Flavor::OpenAi | Flavor::Groq => openai::status_error(status, model),
    }
}

/// The context-length error for this flavour.
pub(crate) fn context_length_error(flavor: Flavor, input_tokens: u64) -> ErrorSpec {
    match flavor {
        Flavor::Anthropic => anthropic::context_length_error(input_tokens),
        Flavor::OpenAi | Flavor::Groq => openai::context_length_error(input_tokens),
    }
}

/// The JSON error body for this flavour.
pub(crate) fn error_body(flavor: Flavor, err: &ErrorSpec, request_id: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    match flavor {
        Flavor::Anthropic => anthropic::error_json(&mut buf, err, Some(request_id)),
        Flavor::OpenAi | Flavor::Groq => openai::error_json(&mut buf, err),
    }
    buf
}

/// Appends the in-band streaming error event for this flavour.
pub(crate) fn error_event(buf: &mut Vec<u8>, flavor: Flavor, err: &ErrorSpec) {
    match flavor {
        Flavor::Anthropic => {
            buf.extend_from_slice(b"event: error\ndata: ");
            anthropic::error_json(buf, err, None);
            buf.extend_from_slice(b"\n\n");
        }
        Flavor::OpenAi | Flavor::Groq => {
            buf.extend_from_slice(b"data: ");
            openai::error_json(buf, err);
            buf.extend_from_slice(b"\n\n");
        }
    }
}

/// The complete non-streamed success body: `texts` is the reply's text, or each tool call's
/// arguments.
pub(crate) fn completion_body(meta: &Meta<'_>, texts: &[String]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512 + texts.iter().map(String::len).sum::<usize>());
    match meta.flavor {
        Flavor::Anthropic => {
            anthropic::message(&mut buf, meta, Some(texts), anthropic::stop_reason(meta));
        }
        Flavor::OpenAi | Flavor::Groq => openai::completion(&mut buf, meta, texts),
    }
    buf
}

/// Appends the events sent before the first content chunk.
pub(crate) fn stream_preamble(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    match meta.flavor {
        Flavor::Anthropic => anthropic::preamble(buf, meta),
        Flavor::OpenAi | Flavor::Groq => openai::role_chunk(buf, meta),
    }
}

/// Appends one content chunk.
pub(crate) fn stream_piece(buf: &mut Vec<u8>, meta: &Meta<'_>, piece: Piece<'_>) {
    match meta.flavor {
        Flavor::Anthropic => anthropic::text_delta(buf, meta, piece),
        Flavor::OpenAi | Flavor::Groq => openai::content_chunk(buf, meta, piece),
    }
}

/// Appends the events after the last content chunk, up to (excluding) the terminal marker.
pub(crate) fn stream_finish(buf: &mut Vec<u8>, meta: &Meta<'_>) {
    match meta.flavor {
        Flavor::Anthropic => anthropic::finish(buf, meta, anthropic::stop_reason(meta)),
        Flavor::OpenAi | Flavor::Groq => openai::finish(buf, meta),
    }
}

/// Appends the terminal marker: `data: [DONE]` or `message_stop`.
pub(crate) fn stream_done(buf: &mut Vec<u8>, flavor: Flavor) {
    match flavor {
        Flavor::Anthropic => anthropic::message_stop(buf),
        Flavor::OpenAi | Flavor::Groq => buf.extend_from_slice(b"data: [DONE]\n\n"),
    }
}
