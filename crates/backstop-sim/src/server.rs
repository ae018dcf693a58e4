//! The provider routes: parse, pick a fault, wait, render.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;

use crate::body::Script;
use crate::state::Shared;
use crate::wire::intent::{Call, Intent};
use crate::wire::reply::Reply;
use crate::wire::request::WireRequest;
use crate::wire::{self, ErrorSpec, Flavor, Meta, ToolUse, anthropic, openai};
use crate::{Fault, RecordedRequest};

/// Largest request body accepted (bigger gets the provider's 413).
const MAX_BODY: usize = 32 * 1024 * 1024;

pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// Routes for the three providers plus the `/_sim/` control API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_route))
        .route("/openai/v1/chat/completions", post(groq_route))
        .route("/v1/messages", post(anthropic_route))
        .route("/v1/embeddings", post(crate::embeddings::route))
        .merge(crate::control::routes())
        .with_state(shared)
}

async fn openai_route(State(s): State<Arc<Shared>>, req: Request) -> Response {
    handle(s, Flavor::OpenAi, req).await
}

async fn groq_route(State(s): State<Arc<Shared>>, req: Request) -> Response {
    handle(s, Flavor::Groq, req).await
}

async fn anthropic_route(State(s): State<Arc<Shared>>, req: Request) -> Response {
    handle(s, Flavor::Anthropic, req).await
}

async fn handle(shared: Arc<Shared>, flavor: Flavor, req: Request) -> Response {
    let n = shared.count_request();
    let request_id = format!("req_sim_{n}");
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        let err = wire::status_error(flavor, 413, "");
        return error_response(flavor, &err, &request_id);
    };

    // Parse; with recording on, via a Value that the log keeps.
    let (parsed, value) = if shared.records() {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => {
                let parsed = serde::Deserialize::deserialize(&v);
                (parsed, v)
            }
            Err(e) => (Err(e), serde_json::Value::Null),
        }
    } else {
        (
            serde_json::from_slice::<WireRequest>(&bytes),
            serde_json::Value::Null,
        )
    };
    // A body that does not parse is the client's fault: 400, no fault consumed.
    let fault = match &parsed {
        Ok(w) => shared.next_fault(w.is_stream()),
        Err(_) => None,
    };
    if shared.records() {
        let (stream, model) = match &parsed {
            Ok(w) => (w.is_stream(), w.model.clone()),
            Err(_) => (false, None),
        };
        shared.push_record(RecordedRequest {
            path: parts.uri.path().to_owned(),
            headers: header_pairs(&parts.headers),
            body: value,
            stream,
            model,
            fault: fault.clone(),
            request_id: request_id.clone(),
            peer: peer(&parts),
        });
    }
    let wire_req = match parsed {
        Ok(w) => w,
        Err(e) => {
            let err = ErrorSpec {
                status: 400,
                kind: "invalid_request_error",
                code: None,
                param: None,
                message: format!("invalid JSON body: {e}").into(),
            };
            return error_response(flavor, &err, &request_id);
        }
    };

    respond(&shared, flavor, n, &request_id, &wire_req, fault).await
}

/// The client address axum recorded for the connection.
pub(crate) fn peer(parts: &axum::http::request::Parts) -> Option<std::net::SocketAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

