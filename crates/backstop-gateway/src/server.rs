//! The HTTP surface: OpenAI-compatible chat completions, models, health, metrics and breaker admin.

// Handlers return ready-made error responses through `Result`; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use backstop::{AllProvidersFailed, Attempt, ErrorKind, FallbackStream};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::app::App;
use crate::auth::Caller;
use crate::wire::{self, BadRequest, ChunkEncoder, GatewayRequest};

type Shared = Arc<App>;

/// The gateway's routes.
pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/v1/breakers", get(breakers))
        .route("/v1/breakers/{name}/trip", post(trip))
        .route("/v1/breakers/{name}/reset", post(reset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
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

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "missing or invalid API key: send `Authorization: Bearer <key>`",
        None,
        Some("invalid_api_key"),
    )
}

fn authorize(app: &App, headers: &HeaderMap, admin: bool) -> Result<Caller, Response> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next().map(HeaderValue::as_bytes);
    // Several Authorization headers are ambiguous (a proxy in front may read another one than
    // we do): treat them as no valid key.
    let presented = if values.next().is_some() {
        Some(&b""[..])
    } else {
        first
    };
    let caller = app.keys.caller(presented);
    match (caller, admin) {
        (Caller::Unknown, _) => Err(unauthorized()),
        (Caller::Admin, _) | (Caller::Client, false) => Ok(caller),
        (Caller::Client, true) if !app.keys.has_admin() => Err(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "admin endpoints are disabled: set server.admin_key_env",
            None,
            None,
        )),
        (Caller::Client, true) => Err(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "this endpoint needs the admin key",
            None,
            None,
        )),
    }
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
async fn readyz(State(app): State<Shared>) -> Response {
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

async fn metrics(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return r;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn models(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return r;
    }
    let data: Vec<serde_json::Value> = app
        .chain_names
        .iter()
        .map(|c| serde_json::json!({"id": c, "object": "model", "created": 0, "owned_by": "backstop"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

fn breaker_json(s: &backstop::BreakerSnapshot) -> serde_json::Value {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mode = match s.config.mode {
        backstop::BreakerMode::Count { failure_threshold } => serde_json::json!({
            "kind": "count",
            "failure_threshold": failure_threshold,
        }),
        backstop::BreakerMode::Rate {
            failure_rate,
            minimum_calls,
            outage_failures,
            outage_time,
        } => serde_json::json!({
            "kind": "rate",
            "failure_rate": failure_rate,
            "minimum_calls": minimum_calls,
            "outage_failures": outage_failures,
            "outage_time_ms": ms(outage_time),
        }),
        _ => serde_json::json!({"kind": s.config.mode.as_str()}),
    };
    serde_json::json!({
        "name": s.name,
        "state": s.state.as_str(),
        "failures_in_window": s.failures_in_window,
        "calls_in_window": s.calls_in_window,
        "until_half_open_ms": s.until_half_open.map(ms),
        "hold_remaining_ms": s.hold_remaining.map(ms),
        "reopens": s.reopens,
        "mode": mode,
        "failure_threshold": s.config.failure_threshold(),
        "window_ms": ms(s.config.window),
        "recovery_timeout_ms": ms(s.config.recovery_timeout),
        "max_recovery_timeout_ms": ms(s.config.max_recovery_timeout),
        "half_open_probes": s.config.half_open_probes,
        "hold_max_ms": ms(s.config.hold.max),
    })
}

async fn breakers(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return r;
    }
    let list: Vec<serde_json::Value> = app
        .breakers
        .iter()
        .map(|b| breaker_json(&b.snapshot()))
        .collect();
    axum::Json(serde_json::json!({"breakers": list})).into_response()
}

async fn trip(State(app): State<Shared>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    admin_action(&app, &headers, &name, |b| b.trip())
}

async fn reset(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    admin_action(&app, &headers, &name, |b| b.reset())
}

fn admin_action(
    app: &App,
    headers: &HeaderMap,
    name: &str,
    act: impl Fn(&backstop::CircuitBreaker),
) -> Response {
    if let Err(r) = authorize(app, headers, true) {
        return r;
    }
    match app.breaker(name) {
        Some(b) => {
            act(b);
            tracing::info!(breaker = name, "breaker changed by admin request");
            axum::Json(breaker_json(&b.snapshot())).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("no breaker named {name:?}"),
            None,
            None,
        ),
    }
}

/// Reads the body up to the configured limit and time.
async fn read_body(app: &App, body: Body) -> Result<Bytes, Response> {
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
        let mut body = body;
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("could not read request body: {e}"),
                    None,
                    None,
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
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

fn bad_request(e: &BadRequest) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &e.message,
        e.param.as_deref(),
        None,
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn attempt_headers(r: &mut Response, provider: Option<&str>, attempts: &[Attempt]) {
    let h = r.headers_mut();
    if let Some(p) = provider.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert("x-backstop-provider", p);
    }
    h.insert("x-backstop-attempts", HeaderValue::from(attempts.len()));
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
        _ => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            "all_providers_failed",
        ),
    }
}

/// The error response of a request every provider failed. Clients are told when retrying
/// cannot help (`x-should-retry: false`: the chain already retried or moved on, the deadline
/// passed, or no provider takes calls yet) and, for 429/503, when a provider will take calls
/// again: `retry-after-ms` to the millisecond, `Retry-After` in whole seconds rounded down.
fn failure_response(f: &AllProvidersFailed) -> Response {
    let (status, kind, code) = failure_status(f);
    let mut r = error(status, kind, &f.to_string(), None, Some(code));
    let hint = match f.summary_kind() {
        ErrorKind::RateLimited { retry_after } => f.retry_after.or(retry_after),
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
    if f.retried() || f.deadline_exceeded || f.retry_after.is_some() {
        h.insert("x-should-retry", HeaderValue::from_static("false"));
    }
    attempt_headers(&mut r, None, &f.attempts);
    r
}

fn log_request(
    chain: &str,
    provider: Option<&str>,
    attempts: usize,
    started: Instant,
    status: u16,
    stream: bool,
) {
    tracing::info!(
        target: "backstop::request",
        chain,
        provider_used = provider.unwrap_or("-"),
        attempts,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        status,
        stream,
        "request"
    );
}

async fn chat_completions(State(app): State<Shared>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    if let Err(r) = authorize(&app, &parts.headers, false) {
        app.metrics.http_status(r.status().as_u16());
        return r;
    }
    let response = match read_body(&app, body).await {
        Ok(bytes) => match wire::parse_request(&bytes) {
            Ok(req) => answer(&app, req, started).await,
            Err(e) => bad_request(&e),
        },
        Err(r) => r,
    };
    app.metrics.http_status(response.status().as_u16());
    response
}

async fn answer(app: &Shared, req: GatewayRequest, started: Instant) -> Response {
    let Some(chain) = app.chains.get(&req.chain) else {
        let known = app.chain_names.join(", ");
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!(
                "the model `{}` does not exist; this gateway serves: {known}",
                bounded(&req.chain, 100)
            ),
            Some("model"),
            Some("model_not_found"),
        );
    };
    if req.stream {
        return match chain.stream_request(&req.request).await {
            Ok(stream) => stream_response(app.clone(), req, stream, started),
            Err(f) => failed(&req.chain, &f, started, true),
        };
    }
    match chain.generate_request(&req.request).await {
        Ok(result) => {
            if let Some(u) = &result.usage {
                app.metrics
                    .tokens(&result.provider_used, u.input_tokens, u.output_tokens);
            }
            let body = wire::completion_body(
                &app.next_id(),
                unix_now(),
                &result.model,
                &result.text,
                result.finish_reason.as_ref(),
                result.usage.as_ref(),
            );
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            attempt_headers(&mut r, Some(&result.provider_used), &result.attempts);
            log_request(
                &req.chain,
                Some(&result.provider_used),
                result.attempts.len(),
                started,
                200,
                false,
            );
            r
        }
        Err(f) => failed(&req.chain, &f, started, false),
    }
}

/// The response, and the request's log line, when every provider failed.
fn failed(chain: &str, f: &AllProvidersFailed, started: Instant, stream: bool) -> Response {
    let r = failure_response(f);
    log_request(
        chain,
        None,
        f.attempts.len(),
        started,
        r.status().as_u16(),
        stream,
    );
    r
}

/// Everything a streamed response needs between chunks.
struct StreamState {
    stream: Option<FallbackStream>,
    encoder: ChunkEncoder,
    first: Option<Bytes>,
    app: Shared,
    chain: String,
    provider: String,
    attempts: usize,
    started: Instant,
}

impl StreamState {
    /// The next SSE bytes: content events, then the finish events and `[DONE]`, or one
    /// OpenAI-shaped error event if the committed stream fails.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let stream = self.stream.as_mut()?;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    let event = self.encoder.chunk(&chunk);
                    if !event.is_empty() {
                        return Some(Bytes::from(event));
                    }
                }
                Some(Err(e)) => {
                    self.stream = None;
                    log_request(
                        &self.chain,
                        Some(&self.provider),
                        self.attempts,
                        self.started,
                        200,
                        true,
                    );
                    tracing::warn!(chain = %self.chain, provider = %self.provider, error = %e, "stream failed after it started");
                    let message = format!("{}: {e}", self.provider);
                    return Some(Bytes::from(wire::error_event(
                        &message,
                        "server_error",
                        Some(e.kind.as_str()),
                    )));
                }
                None => {
                    self.stream = None;
                    if let Some(u) = self.encoder.usage() {
                        self.app
                            .metrics
                            .tokens(&self.provider, u.input_tokens, u.output_tokens);
                    }
                    log_request(
                        &self.chain,
                        Some(&self.provider),
                        self.attempts,
                        self.started,
                        200,
                        true,
                    );
                    return Some(Bytes::from(self.encoder.finish()));
                }
            }
        }
    }
}

