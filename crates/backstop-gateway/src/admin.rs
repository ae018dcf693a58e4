//! Breaker endpoints: the read-only list (monitoring) and the admin trip and reset.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::auth::Access;
use crate::server::{Shared, authorize, error};

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

pub(crate) async fn breakers(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, Access::Monitor) {
        return r;
    }
    let list: Vec<serde_json::Value> = app
        .breakers
        .iter()
        .map(|b| breaker_json(&b.snapshot()))
        .collect();
    axum::Json(serde_json::json!({"breakers": list})).into_response()
}

pub(crate) async fn trip(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    admin_action(&app, &headers, &name, |b| b.trip())
}

pub(crate) async fn reset(
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
    if let Err(r) = authorize(app, headers, Access::Admin) {
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