async fn respond(
    shared: &Arc<Shared>,
    flavor: Flavor,
    n: u64,
    request_id: &str,
    req: &WireRequest,
    fault: Option<Fault>,
) -> Response {
    let stream = req.is_stream();
    let chunks = shared.chunks();
    if shared.reject_prefill() && req.ends_with_assistant() {
        let err = ErrorSpec {
            status: 400,
            kind: "invalid_request_error",
            code: None,
            param: Some("messages"),
            message: "This model does not support assistant message prefill. The conversation must end with a user message (simulated by backstop-sim).".into(),
        };
        return error_response(flavor, &err, request_id);
    }
    let (ttft, chunk_delay) = (shared.ttft(), shared.chunk_delay());

    // Time before headers: base latency (+ fault latency); a non-streamed reply also
    // "generates" its whole text first.
    let mut before_headers = shared.latency();
    if let Some(Fault::Latency(d)) = &fault {
        before_headers = before_headers.saturating_add(*d);
    }
    if !stream {
        let gaps = u32::try_from(chunks.saturating_sub(1)).unwrap_or(u32::MAX);
        before_headers = before_headers
            .saturating_add(ttft)
            .saturating_add(chunk_delay.saturating_mul(gaps));
    }
    if matches!(fault, Some(Fault::Hang)) {
        shared.shutdown_signal().await;
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "backstop-sim shutting down",
        );
    }
    if !shared.sleep(before_headers).await {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "backstop-sim shutting down",
        );
    }

    let id = match flavor {
        Flavor::Anthropic => format!("msg_sim_{n}"),
        Flavor::OpenAi | Flavor::Groq => format!("chatcmpl-sim-{n}"),
    };
    let intent = req.intent();
    let calls: &[Call] = match &intent {
        Intent::ToolCalls(calls) => calls,
        _ => &[],
    };
    let tool_ids: Vec<String> = (0..calls.len())
        .map(|i| match flavor {
            Flavor::Anthropic => format!("toolu_sim_{n}_{i}"),
            Flavor::OpenAi | Flavor::Groq => format!("call_sim_{n}_{i}"),
        })
        .collect();
    let tools: Vec<ToolUse<'_>> = calls
        .iter()
        .zip(&tool_ids)
        .map(|(c, id)| ToolUse { id, name: &c.name })
        .collect();
    let mut meta = Meta {
        flavor,
        id: &id,
        request_id,
        model: req.model(),
        created: unix_now(),
        input_tokens: req.input_tokens(),
        output_tokens: chunks as u64,
        include_usage: stream && req.include_usage(),
        tools: &tools,
    };

    let tail = match fault {
        None | Some(Fault::Latency(_)) => Tail::Done,
        Some(Fault::Hang) => Tail::Done, // handled above
        Some(Fault::Status(s)) => {
            let err = wire::status_error(flavor, s, meta.model);
            return error_response(flavor, &err, request_id);
        }
        Some(Fault::RateLimited {
            retry_after_secs,
            retry_after_ms,
            retry_after_http_date,
        }) => {
            let err = wire::status_error(flavor, 429, meta.model);
            let mut resp = error_response(flavor, &err, request_id);
            let h = resp.headers_mut();
            if retry_after_http_date {
                let at = SystemTime::now() + Duration::from_secs(retry_after_secs.unwrap_or(1));
                insert(h, "retry-after", httpdate::fmt_http_date(at));
            } else if let Some(secs) = retry_after_secs {
                insert(h, "retry-after", secs.to_string());
            }
            if let Some(ms) = retry_after_ms {
                insert(h, "retry-after-ms", ms.to_string());
            }
            let remaining = match flavor {
                Flavor::Anthropic => "anthropic-ratelimit-requests-remaining",
                Flavor::OpenAi | Flavor::Groq => "x-ratelimit-remaining-requests",
            };
            h.insert(
                HeaderName::from_static(remaining),
                HeaderValue::from_static("0"),
            );
            return resp;
        }
        Some(Fault::ContextLength) => {
            let err = wire::context_length_error(flavor, meta.input_tokens);
            return error_response(flavor, &err, request_id);
        }
        Some(Fault::ContentFilter) => {
            if flavor != Flavor::Anthropic {
                return error_response(flavor, &openai::content_filter_error(), request_id);
            }
            meta.output_tokens = 0;
            let mut script = Script::new();
            if stream {
                anthropic::message_start(script.buf(), &meta);
                anthropic::message_delta(script.buf(), 0, "refusal");
                anthropic::message_stop(script.buf());
            } else {
                anthropic::message(script.buf(), &meta, None, "refusal");
            }
            return ok_response(shared, flavor, stream, request_id, script);
        }
        Some(Fault::MalformedBody) => {
            let mut script = Script::new();
            if stream {
                script
                    .buf()
                    .extend_from_slice(b"data: <html><body>502 Bad Gateway</body></html>\n\n");
            } else {
                script
                    .buf()
                    .extend_from_slice(b"<html><body>502 Bad Gateway</body></html>");
            }
            return ok_response(shared, flavor, stream, request_id, script);
        }
        Some(Fault::InBandError {
            after_chunks,
            status,
        }) => {
            if !stream {
                let err = wire::status_error(flavor, status, meta.model);
                return error_response(flavor, &err, request_id);
            }
            Tail::InBandError(after_chunks, status)
        }
        Some(Fault::MalformedChunk { after_chunks }) => Tail::Malformed(after_chunks),
        Some(Fault::Disconnect { after_chunks }) => Tail::Disconnect(after_chunks),
        Some(Fault::Truncate { after_chunks }) => Tail::Truncate(after_chunks),
        Some(Fault::Stall { after_chunks }) => Tail::Stall(after_chunks),
        Some(Fault::NoTerminalMarker) => Tail::NoMarker,
        Some(Fault::GarbledEvent { after_chunks }) => Tail::Garbled(after_chunks),
    };

    let reply = match (&intent, req.continuation()) {
        (Intent::ToolCalls(calls), _) => {
            let args: Vec<String> = calls.iter().map(|c| c.arguments.clone()).collect();
            Reply::tool_calls(&args, chunks)
        }
        (Intent::Json(text), _) => Reply::split(text, chunks),
        (Intent::AfterTool(result), _) => Reply::after_tool(flavor, result, chunks),
        (Intent::Text, Some((prompt, partial))) => Reply::continuation(
            flavor,
            prompt,
            partial,
            chunks,
            shared.continuation_overlap(),
        ),
        (Intent::Text, None) => Reply::new(flavor, req.last_user_text(), chunks),
    };
    meta.output_tokens = reply.len() as u64;
    let mut script = Script::new();
    if stream {
        stream_script(&mut script, &meta, &reply, ttft, chunk_delay, tail);
    } else {
        let full = wire::completion_body(&meta, &reply.texts());
        match tail {
            Tail::Done | Tail::NoMarker | Tail::Garbled(_) => script.buf().extend_from_slice(&full),
            Tail::Malformed(_) => script
                .buf()
                .extend_from_slice(b"<html><body>502 Bad Gateway</body></html>"),
            Tail::Disconnect(_) | Tail::Truncate(_) | Tail::Stall(_) | Tail::InBandError(..) => {
                script.buf().extend_from_slice(&full[..full.len() / 2]);
                match tail {
                    Tail::Disconnect(_) => script.abort(),
                    Tail::Stall(_) => script.stall(),
                    _ => {}
                }
            }
        }
    }
    ok_response(shared, flavor, stream, request_id, script)
}

