//! The live status page: `GET /status`, one self-contained HTML page (inline CSS and script,
//! nothing fetched from elsewhere) that polls `GET /v1/status` every two seconds. Both need a
//! client key (or the admin key) when client keys are configured, like `/metrics`; besides
//! `Authorization: Bearer`, they accept HTTP Basic with the key as the password, so a browser
//! asks for it and sends it on the page's own requests.

mod window;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::Access;
use crate::metrics::{ATTEMPT_OUTCOMES, ERROR_KINDS, Failover};
use crate::reload::Live;
use crate::server::authorize;

pub use window::{Delta, History, Sample, WINDOW};

/// The page, as shipped.
const PAGE: &str = include_str!("page.html");
/// Resources the page may use: only itself and `/v1/status`.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

#[derive(Clone)]
struct Status {
    live: Arc<Live>,
    history: Arc<History>,
}

/// The `/status` and `/v1/status` routes (their history lives as long as the server).
pub(crate) fn routes(live: &Arc<Live>) -> Router<Arc<Live>> {
    let status = Status {
        live: live.clone(),
        history: Arc::new(History::new(Sample::of(&live.app()))),
    };
    Router::new()
        .route("/status", get(page).with_state(status.clone()))
        .route("/v1/status", get(data).with_state(status))
}

/// `Authorization` values, with a Basic credential turned into the Bearer of its password.
fn credentials(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for v in headers.get_all(header::AUTHORIZATION) {
        let value = basic_password(v.as_bytes())
            .and_then(|p| HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &p].concat()).ok())
            .unwrap_or_else(|| v.clone());
        out.append(header::AUTHORIZATION, value);
    }
    out
}

/// The password of a `Basic` credential (RFC 7617); the user name is ignored.
fn basic_password(h: &[u8]) -> Option<Vec<u8>> {
    let (scheme, rest) = h.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// The refusal is a ready-made response, as in `server.rs`: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn check(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    authorize(app, &credentials(headers), Access::Monitor).map_err(|mut r| {
        if r.status() == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"backstop status\", charset=\"UTF-8\""),
            );
        }
        r
    })
}

async fn page(State(s): State<Status>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&s.live.app(), &headers) {
        return r;
    }
    let mut r = Response::new(Body::from(PAGE));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn data(State(s): State<Status>, headers: HeaderMap) -> Response {
    let app = s.live.app();
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let delta = s.history.advance(Sample::of(&app));
    let body = snapshot(&app, &delta, &app.metrics.failovers());
    let mut r = Response::new(Body::from(body.to_string()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A share in 0..=1, `None` without a denominator.
#[allow(clippy::cast_precision_loss)]
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Error kinds with a non-zero count, largest first.
fn mix(counts: &[u64; ERROR_KINDS.len()]) -> Value {
    let mut v: Vec<(&str, u64)> = ERROR_KINDS
        .iter()
        .copied()
        .zip(counts.iter().copied())
        .filter(|(_, n)| *n > 0)
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Value::Array(
        v.into_iter()
            .map(|(kind, count)| json!({"kind": kind, "count": count}))
            .collect(),
    )
}

/// What `/v1/status` answers: every chain and provider of the running config, with rates and
/// percentiles over `delta`'s window and the last failovers.
pub fn snapshot(app: &App, delta: &Delta, failovers: &[Failover]) -> Value {
    let chains: Vec<Value> = app
        .config
        .chains
        .iter()
        .map(|(name, c)| {
            let window = delta.chains.get(name).copied().unwrap_or_default();
            let total = app
                .chains
                .get(name)
                .map(|c| c.metrics.request_counts())
                .unwrap_or_default();
            let requests: u64 = window.iter().sum();
            json!({
                "name": name,
                "strategy": c.strategy.as_str(),
                "providers": c.providers.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
                "requests_per_s": delta.rate(requests),
                "fallback_rate": share(window[1], requests),
                "failure_rate": share(window[2], requests),
                "requests_total": total.iter().sum::<u64>(),
                "fallbacks_total": total[1],
                "failed_total": total[2],
            })
        })
        .collect();
    let providers: Vec<Value> = app
        .breakers
        .iter()
        .map(|b| {
            let s = b.snapshot();
            let name = b.name();
            let d = delta.providers.get(name).cloned().unwrap_or_default();
            let attempts: u64 = d.attempts.iter().sum();
            let made = attempts - d.attempts[skipped_index()];
            let config = app.config.providers.get(name);
            json!({
                "name": name,
                "kind": config.map(|p| p.kind.as_str()),
                "model": config.map(|p| p.model.as_str()),
                "state": s.state.as_str(),
                "until_half_open_ms": s.until_half_open.map(ms),
                "hold_remaining_ms": s.hold_remaining.map(ms),
                "failures_in_window": s.failures_in_window,
                "calls_in_window": s.calls_in_window,
                "failure_threshold": s.config.failure_threshold(),
                "reopens": s.reopens,
                "attempts_per_s": delta.rate(made),
                "failed_share": share(d.attempts[1], made),
                "latency_p50_ms": d.latency.quantile(0.5).map(|v| v * 1000.0),
                "latency_p99_ms": d.latency.quantile(0.99).map(|v| v * 1000.0),
                "errors": mix(&d.errors),
            })
        })
        .collect();
    json!({
        "window_s": delta.elapsed.as_secs_f64(),
        "chains": chains,
        "providers": providers,
        "failovers": failovers,
    })
}

fn skipped_index() -> usize {
    ATTEMPT_OUTCOMES
        .iter()
        .position(|o| *o == backstop::AttemptOutcome::Skipped)
        .unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_carry_the_key_as_the_password() {
        // "status:sk-1" and ":sk-1"
        assert_eq!(
            basic_password(b"Basic c3RhdHVzOnNrLTE="),
            Some(b"sk-1".to_vec())
        );
        assert_eq!(basic_password(b"basic OnNrLTE="), Some(b"sk-1".to_vec()));
        assert_eq!(basic_password(b"Bearer sk-1"), None);
        assert_eq!(basic_password(b"Basic !!!"), None);
        // "nocolon"
        assert_eq!(basic_password(b"Basic bm9jb2xvbg=="), None);
    }
}
