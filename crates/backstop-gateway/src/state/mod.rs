//! Fleet state on Redis (`[state]`): breaker openings and rate-limit holds shared across
//! replicas ([`breakers`]), key limits across the fleet ([`key_limits`]), over one
//! reconnecting connection with a time budget per call ([`backend`]). Redis is never what
//! takes the gateway down: without it every replica serves on its own state.
//!
//! Keys, the channel and the scripts carry `backstop:v1:`, so replicas of two versions can
//! run side by side during a rolling upgrade without reading each other's data.

mod backend;
pub mod breakers;
mod bucket;
pub mod key_limits;
mod tee;

use std::sync::Arc;

use backstop::{CircuitBreaker, Observer};

use crate::config::StateConfig;
use crate::metrics::Metrics;
use backend::Backend;
use breakers::BreakerShare;
pub use key_limits::KeyLimiter;
pub(crate) use tee::Tee;

/// A `[state]` section that cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The variable naming the URL is unset or empty.
    #[error("state.redis_url_env: environment variable {0} is not set (it holds the Redis URL)")]
    MissingUrl(String),
    /// The URL does not parse (the URL itself is not repeated: it may hold a password).
    #[error(
        "state.redis_url_env: the URL in {var} is not a Redis URL ({reason}); expected \
         redis://[:password@]host:port[/db] or rediss://..."
    )]
    BadUrl {
        /// The variable.
        var: String,
        /// What the client said, without the URL.
        reason: String,
    },
    /// Not inside a tokio runtime (the state tasks need one).
    #[error("state: the fleet state needs a running tokio runtime")]
    NoRuntime,
}

/// This replica's link to the fleet.
#[derive(Debug)]
pub struct Fleet {
    share: Arc<BreakerShare>,
    limiter: Arc<KeyLimiter>,
}

impl std::fmt::Debug for BreakerShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerShare").finish_non_exhaustive()
    }
}

impl Fleet {
    /// Connects (lazily: Redis may come later) and starts sharing.
    pub fn start(
        config: &StateConfig,
        env: &dyn Fn(&str) -> Option<String>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Fleet>, StateError> {
        let var = &config.redis_url_env;
        let url = env(var)
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| StateError::MissingUrl(var.clone()))?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StateError::NoRuntime);
        }
        let backend =
            Backend::new(&url, config.timeout, metrics).map_err(|e| StateError::BadUrl {
                var: var.clone(),
                reason: format!("{:?}", e.kind()),
            })?;
        let backend = Arc::new(backend);
        Ok(Arc::new(Fleet {
            share: BreakerShare::start(backend.clone()),
            limiter: KeyLimiter::new(Some((backend, config.on_redis_error))),
        }))
    }

    /// The key limiter backed by the fleet.
    pub fn limiter(&self) -> Arc<KeyLimiter> {
        self.limiter.clone()
    }

    /// The observer a breaker or chain registers to share its openings and holds.
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.share.observer()
    }

    /// The breakers of the config in force (after a build or reload).
    pub fn track(&self, breakers: Vec<CircuitBreaker>) {
        self.share.track(breakers);
    }
}
