//! The Redis connection: one reconnecting connection manager, every call under a small time
//! budget, and the backend's up/down state (logged once per transition, exported as
//! `backstop_state_backend_up`).
//!
//! The manager connects lazily and reconnects with jittered exponential backoff after a
//! failure, so a Redis that is down at start-up is joined when it appears: the periodic
//! re-read ([`super::breakers`]) keeps calling, which drives the reconnection.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::metrics::Metrics;

/// Why a Redis call gave no answer (no URL or password in it: safe to log).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallError {
    /// The call did not finish within the budget.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error, or the connection failed.
    #[error("{0}")]
    Redis(String),
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The shared connection to Redis.
pub(crate) struct Backend {
    client: redis::Client,
    manager: ConnectionManager,
    budget: Duration,
    state: AtomicU8,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client: its connection info holds the password.
        f.debug_struct("Backend")
            .field("budget", &self.budget)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend for `url`; connects lazily (needs a tokio runtime).
    pub(crate) fn new(
        url: &str,
        budget: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        metrics.state_backend_up(false);
        Ok(Self {
            client,
            manager,
            budget,
            state: AtomicU8::new(UNKNOWN),
            metrics,
        })
    }

    /// The client, for connections of their own (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// True when the last call succeeded.
    pub(crate) fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == UP
    }

    /// Runs `call` on the shared connection within the budget, recording up or down.
    pub(crate) async fn call<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(self.budget, call(self.manager.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Redis(describe(&e))),
            Err(_) => Err(CallError::Timeout(self.budget)),
        };
        match &result {
            Ok(_) => self.mark(UP, None),
            Err(e) => self.mark(DOWN, Some(e)),
        }
        result
    }

    /// Records the backend's state; logs and sets the gauge only when it changes.
    fn mark(&self, next: u8, why: Option<&CallError>) {
        let before = self.state.swap(next, Ordering::AcqRel);
        if before == next {
            return;
        }
        self.metrics.state_backend_up(next == UP);
        match (before, why) {
            (_, None) => tracing::info!("fleet state: Redis reachable, sharing state"),
            (UNKNOWN, Some(e)) => tracing::warn!(
                error = %e,
                "fleet state: Redis unreachable at start-up; serving on local state, retrying"
            ),
            (_, Some(e)) => tracing::warn!(
                error = %e,
                "fleet state: Redis lost; serving on local state, reconnecting"
            ),
        }
    }
}

/// A Redis error without anything from the URL: its category and the server's message.
fn describe(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".to_owned()
    } else {
        format!("{:?}", e.kind())
    }
}
