//! `[server] key_limits`: requests and tokens per minute per client key, across the fleet
//! through one atomic Redis script (`limit.lua`, on Redis's clock), per process without
//! Redis or while it is unreachable (`[state] on_redis_error = "allow"`, the default).
//!
//! Tokens are reserved from the request's `max_tokens` (or `default_max_tokens`) and
//! reconciled with the usage the provider reports. A client is named in Redis and logs only
//! by a hash of its key ([`client_id`]).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::backend::Backend;
use super::bucket::LocalBuckets;
use crate::config::{KeyLimits, OnRedisError};

/// Key prefix of the limit hashes (versioned: replicas of another version keep their own).
const PREFIX: &str = "backstop:v1:limit:";

/// Where a request's reservation was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Fleet,
    Local,
}

/// Enforces key limits; one per gateway, shared across reloads.
pub struct KeyLimiter {
    local: LocalBuckets,
    fleet: Option<(Arc<Backend>, OnRedisError)>,
    script: redis::Script,
}

impl std::fmt::Debug for KeyLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLimiter")
            .field("fleet", &self.fleet.is_some())
            .finish_non_exhaustive()
    }
}

/// Tokens taken for one admitted request, to reconcile once its usage is known.
#[derive(Debug)]
pub struct Reservation {
    limiter: Arc<KeyLimiter>,
    limits: KeyLimits,
    client: String,
    tokens: u64,
    store: Store,
}

/// Why a request was refused.
enum Refusal {
    Limited(Duration),
    Unavailable,
}

impl KeyLimiter {
    /// Per-process limits only.
    pub fn local() -> Arc<Self> {
        Self::new(None)
    }

    pub(crate) fn new(fleet: Option<(Arc<Backend>, OnRedisError)>) -> Arc<Self> {
        Arc::new(Self {
            local: LocalBuckets::default(),
            fleet,
            script: redis::Script::new(include_str!("limit.lua")),
        })
    }

    /// Admits a request of `client` asking for up to `max_tokens`, or the 429 (503 when
    /// Redis is unreachable and `on_redis_error = "deny"`) to answer instead.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        limits: &KeyLimits,
        client: String,
        max_tokens: Option<u32>,
    ) -> Result<Reservation, Response> {
        let tokens = match limits.tokens_per_minute {
            Some(_) => max_tokens.map_or(limits.default_max_tokens, u64::from),
            None => 0,
        };
        let store = match self.try_admit(limits, &client, tokens).await {
            Ok(store) => store,
            Err(Refusal::Limited(wait)) => return Err(limited(limits, wait)),
            Err(Refusal::Unavailable) => {
                return Err(crate::server::overloaded(
                    "key limits cannot be checked: the fleet state backend is unreachable \
                     (state.on_redis_error = \"deny\"); retry shortly",
                    "state_backend_unavailable",
                ));
            }
        };
        Ok(Reservation {
            limiter: self.clone(),
            limits: *limits,
            client,
            tokens,
            store,
        })
    }

    async fn try_admit(
        &self,
        limits: &KeyLimits,
        client: &str,
        tokens: u64,
    ) -> Result<Store, Refusal> {
        if let Some((backend, on_error)) = &self.fleet {
            // While Redis is down the request path does not wait on it: the state task's
            // periodic calls find it back.
            if backend.is_up() {
                match self
                    .run(backend, limits, client, "admit", tokens_arg(tokens))
                    .await
                {
                    Some((1, _)) => return Ok(Store::Fleet),
                    Some((_, wait_ms)) => {
                        return Err(Refusal::Limited(Duration::from_millis(
                            wait_ms.max(1).unsigned_abs(),
                        )));
                    }
                    None => {}
                }
            }
            if *on_error == OnRedisError::Deny {
                return Err(Refusal::Unavailable);
            }
        }
        self.local
            .admit(limits, client, tokens)
            .map(|()| Store::Local)
            .map_err(Refusal::Limited)
    }

    /// One script call; `None` when Redis gave no answer in time.
    async fn run(
        &self,
        backend: &Backend,
        limits: &KeyLimits,
        client: &str,
        op: &str,
        amount: i64,
    ) -> Option<(i64, i64)> {
        let key = format!("{PREFIX}{client}");
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(key)
            .arg(limits.requests_per_minute.unwrap_or(0))
            .arg(limits.tokens_per_minute.unwrap_or(0))
            .arg(op)
            .arg(amount);
        backend
            .call(|mut c| async move { invocation.invoke_async::<(i64, i64)>(&mut c).await })
            .await
            .ok()
    }
}

