//! Breaker endpoints: the read-only list (monitoring) and the admin trip and reset; and the
//! admin config reload.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::auth::Access;
use crate::reload::{Live, ReloadError};
use crate::server::{Current, authorize, error};

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

pub(crate) async fn breakers(Current(app): Current, headers: HeaderMap) -> Response {
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
    Current(app): Current,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    admin_action(&app, &headers, &name, |b| b.trip())
}

pub(crate) async fn reset(
    Current(app): Current,
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

/// `POST /v1/admin/reload`: re-reads the config file. 200 with what changed (and the settings
/// that need a restart); otherwise the running config stays and the answer says why: 422 for
/// an invalid config (`file:line:col: key: message`), 500 for an unreadable file, 409 when
/// there is no file.
pub(crate) async fn reload(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&live.app(), &headers, Access::Admin) {
        return r;
    }
    let worker = live.clone();
    let result = match tokio::task::spawn_blocking(move || worker.reload()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "config reload task failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the reload did not complete; the running config stays",
                None,
                Some("reload_failed"),
            );
        }
    };
    match result {
        Ok(report) => {
            let mut body = serde_json::json!({"reloaded": true});
            if let (Some(obj), Ok(serde_json::Value::Object(r))) =
                (body.as_object_mut(), serde_json::to_value(&report))
            {
                obj.extend(r);
            }
            axum::Json(body).into_response()
        }
        Err(e) => reload_failure(&e),
    }
}

fn reload_failure(e: &ReloadError) -> Response {
    let status = match e {
        ReloadError::NoFile => StatusCode::CONFLICT,
        ReloadError::Config(crate::config::ConfigError::Read { .. }) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ReloadError::Config(_) | ReloadError::Build { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut err = serde_json::json!({
        "message": format!("config not reloaded, the running config stays: {e}"),
        "type": "invalid_request_error",
        "param": null,
        "code": e.code(),
    });
    if let (ReloadError::Config(c), Some(obj)) = (e, err.as_object_mut())
        && let Some(d) = c.diagnostic()
    {
        obj.insert("file".into(), d.origin.clone().into());
        obj.insert("line".into(), d.line.into());
        obj.insert("column".into(), d.column.into());
        obj.insert("key".into(), d.key_path.clone().into());
    }
    let mut r = axum::Json(serde_json::json!({"reloaded": false, "error": err})).into_response();
    *r.status_mut() = status;
    r
}
