//! `POST /v1/messages`: Anthropic's Messages API, served by the same chains as chat
//! completions. Keys come as `x-api-key` (Anthropic SDKs) or a bearer token; every error on
//! this route is in Anthropic's shape (`{"type":"error","error":{"type","message"}}`).

// Handlers return ready-made error responses through `Result`, as in `server`.
#![allow(clippy::result_large_err)]

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use tokio::time::Instant;

use crate::auth::Access;
use crate::messages_request::parse_messages_request;
use crate::messages_response;
use crate::request_id::RequestId;
use crate::server::{
    Shared, authorize, bad_request, json_content_type, limit_and_admit, read_body,
};
use crate::wire::BadRequest;

/// The Messages API version served.
const API_VERSION: &str = "2023-06-01";
/// Largest error body rewritten into Anthropic's shape (the gateway's own are far smaller).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The handler (called by the front for a `POST`).
pub(crate) async fn messages(app: Shared, id: RequestId, request: Request) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let (span, caller_trace) =
        crate::telemetry::http_span(&parts.headers, id.as_str(), "/v1/messages");
    // Anthropic clients send `x-api-key`; it counts as the bearer token when there is none.
    if !parts.headers.contains_key(header::AUTHORIZATION)
        && let Some(key) = parts.headers.get("x-api-key")
        && let Ok(bearer) = HeaderValue::from_bytes(&[b"Bearer ", key.as_bytes()].concat())
    {
        parts.headers.insert(header::AUTHORIZATION, bearer);
    }
    let mut response = match authorize(&app, &parts.headers, Access::Client)
        .and_then(|()| json_content_type(&parts.headers))
        .and_then(|()| api_headers(&parts.headers))
    {
        Err(r) => r,
        Ok(()) => match read_body(&app, body).await {
            Ok(bytes) => match parse_messages_request(&bytes) {
                Ok(req) => {
                    limit_and_admit(
                        &app,
                        &parts,
                        Box::new(req),
                        &id,
                        caller_trace,
                        &span,
                        started,
                    )
                    .await
                }
                Err(e) => bad_request(&e),
            },
            Err(r) => r,
        },
    };
    crate::telemetry::finish_http_span(&span, &mut response);
    app.metrics.http_status(response.status().as_u16());
    if response.status().is_success() {
        response
    } else {
        anthropic_error(response).await
    }
}

/// The API version served is `2023-06-01` (the header may be left out); beta features
/// (`anthropic-beta`) are not relayed, so a request asking for them is refused by name.
fn api_headers(headers: &HeaderMap) -> Result<(), Response> {
    let refuse = |param: &str, message: String| Err(bad_request(&BadRequest::new(param, message)));
    if let Some(v) = headers.get("anthropic-version")
        && v.as_bytes() != API_VERSION.as_bytes()
    {
        let got = String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(40)
            .collect::<String>();
        return refuse(
            "anthropic-version",
            format!("anthropic-version {got:?} is not served; backstop speaks {API_VERSION}"),
        );
    }
    if headers.contains_key("anthropic-beta") {
        return refuse(
            "anthropic-beta",
            "`anthropic-beta` is not supported by backstop (beta features are not relayed)"
                .to_owned(),
        );
    }
    Ok(())
}

/// The gateway's error response (OpenAI-shaped) in Anthropic's shape, status and headers kept
/// (`retry-after`, `x-should-retry`, `x-backstop-attempts`).
async fn anthropic_error(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let v = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
    let mut message = v["error"]["message"].as_str().map_or_else(
        || String::from_utf8_lossy(&bytes).into_owned(),
        str::to_owned,
    );
    // Anthropic's shape has no `param`: the message names the field instead.
    if let Some(param) = v["error"]["param"].as_str()
        && !message.contains(param)
    {
        message = format!("{param}: {message}");
    }
    let body = messages_response::error_body(parts.status.as_u16(), &message);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
