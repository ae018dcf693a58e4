//! `POST /v1/embeddings` in OpenAI's shape, served by a chain of embeddings providers (those
//! that declare `dimensions`) with the chat chains' breakers, holds, retries and deadlines.

// Handlers return early with a ready response; boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use tokio::time::Instant;
use tracing::Instrument as _;

use backstop::{EmbeddingRequest, EmbeddingResult, Provider as _};

use crate::app::App;
use crate::auth::Access;
use crate::request_id::RequestId;
use crate::request_log::RequestLog;
use crate::server::{
    Shared, attempt_headers, authorize, error, failed, in_flight_slot, json_content_type,
    read_body, shutting_down, unknown_model,
};

/// Most texts in one request (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    model: String,
    input: Input,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    encoding_format: Option<Encoding>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<serde_json::Value>),
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    Float,
    Base64,
}

/// A request the client got wrong: the message and the parameter.
struct Invalid(String, Option<&'static str>);

/// The library request, the chain's name and the encoding the client wants.
fn parse(bytes: &[u8]) -> Result<(String, EmbeddingRequest, Encoding), Invalid> {
    let wire: WireRequest = backstop::providers::from_json_body(bytes)
        .map_err(|e| Invalid(format!("invalid embeddings request: {e}"), None))?;
    let texts = match wire.input {
        Input::One(s) => vec![s],
        Input::Many(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(Invalid(
                    format!(
                        "input[{i}] is not a string: token-id input is not supported, send the \
                         text"
                    ),
                    Some("input"),
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(Invalid(
            format!(
                "input must hold 1 to {MAX_INPUTS} texts, got {}",
                texts.len()
            ),
            Some("input"),
        ));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(Invalid(format!("input[{i}] is empty"), Some("input")));
    }
    if wire.dimensions == Some(0) {
        return Err(Invalid(
            "dimensions must be at least 1".to_owned(),
            Some("dimensions"),
        ));
    }
    let mut request = EmbeddingRequest::new(texts);
    request.dimensions = wire.dimensions;
    request.user = wire.user;
    Ok((
        wire.model,
        request,
        wire.encoding_format.unwrap_or(Encoding::Float),
    ))
}

/// The handler (called by the front for a `POST`).
pub(crate) async fn embeddings(app: Shared, id: RequestId, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (span, caller_trace) =
        crate::telemetry::http_span(&parts.headers, id.as_str(), "/v1/embeddings");
    let mut response = match authorize(&app, &parts.headers, Access::Client)
        .and_then(|()| json_content_type(&parts.headers))
    {
        Err(r) => r,
        Ok(()) => match read_body(&app, body).await {
            Err(r) => r,
            Ok(bytes) => match parse(&bytes) {
                Err(Invalid(message, param)) => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &message,
                    param,
                    None,
                ),
                Ok((chain, mut req, encoding)) => {
                    // Key limits: one request, its tokens charged from the usage afterwards.
                    match Box::pin(crate::state::key_limits::check(
                        &app,
                        &parts.headers,
                        Some(0),
                    ))
                    .await
                    {
                        Err(r) => r,
                        Ok(reserved) => match in_flight_slot(&app) {
                            Err(r) => r,
                            Ok(_slot) => {
                                req.request_id = Some(id.as_str().to_owned());
                                req.traceparent = caller_trace.map(|t| t.to_string());
                                Box::pin(answer(&app, &chain, &req, encoding, started, reserved))
                                    .instrument(span.clone())
                                    .await
                            }
                        },
                    }
                }
            },
        },
    };
    crate::telemetry::finish_http_span(&span, &mut response);
    app.metrics.http_status(response.status().as_u16());
    response
}

async fn answer(
    app: &App,
    name: &str,
    req: &EmbeddingRequest,
    encoding: Encoding,
    started: Instant,
    reserved: Option<crate::state::key_limits::Reservation>,
) -> Response {
    let Some(chain) = app.chains.get(name) else {
        return unknown_model(app, name);
    };
    if chain.check_embeddings(req).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!(
                "the model `{name}` is a chat chain: embeddings need a chain of providers that \
                 declare `dimensions`"
            ),
            Some("model"),
            Some("model_not_embeddings"),
        );
    }
    let id = req.request_id.as_deref().unwrap_or("-");
    let mut stopping = app.stopping.subscribe();
    let result = tokio::select! {
        r = chain.embed(req) => r,
        _ = stopping.wait_for(|s| *s) => return shutting_down(id, name, started, false),
    };
    if let Some(reserved) = reserved {
        let used = result.as_ref().ok().and_then(|r| r.embeddings.usage);
        reserved
            .settle(used.map(|u| u64::from(u.prompt_tokens)))
            .await;
    }
    match result {
        Err(f) => failed(id, name, &f, started, false),
        Ok(result) => {
            if let Some(u) = result.embeddings.usage {
                chain
                    .metrics
                    .tokens(&result.provider_used, u.prompt_tokens, 0);
            }
            let mut r = Response::new(Body::from(body(&result, encoding)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            attempt_headers(&mut r, Some(&result.provider_used), &result.attempts);
            RequestLog {
                request_id: id,
                chain: name,
                provider: Some(&result.provider_used),
                attempts: &result.attempts,
                started,
                status: 200,
                stream: false,
                finish_reason: None,
                resumed: &[],
            }
            .emit();
            r
        }
    }
}

/// OpenAI's list of embedding objects; base64 is the vector's little-endian f32 bytes.
fn body(result: &EmbeddingResult, encoding: Encoding) -> Vec<u8> {
    let data: Vec<serde_json::Value> = result
        .embeddings
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = match encoding {
                Encoding::Float => serde_json::json!(v),
                Encoding::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    serde_json::json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let usage = result.embeddings.usage.unwrap_or_default();
    let body = serde_json::json!({
        "object": "list",
        "data": data,
        "model": result.embeddings.model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn string_or_array_input_with_the_optional_fields() {
        let (chain, r, enc) = parse(br#"{"model":"emb","input":"one"}"#).unwrap_or_else(|_| {
            unreachable!("valid request");
        });
        assert_eq!(
            (chain.as_str(), r.input.as_slice()),
            ("emb", ["one".to_owned()].as_slice())
        );
        assert!(enc == Encoding::Float);
        let Ok((_, r, enc)) = parse(
            br#"{"model":"emb","input":["a","b"],"dimensions":64,"encoding_format":"base64","user":"u"}"#,
        ) else {
            unreachable!("valid request");
        };
        assert_eq!(r.input, ["a", "b"]);
        assert_eq!((r.dimensions, r.user.as_deref()), (Some(64), Some("u")));
        assert!(enc == Encoding::Base64);
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let cases: [(&[u8], &str, Option<&str>); 7] = [
            (
                br#"{"model":"e","input":[1,2,3]}"#,
                "token-id input is not supported",
                Some("input"),
            ),
            (
                br#"{"model":"e","input":[]}"#,
                "1 to 2048 texts, got 0",
                Some("input"),
            ),
            (
                br#"{"model":"e","input":["a",""]}"#,
                "input[1] is empty",
                Some("input"),
            ),
            (
                br#"{"model":"e","input":"a","dimensions":0}"#,
                "at least 1",
                Some("dimensions"),
            ),
            (
                br#"{"model":"e","input":"a","encoding_format":"int8"}"#,
                "unknown variant `int8`",
                None,
            ),
            (
                br#"{"model":"e","input":"a","truncate":true}"#,
                "unknown field `truncate`",
                None,
            ),
            (br#"{"input":"a"}"#, "missing field `model`", None),
        ];
        for (body, says, param) in cases {
            let Err(Invalid(message, p)) = parse(body) else {
                unreachable!("{} should be refused", String::from_utf8_lossy(body));
            };
            assert!(message.contains(says), "{message:?} should say {says:?}");
            assert_eq!(p, param, "{message}");
        }
    }
}
