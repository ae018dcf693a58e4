//! `POST /v1/embeddings` in OpenAI's shape: a deterministic vector per input text (of the
//! request's `dimensions`, else the simulator's declared size), with the non-streaming faults.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use serde::Deserialize;

use crate::server::{JSON, error_response, plain};
use crate::state::Shared;
use crate::wire::{self, ErrorSpec, Flavor};
use crate::{Fault, RecordedRequest};

/// Largest embeddings request body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Most inputs in one request (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

#[derive(Deserialize)]
struct WireEmbeddingRequest {
    #[serde(default)]
    model: Option<String>,
    input: Input,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(default)]
    encoding_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

/// The vector the simulator gives `text` as `provider`: `size` numbers in [-1, 1), different
/// per provider and text, the same on every run.
pub fn embedding_vector(provider: &str, text: &str, size: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in provider.bytes().chain([0]).chain(text.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..size)
        .map(|_| {
            h = h
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((h >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

pub(crate) async fn route(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let flavor = Flavor::OpenAi;
    let n = shared.count_request();
    let request_id = format!("req_sim_{n}");
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return error_response(flavor, &wire::status_error(flavor, 413, ""), &request_id);
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let parsed = serde_json::from_slice::<WireEmbeddingRequest>(&bytes);
    let fault = parsed.as_ref().ok().and_then(|_| shared.next_fault(false));
    if shared.records() {
        shared.push_record(RecordedRequest {
            path: parts.uri.path().to_owned(),
            request_id: request_id.clone(),
            headers: crate::server::header_pairs(&parts.headers),
            body: value,
            stream: false,
            model: parsed.as_ref().ok().and_then(|w| w.model.clone()),
            fault: fault.clone(),
            peer: crate::server::peer(&parts),
        });
    }
    let req = match parsed {
        Ok(r) => r,
        Err(e) => return invalid(&request_id, None, format!("invalid embeddings body: {e}")),
    };
    let texts = match req.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS || texts.iter().any(String::is_empty) {
        return invalid(
            &request_id,
            Some("input"),
            format!("input must be 1 to {MAX_INPUTS} non-empty strings"),
        );
    }
    if let Some(f) = req.encoding_format.as_deref()
        && f != "float"
        && f != "base64"
    {
        return invalid(
            &request_id,
            Some("encoding_format"),
            format!("unknown encoding_format {f:?}"),
        );
    }
    let model = req.model.unwrap_or_else(|| "text-embedding-sim".to_owned());
    let mut wait = shared.latency();
    match fault {
        Some(Fault::Hang) => {
            shared.shutdown_signal().await;
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "backstop-sim shutting down",
            );
        }
        Some(Fault::Latency(d)) => wait = wait.saturating_add(d),
        Some(Fault::Status(s) | Fault::InBandError { status: s, .. }) => {
            return error_response(flavor, &wire::status_error(flavor, s, &model), &request_id);
        }
        Some(Fault::RateLimited {
            retry_after_secs,
            retry_after_ms,
            ..
        }) => {
            let mut resp = error_response(
                flavor,
                &wire::status_error(flavor, 429, &model),
                &request_id,
            );
            let h = resp.headers_mut();
            if let Some(Ok(v)) = retry_after_secs.map(|s| s.to_string().parse()) {
                h.insert("retry-after", v);
            }
            if let Some(Ok(v)) = retry_after_ms.map(|s| s.to_string().parse()) {
                h.insert("retry-after-ms", v);
            }
            return resp;
        }
        Some(Fault::MalformedBody | Fault::MalformedChunk { .. } | Fault::GarbledEvent { .. }) => {
            return json(b"<html><body>502 Bad Gateway</body></html>".to_vec());
        }
        _ => {}
    }
    if !shared.sleep(wait).await {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "backstop-sim shutting down",
        );
    }
    let size = req
        .dimensions
        .unwrap_or_else(|| shared.embedding_dimensions());
    let tokens: usize = texts
        .iter()
        .map(|t| t.split_whitespace().count().max(1))
        .sum();
    let data: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({
                "object": "embedding",
                "index": i,
                "embedding": embedding_vector(flavor.name(), t, size),
            })
        })
        .collect();
    let body = serde_json::json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    json(serde_json::to_vec(&body).unwrap_or_default())
}

fn json(bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(CONTENT_TYPE, JSON);
    resp
}

fn invalid(request_id: &str, param: Option<&'static str>, message: String) -> Response {
    let err = ErrorSpec {
        status: 400,
        kind: "invalid_request_error",
        code: None,
        param,
        message: message.into(),
    };
    error_response(Flavor::OpenAi, &err, request_id)
}