/// The SSE response of a committed stream: role event, content chunks, then either the
/// finish events and `[DONE]`, or one error event (never a silent truncation).
fn stream_response(
    app: Shared,
    req: GatewayRequest,
    stream: FallbackStream,
    started: Instant,
) -> Response {
    let provider = stream.provider_used().to_owned();
    let model = stream.model().unwrap_or(&provider).to_owned();
    let encoder = ChunkEncoder::new(&app.next_id(), unix_now(), &model, req.include_usage);
    let mut r = Response::new(Body::empty());
    attempt_headers(&mut r, Some(&provider), stream.attempts());
    let state = StreamState {
        first: Some(Bytes::from(encoder.role())),
        attempts: stream.attempts().len(),
        stream: Some(stream),
        encoder,
        app,
        chain: req.chain,
        provider,
        started,
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        let bytes = state.next().await?;
        Some((Ok::<Bytes, Infallible>(bytes), state))
    });
    *r.body_mut() = Body::from_stream(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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
    use super::bounded;

    #[test]
    fn echoed_input_is_bounded_on_a_char_boundary() {
        assert_eq!(bounded("short", 100), "short");
        let long = "é".repeat(150);
        let cut = bounded(&long, 100);
        assert_eq!(cut.chars().count(), 101);
        assert!(cut.ends_with('…'));
    }
}