fn tokens_arg(tokens: u64) -> i64 {
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

impl Reservation {
    /// Reconciles the reserved tokens with the `used` ones (`None`: nothing was used, as
    /// when every provider failed). Awaited before the answer goes out, so the client's next
    /// request sees it; bounded by the Redis budget and skipped while Redis is down.
    pub(crate) async fn settle(self, used: Option<u64>) {
        if self.limits.tokens_per_minute.is_none() {
            return;
        }
        let back = tokens_arg(self.tokens).saturating_sub(tokens_arg(used.unwrap_or(0)));
        if back == 0 {
            return;
        }
        match (self.store, &self.limiter.fleet) {
            (Store::Fleet, Some((backend, _))) if backend.is_up() => {
                self.limiter
                    .run(backend, &self.limits, &self.client, "adjust", back)
                    .await;
            }
            (Store::Fleet, _) => {}
            (Store::Local, _) => self.limiter.local.adjust(&self.limits, &self.client, back),
        }
    }
}

/// 429 in OpenAI's shape, with `Retry-After` in whole seconds (at least 1).
fn limited(limits: &KeyLimits, wait: Duration) -> Response {
    let (kind, message) = match limits.requests_per_minute {
        Some(n) if limits.tokens_per_minute.is_none() => (
            "requests",
            format!(
                "rate limit reached for requests: limit {n} per minute for this key (server.key_limits)"
            ),
        ),
        _ => (
            "tokens",
            "rate limit reached for this key's requests or tokens per minute (server.key_limits)"
                .to_owned(),
        ),
    };
    let mut r = crate::server::error(
        StatusCode::TOO_MANY_REQUESTS,
        kind,
        &message,
        None,
        Some("rate_limit_exceeded"),
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The client's identity for limits: a hash of its (already checked) bearer key, never the
/// key itself; `anonymous` when the gateway has no client keys (all callers share one limit).
pub(crate) fn client_id(headers: &HeaderMap, keys_required: bool) -> String {
    let key = headers
        .get(header::AUTHORIZATION)
        .filter(|_| keys_required)
        .and_then(|v| crate::auth::bearer(v.as_bytes()));
    match key {
        Some(k) => {
            let mut h = sha1_smol::Sha1::new();
            h.update(b"backstop:v1:client:");
            h.update(k);
            let hex = h.digest().to_string();
            format!("k{}", &hex[..24])
        }
        None => "anonymous".to_owned(),
    }
}

/// `server.key_limits` for one request reserving up to `max_tokens` (`None`:
/// `default_max_tokens`; embeddings reserve 0 and are charged their usage): `Ok(None)` when
/// no limits are configured, the reservation to settle when admitted, the refusal otherwise.
pub(crate) async fn check(
    app: &crate::app::App,
    headers: &HeaderMap,
    max_tokens: Option<u32>,
) -> Result<Option<Reservation>, Response> {
    let Some(limits) = app.config.server.key_limits else {
        return Ok(None);
    };
    let client = client_id(headers, app.keys.clients_required());
    app.key_limiter
        .admit(&limits, client, max_tokens)
        .await
        .map(Some)
        .inspect_err(|_| app.metrics.key_limited())
}
