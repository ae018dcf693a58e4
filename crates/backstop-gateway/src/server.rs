//! The HTTP surface: OpenAI-compatible chat completions, models, health and metrics; the
//! breaker endpoints are in `admin`, streamed answers in `sse`, the Host/Origin rules in
//! `browser_guard`.

// Handlers return ready-made error responses through `Result`; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use backstop::{AllProvidersFailed, Attempt, ErrorKind};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tracing::Instrument;

use crate::admin;
use crate::app::App;
use crate::auth::{Access, Denied};
use crate::front::Front;
use crate::reload::Live;
use crate::request_id::RequestId;
use crate::request_log::RequestLog;
use crate::sse::stream_response;
use crate::state::key_limits::Reservation;
use crate::wire::{self, Answer, BadRequest, GatewayRequest};

/// One config's app, as a request sees it.
pub(crate) type Shared = Arc<App>;

/// The app in force when the request arrived: a reload does not change it under a request
/// (or a stream) already running. The front puts it in the request's extensions, so the
/// guard and the handler see the same config.
#[derive(Clone)]
pub(crate) struct Current(pub(crate) Shared);

impl FromRequestParts<Arc<Live>> for Current {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        live: &Arc<Live>,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .remove::<Current>()
            .unwrap_or_else(|| Current(live.app())))
    }
}

/// The gateway's routes, behind the request id and the Host and Origin rules.
pub fn router(live: Arc<Live>) -> Front {
    Front::new(live.clone(), routes(live))
}

fn routes(live: Arc<Live>) -> Router {
    Router::new()
        // The front answers a POST to these (`front.rs`); the router, their other methods.
        .route("/v1/chat/completions", any(method_not_allowed))
        .route("/v1/embeddings", any(method_not_allowed))
        .route("/v1/messages", any(method_not_allowed))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/breakers", get(admin::breakers))
        .route("/v1/breakers/{name}/trip", post(admin::trip))
        .route("/v1/breakers/{name}/reset", post(admin::reset))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::status::routes(&live))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(live)
}

