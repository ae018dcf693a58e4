//! The JSON control API under `/_sim/`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::Fault;
use crate::fault::Scope;
use crate::state::Shared;

/// `POST /_sim/faults` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultsBody {
    /// Clear existing faults first.
    #[serde(default)]
    pub replace: bool,
    /// Queued faults, each for the next `count` requests (FIFO).
    #[serde(default)]
    pub next: Vec<NextFault>,
    /// Random faults, each applied with probability `rate`.
    #[serde(default)]
    pub random: Vec<RandomFault>,
}

/// A queued fault.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NextFault {
    pub count: u32,
    pub fault: Fault,
}

/// A random fault.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RandomFault {
    pub rate: f64,
    pub fault: Fault,
    /// Which requests it applies to (`all`, `stream`, `non_stream`; default `all`).
    #[serde(default)]
    pub scope: Scope,
}

/// `POST /_sim/timing` body; absent fields are left unchanged.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingBody {
    latency_ms: Option<u64>,
    ttft_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    chunks: Option<usize>,
}

#[derive(Serialize)]
struct Timing {
    latency_ms: f64,
    ttft_ms: f64,
    chunk_delay_ms: f64,
}

#[derive(Serialize)]
struct Stats {
    requests: u64,
    faults_applied: u64,
    queued_faults: u64,
    next: Vec<NextFault>,
    random: Vec<RandomFault>,
    timing: Timing,
    chunks: usize,
    record: bool,
    recorded: usize,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/faults", post(post_faults).delete(delete_faults))
        .route("/_sim/timing", post(post_timing))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/requests", get(get_requests))
        .route("/_sim/reset", post(post_reset))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn bad_request(msg: String) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": msg })).unwrap_or_default();
    json_response(StatusCode::BAD_REQUEST, body)
}

fn stats(shared: &Shared) -> Response {
    let (queued, next, random) = shared.with_plan(|p| {
        let next = p
            .queue_entries()
            .map(|(count, fault)| NextFault {
                count: *count,
                fault: fault.clone(),
            })
            .collect();
        let random = p
            .random_entries()
            .iter()
            .map(|(fault, rate, scope)| RandomFault {
                rate: *rate,
                fault: fault.clone(),
                scope: *scope,
            })
            .collect();
        (p.queued(), next, random)
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let s = Stats {
        requests: shared.request_count(),
        faults_applied: shared.faults_applied(),
        queued_faults: queued,
        next,
        random,
        timing: Timing {
            latency_ms: ms(shared.latency()),
            ttft_ms: ms(shared.ttft()),
            chunk_delay_ms: ms(shared.chunk_delay()),
        },
        chunks: shared.chunks(),
        record: shared.records(),
        recorded: shared.recorded_len(),
    };
    json_response(StatusCode::OK, serde_json::to_vec(&s).unwrap_or_default())
}

/// Checks a faults body before anything is applied, so a bad one changes nothing.
pub(crate) fn validate_faults(body: &FaultsBody) -> Result<(), String> {
    for (i, n) in body.next.iter().enumerate() {
        if n.count == 0 {
            return Err(format!("next[{i}].count must be at least 1"));
        }
        n.fault
            .validate()
            .map_err(|e| format!("next[{i}].fault: {e}"))?;
    }
    for (i, r) in body.random.iter().enumerate() {
        if !(r.rate.is_finite() && (0.0..=1.0).contains(&r.rate)) {
            return Err(format!(
                "random[{i}].rate must be a number in 0..=1, got {}",
                r.rate
            ));
        }
        r.fault
            .validate()
            .map_err(|e| format!("random[{i}].fault: {e}"))?;
    }
    Ok(())
}

async fn post_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: FaultsBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("invalid /_sim/faults body: {e}")),
    };
    if let Err(e) = validate_faults(&body) {
        return bad_request(format!("invalid /_sim/faults body: {e}"));
    }
    shared.with_plan(|p| {
        if body.replace {
            p.clear();
        }
        for n in body.next {
            p.push_next(n.count, n.fault);
        }
        for r in body.random {
            p.push_random(r.fault, r.rate, r.scope);
        }
    });
    stats(&shared)
}

async fn delete_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.with_plan(crate::fault::FaultPlan::clear);
    stats(&shared)
}

async fn post_timing(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let t: TimingBody = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return bad_request(format!("invalid /_sim/timing body: {e}")),
    };
    if t.chunks == Some(0) {
        return bad_request("invalid /_sim/timing body: chunks must be at least 1".to_owned());
    }
    if let Some(ms) = t.latency_ms {
        shared.set_latency(Duration::from_millis(ms));
    }
    if let Some(ms) = t.ttft_ms {
        shared.set_ttft(Duration::from_millis(ms));
    }
    if let Some(ms) = t.chunk_delay_ms {
        shared.set_chunk_delay(Duration::from_millis(ms));
    }
    if let Some(n) = t.chunks {
        shared.set_chunks(n);
    }
    stats(&shared)
}

async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    stats(&shared)
}

async fn get_requests(State(shared): State<Arc<Shared>>) -> Response {
    let body = serde_json::to_vec(&shared.recorded()).unwrap_or_default();
    json_response(StatusCode::OK, body)
}

async fn post_reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    stats(&shared)
}