/// How a streamed body ends.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// Finish events and the terminal marker.
    Done,
    Disconnect(usize),
    Truncate(usize),
    Malformed(usize),
    InBandError(usize, u16),
    Stall(usize),
    /// Everything but the terminal marker.
    NoMarker,
    /// One unparseable event after N chunks, then the rest as usual.
    Garbled(usize),
}

/// Preamble, ttft, content chunks with delays between, then the tail. A fault after N
/// chunks replaces everything after chunk N; with N ≥ the chunk count it replaces only
/// the terminal marker.
fn stream_script(
    script: &mut Script,
    meta: &Meta<'_>,
    reply: &Reply,
    ttft: Duration,
    chunk_delay: Duration,
    tail: Tail,
) {
    wire::stream_preamble(script.buf(), meta);
    script.sleep(ttft);
    let cut = match tail {
        Tail::Done | Tail::NoMarker | Tail::Garbled(_) => reply.len(),
        Tail::Disconnect(n)
        | Tail::Truncate(n)
        | Tail::Malformed(n)
        | Tail::InBandError(n, _)
        | Tail::Stall(n) => n.min(reply.len()),
    };
    for (i, piece) in reply.stream_pieces(cut).enumerate() {
        if i > 0 {
            script.sleep(chunk_delay);
        }
        if matches!(tail, Tail::Garbled(n) if n == i) {
            script.buf().extend_from_slice(b"data: {not json\n\n");
        }
        wire::stream_piece(script.buf(), meta, piece);
    }
    if matches!(tail, Tail::Garbled(n) if n >= reply.len()) {
        script.buf().extend_from_slice(b"data: {not json\n\n");
    }
    if cut == reply.len() {
        wire::stream_finish(script.buf(), meta);
    }
    match tail {
        Tail::Done | Tail::Garbled(_) => wire::stream_done(script.buf(), meta.flavor),
        Tail::NoMarker => {}
        Tail::Disconnect(_) => script.abort(),
        Tail::Truncate(_) => {}
        Tail::Malformed(_) => script.buf().extend_from_slice(b"data: {not json\n\n"),
        Tail::InBandError(_, status) => {
            let err = wire::status_error(meta.flavor, status, meta.model);
            wire::error_event(script.buf(), meta.flavor, &err);
        }
        Tail::Stall(_) => script.stall(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn insert(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

/// Headers every response of this flavour carries.
fn provider_headers(h: &mut HeaderMap, flavor: Flavor, request_id: &str) {
    let id = HeaderValue::try_from(request_id).unwrap_or(HeaderValue::from_static("req_sim"));
    match flavor {
        Flavor::Anthropic => {
            h.insert(HeaderName::from_static("request-id"), id);
        }
        Flavor::OpenAi => {
            h.insert(HeaderName::from_static("x-request-id"), id);
            h.insert(
                HeaderName::from_static("openai-version"),
                HeaderValue::from_static("2020-10-01"),
            );
            h.insert(
                HeaderName::from_static("openai-processing-ms"),
                HeaderValue::from_static("1"),
            );
        }
        Flavor::Groq => {
            h.insert(HeaderName::from_static("x-request-id"), id);
        }
    }
}

fn ok_response(
    shared: &Arc<Shared>,
    flavor: Flavor,
    stream: bool,
    request_id: &str,
    script: Script,
) -> Response {
    let mut resp = Response::new(script.into_body(shared));
    let h = resp.headers_mut();
    if stream {
        h.insert(CONTENT_TYPE, EVENT_STREAM);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        h.insert(CONTENT_TYPE, JSON);
    }
    provider_headers(h, flavor, request_id);
    resp
}

pub(crate) fn error_response(flavor: Flavor, err: &ErrorSpec, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(wire::error_body(flavor, err, request_id)));
    *resp.status_mut() =
        StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, JSON);
    provider_headers(h, flavor, request_id);
    if flavor == Flavor::Anthropic && err.status == 529 {
        h.insert(
            HeaderName::from_static("x-should-retry"),
            HeaderValue::from_static("true"),
        );
    }
    resp
}

pub(crate) fn plain(status: StatusCode, msg: &'static str) -> Response {
    let mut resp = Response::new(Body::from(msg));
    *resp.status_mut() = status;
    resp
}