/// An OpenAI-shaped error response.
pub fn error(
    status: StatusCode,
    kind: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let mut r = Response::new(Body::from(wire::error_body(message, kind, param, code)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// 503 with `Retry-After`: the gateway itself is at a limit (not a provider).
pub(crate) fn overloaded(message: &str, code: &str) -> Response {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        message,
        None,
        Some(code),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Checks the caller's key for an endpoint; the refusal, ready to send, otherwise.
pub(crate) fn authorize(app: &App, headers: &HeaderMap, access: Access) -> Result<(), Response> {
    let values = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    app.keys
        .check(values, access)
        .map_err(|denied| match denied {
            Denied::Unauthenticated => error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "missing or invalid API key: send `Authorization: Bearer <key>`",
                None,
                Some("invalid_api_key"),
            ),
            Denied::WrongRole if access == Access::Admin => error(
                StatusCode::FORBIDDEN,
                "permission_error",
                "this endpoint needs the admin key",
                None,
                None,
            ),
            Denied::WrongRole => error(
                StatusCode::FORBIDDEN,
                "permission_error",
                "the admin key is not a client key: send one of the client keys",
                None,
                None,
            ),
            Denied::AdminDisabled => error(
                StatusCode::FORBIDDEN,
                "permission_error",
                "admin endpoints are disabled: set server.admin_key_env",
                None,
                None,
            ),
        })
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "no such endpoint",
        None,
        Some("unknown_url"),
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "this endpoint does not accept that method",
        None,
        Some("method_not_allowed"),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when every chain has at least one provider whose breaker admits calls.
async fn readyz(Current(app): Current) -> Response {
    let down: Vec<&str> = app
        .chain_names
        .iter()
        .filter(|c| {
            app.chains
                .get(*c)
                .is_some_and(|chain| !chain.breakers().any(|b| b.admits()))
        })
        .map(String::as_str)
        .collect();
    if down.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: every breaker open in {}", down.join(", ")),
        )
            .into_response()
    }
}

/// Prometheus text (0.0.4) unless the scraper asks for OpenMetrics.
async fn metrics(Current(app): Current, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, Access::Monitor) {
        return r;
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (
            crate::metrics::OPENMETRICS_CONTENT_TYPE,
            app.metrics.render_openmetrics(),
        )
    } else {
        (
            crate::metrics::PROMETHEUS_CONTENT_TYPE,
            app.metrics.render(),
        )
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn model_json(id: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "backstop"})
}

async fn models(Current(app): Current, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, Access::Client) {
        return r;
    }
    let data: Vec<serde_json::Value> = app.chain_names.iter().map(|c| model_json(c)).collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1/models/{id}`: one chain, as the SDK's `models.retrieve` expects it.
async fn model(Current(app): Current, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorize(&app, &headers, Access::Client) {
        return r;
    }
    if app.chains.contains_key(&id) {
        axum::Json(model_json(&id)).into_response()
    } else {
        unknown_model(&app, &id)
    }
}

pub(crate) fn unknown_model(app: &App, name: &str) -> Response {
    let known = app.chain_names.join(", ");
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        &format!(
            "the model `{}` does not exist; this gateway serves: {known}",
            bounded(name, 100)
        ),
        Some("model"),
        Some("model_not_found"),
    )
}

/// Reads the body up to the configured limit and time.
pub(crate) async fn read_body(app: &App, body: Body) -> Result<Bytes, Response> {
    let limit = app.max_body_bytes;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            &format!("request body is larger than {limit} bytes"),
            None,
            None,
        )
    };
    let collect = async {
        match whole_body(body, limit).await {
            Ok(bytes) => Ok(bytes),
            Err(None) => Err(too_large()),
            Err(Some(e)) => Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("could not read request body: {e}"),
                None,
                None,
            )),
        }
    };
    match tokio::time::timeout(app.body_timeout, collect).await {
        Ok(r) => r,
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "timed out reading the request body",
            None,
            None,
        )),
    }
}

/// The body, at most `limit` bytes (`Err(None)` past it, as soon as the length says so). A
/// body of one frame, nearly every request, is kept as it came: `collect` copied it into a
/// list it allocated and grew (400 instructions a request, callgrind).
async fn whole_body(mut body: Body, limit: usize) -> Result<Bytes, Option<axum::Error>> {
    use axum::body::HttpBody;
    if usize::try_from(body.size_hint().lower()).map_or(true, |n| n > limit) {
        return Err(None);
    }
    let mut first: Option<Bytes> = None;
    let mut more: Option<Vec<u8>> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Some)?.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(None);
        }
        match (&mut more, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let mut buf = Vec::with_capacity(total);
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
                more = Some(buf);
            }
        }
    }
    Ok(match more {
        Some(buf) => Bytes::from(buf),
        None => first.unwrap_or_default(),
    })
}

pub(crate) fn bad_request(e: &BadRequest) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &e.message,
        e.param.as_deref(),
        None,
    )
}

/// JSON endpoints take `application/json` (any parameters, any case) and nothing else: a
/// browser's "simple" cross-site POST (`text/plain`, forms) never reaches a chain.
pub(crate) fn json_content_type(headers: &HeaderMap) -> Result<(), Response> {
    // The common exact value first: the general reading costs 300 instructions.
    let is_json = headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes() == b"application/json"
            || v.to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json {
        return Ok(());
    }
    Err(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_request_error",
        "the request body must be JSON: send `Content-Type: application/json`",
        None,
        Some("unsupported_media_type"),
    ))
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Built at compile time: a header named by a `&str` is parsed (and hashed for its standard
/// name) on every insert, 630 instructions each.
const PROVIDER_HEADER: HeaderName = HeaderName::from_static("x-backstop-provider");
const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-backstop-attempts");
const SHOULD_RETRY_HEADER: HeaderName = HeaderName::from_static("x-should-retry");

pub(crate) fn attempt_headers(r: &mut Response, provider: Option<&str>, attempts: &[Attempt]) {
    let h = r.headers_mut();
    if let Some(p) = provider.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(PROVIDER_HEADER, p);
    }
    h.insert(ATTEMPTS_HEADER, count_value(attempts.len()));
}

/// A count as a header value; the usual small ones are static (`From<usize>` allocates).
fn count_value(n: usize) -> HeaderValue {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    SMALL
        .get(n)
        .map_or_else(|| HeaderValue::from(n), |s| HeaderValue::from_static(s))
}

/// Status and OpenAI error type for a request every provider failed.
fn failure_status(f: &AllProvidersFailed) -> (StatusCode, &'static str, &'static str) {
    match f.summary_kind() {
        ErrorKind::Timeout if f.deadline_exceeded => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            "deadline_exceeded",
        ),
        ErrorKind::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        ErrorKind::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "all_providers_unavailable",
        ),
        ErrorKind::LocalResource => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "gateway_overloaded",
        ),
        ErrorKind::ContextLengthExceeded => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        ErrorKind::ContentFiltered => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "content_filter",
        ),
        ErrorKind::InvalidRequest => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
        ),
        // No provider of the chain can serve what was asked (a parameter, or chat from an
        // embeddings chain): retrying will not help.
        ErrorKind::Unsupported => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unsupported_parameter",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            "all_providers_failed",
        ),
    }
}

/// The client's view of a failed request: backstop's summary (each provider's kind, status
/// and the provider's own message, already scrubbed at the source), never a raw upstream body.
/// Clients are told when retrying cannot help (`x-should-retry: false`: the chain already
/// retried or moved on, the deadline passed, or no provider takes calls yet) and, for 429/503,
/// when a provider will take calls again: `retry-after-ms` to the millisecond, `Retry-After` in
/// whole seconds rounded down.
/// When no provider can honour a parameter, the 400 names it (`param`: the first).
fn failure_response(f: &AllProvidersFailed) -> Response {
    let (status, kind, code) = failure_status(f);
    let local = f.summary_kind() == ErrorKind::LocalResource;
    let unsupported = f.unsupported_params();
    let message = if local {
        format!(
            "the gateway is out of local resources (open files, memory or ports), not a \
             provider failure; retry shortly. {f}"
        )
    } else if !unsupported.is_empty() {
        format!(
            "no provider of this chain supports {}: {f}",
            unsupported.join(", ")
        )
    } else {
        f.to_string()
    };
    let param = unsupported.first().map(String::as_str);
    let mut r = error(status, kind, &message, param, Some(code));
    let hint = match f.summary_kind() {
        ErrorKind::RateLimited { retry_after } => f.retry_after.or(retry_after),
        ErrorKind::LocalResource => Some(std::time::Duration::from_secs(1)),
        _ => f.retry_after,
    };
    let h = r.headers_mut();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) && let Some(d) = hint
    {
        let ms = d.as_micros().div_ceil(1000);
        h.insert(
            "retry-after-ms",
            HeaderValue::from(u64::try_from(ms).unwrap_or(u64::MAX)),
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from(d.as_secs()));
    }
    let futile = f.retried() || f.deadline_exceeded || f.retry_after.is_some();
    if !local && (futile || !unsupported.is_empty()) {
        h.insert(SHOULD_RETRY_HEADER, HeaderValue::from_static("false"));
    }
    attempt_headers(&mut r, None, &f.attempts);
    r
}

/// The handler (called by the front for a `POST`).
pub(crate) async fn chat_completions(app: Shared, id: RequestId, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (span, caller_trace) =
        crate::telemetry::http_span(&parts.headers, id.as_str(), "/v1/chat/completions");
    let mut response = match authorize(&app, &parts.headers, Access::Client)
        .and_then(|()| json_content_type(&parts.headers))
    {
        Err(r) => r,
        Ok(()) => match read_body(&app, body).await {
            Ok(bytes) => match wire::parse_request(&bytes) {
                Ok(req) => {
                    let req = Box::new(req);
                    limit_and_admit(&app, &parts, req, &id, caller_trace, &span, started).await
                }
                Err(e) => bad_request(&e),
            },
            Err(r) => r,
        },
    };
    crate::telemetry::finish_http_span(&span, &mut response);
    app.metrics.http_status(response.status().as_u16());
    response
}

/// A parsed chat request (either API) from here on: its id and trace context, the client
/// key's limits, then [`admit`] inside the HTTP span. The request is boxed: it is half a
/// kilobyte, and each future it passes through moved it again (8 copies, 700 instructions).
pub(crate) async fn limit_and_admit(
    app: &Shared,
    parts: &Parts,
    mut req: Box<GatewayRequest>,
    id: &RequestId,
    caller_trace: Option<crate::traceparent::TraceParent>,
    span: &tracing::Span,
    started: Instant,
) -> Response {
    req.request.request_id = Some(id.as_str().to_owned());
    req.request.traceparent = caller_trace.map(|t| t.to_string());
    // Both boxed, so the handler's future stays small (it is moved whole); the key-limit check
    // only where key limits are configured (its Redis future is large, the box is not free).
    let reserved = if app.config.server.key_limits.is_some() {
        let limited = Box::pin(crate::state::key_limits::check(
            app,
            &parts.headers,
            req.request.config.max_tokens,
        ));
        match limited.await {
            Ok(reserved) => reserved,
            Err(r) => return r,
        }
    } else {
        None
    };
    Box::pin(admit(app, req, started, reserved))
        .instrument(span.clone())
        .await
}

/// Sheds the request when `max_in_flight` are already running; the slot is held until the
/// answer is done (for a stream, until it ends).
/// `reserved`: the request's key-limit tokens, reconciled with the usage once known.
pub(crate) async fn admit(
    app: &Shared,
    req: Box<GatewayRequest>,
    started: Instant,
    reserved: Option<Reservation>,
) -> Response {
    match in_flight_slot(app) {
        Ok(slot) => answer(app, req, started, slot, reserved).await,
        Err(r) => r,
    }
}

/// A slot under `max_in_flight`, or the 503 that sheds the request.
pub(crate) fn in_flight_slot(app: &App) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    app.in_flight.try_admit().ok_or_else(|| {
        app.metrics.shed("in_flight");
        overloaded(
            &format!(
                "the gateway is at its limit of {} requests in flight (server.max_in_flight); \
                 retry shortly",
                app.limits.max_in_flight
            ),
            "gateway_overloaded",
        )
    })
}

async fn answer(
    app: &Shared,
    req: Box<GatewayRequest>,
    started: Instant,
    slot: tokio::sync::OwnedSemaphorePermit,
    reserved: Option<Reservation>,
) -> Response {
    let Some(chain) = app.chains.get(&req.chain) else {
        return unknown_model(app, &req.chain);
    };
    let mut stopping = app.stopping.subscribe();
    if req.stream {
        let opened = tokio::select! {
            opened = chain.stream_request(&req.request) => opened,
            _ = stopping.wait_for(|s| *s) => return shutting_down(req.request_id(), &req.chain, started, req.stream),
        };
        return match opened {
            Ok(stream) => stream_response(
                app.clone(),
                chain.metrics.clone(),
                req,
                stream,
                started,
                slot,
                reserved,
            ),
            Err(f) => {
                if let Some(reserved) = reserved {
                    reserved.settle(None).await;
                }
                failed(req.request_id(), &req.chain, &f, started, req.stream)
            }
        };
    }
    let result = tokio::select! {
        r = chain.generate_request(&req.request) => r,
        _ = stopping.wait_for(|s| *s) => return shutting_down(req.request_id(), &req.chain, started, req.stream),
    };
    if let Some(reserved) = reserved {
        let used = result.as_ref().ok().and_then(|r| r.usage.as_ref());
        reserved
            .settle(used.map(|u| u64::from(u.input_tokens) + u64::from(u.output_tokens)))
            .await;
    }
    match result {
        Ok(result) => {
            if let Some(u) = &result.usage {
                chain
                    .metrics
                    .tokens(&result.provider_used, u.input_tokens, u.output_tokens);
            }
            let body = match answer_body(app, &req, &result) {
                Ok(body) => body,
                Err(r) => {
                    RequestLog {
                        provider: Some(&result.provider_used),
                        attempts: &result.attempts,
                        ..RequestLog::unanswered(req.request_id(), &req.chain, started, 502, false)
                    }
                    .emit();
                    return r;
                }
            };
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            attempt_headers(&mut r, Some(&result.provider_used), &result.attempts);
            RequestLog {
                request_id: req.request_id(),
                chain: &req.chain,
                provider: Some(&result.provider_used),
                attempts: &result.attempts,
                started,
                status: 200,
                stream: false,
                finish_reason: result.finish_reason.as_ref(),
                resumed: &[],
            }
            .emit();
            r
        }
        Err(f) => failed(req.request_id(), &req.chain, &f, started, req.stream),
    }
}

/// A whole answer's body in the API the request came in.
fn answer_body(
    app: &App,
    req: &GatewayRequest,
    result: &backstop::FallbackResult,
) -> Result<Vec<u8>, Response> {
    if req.api == backstop::ApiFormat::Anthropic {
        let answer = crate::messages_response::MessageAnswer {
            text: &result.text,
            refusal: result.refusal.as_deref(),
            tool_calls: &result.tool_calls,
            finish: result.finish_reason.as_ref(),
            usage: result.usage.as_ref(),
        };
        return crate::messages_response::message_body(&app.next_id(), &result.model, answer)
            .map_err(|e| {
                error(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    &format!("{}: {e}", result.provider_used),
                    None,
                    Some("invalid_provider_response"),
                )
            });
    }
    Ok(wire::completion_body(
        &app.next_id(),
        unix_now(),
        &result.model,
        Answer {
            text: &result.text,
            refusal: result.refusal.as_deref(),
            finish: result.finish_reason.as_ref(),
            usage: result.usage.as_ref(),
            tool_calls: &result.tool_calls,
        },
    ))
}

/// The answer to a request still waiting on a provider when the shutdown grace period ends.
pub(crate) fn shutting_down(
    request_id: &str,
    chain: &str,
    started: Instant,
    stream: bool,
) -> Response {
    let r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the gateway is shutting down; retry on another instance",
        None,
        Some("server_shutting_down"),
    );
    RequestLog::unanswered(request_id, chain, started, 503, stream).emit();
    r
}

/// The response, and the request's log line, when every provider failed.
pub(crate) fn failed(
    request_id: &str,
    chain: &str,
    f: &AllProvidersFailed,
    started: Instant,
    stream: bool,
) -> Response {
    let r = failure_response(f);
    RequestLog {
        attempts: &f.attempts,
        ..RequestLog::unanswered(request_id, chain, started, r.status().as_u16(), stream)
    }
    .emit();
    r
}

/// `s` cut to at most `max` characters (marked with `…`), for echoing client input in errors.
fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]).into(),
        None => s.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Body, Bytes, bounded, whole_body};

    #[test]
    fn a_count_header_is_its_decimal_digits() {
        for n in [0, 1, 9, 10, 11, 123, usize::MAX] {
            assert_eq!(super::count_value(n).to_str().unwrap(), n.to_string());
        }
    }

    #[test]
    fn json_is_any_case_with_any_parameters_and_nothing_else() {
        let check = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert("content-type", v.parse().unwrap());
            super::json_content_type(&h).is_ok()
        };
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            " application/json ",
        ] {
            assert!(check(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!check(bad), "{bad}");
        }
        assert!(super::json_content_type(&axum::http::HeaderMap::new()).is_err());
    }

    fn frames(parts: &[&'static str]) -> Body {
        let items: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        Body::from_stream(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_up_to_its_limit() {
        let one = Bytes::from_static(b"{\"model\":\"m\"}");
        let read = whole_body(Body::from(one.clone()), 64).await.unwrap();
        assert_eq!(read.as_ptr(), one.as_ptr(), "one frame is kept as it came");
        let read = whole_body(frames(&["ab", "", "cd", "e"]), 5).await.unwrap();
        assert_eq!(&read[..], b"abcde", "frames are joined in order");
        assert!(
            whole_body(frames(&["abc", "def"]), 5)
                .await
                .unwrap_err()
                .is_none()
        );
        // A declared length over the limit is refused before anything is read.
        assert!(
            whole_body(Body::from("x".repeat(6)), 5)
                .await
                .unwrap_err()
                .is_none()
        );
        assert_eq!(&whole_body(Body::empty(), 5).await.unwrap()[..], b"");
        let failing = Body::from_stream(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("connection reset")),
        ]));
        let e = whole_body(failing, 64).await.unwrap_err().unwrap();
        assert!(e.to_string().contains("connection reset"), "{e}");
    }

    #[test]
    fn echoed_input_is_bounded_on_a_char_boundary() {
        assert_eq!(bounded("short", 100), "short");
        let long = "é".repeat(150);
        let cut = bounded(&long, 100);
        assert_eq!(cut.chars().count(), 101);
        assert!(cut.ends_with('…'));
    }
}
