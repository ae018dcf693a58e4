//! `[state]` (fleet state on Redis) and `[server] key_limits`: types, defaults, validation.

use std::time::Duration;

use serde::Deserialize;

use super::build::{Issue, at_value, env_name, int_in, positive_opt};
use super::locate::KeyPath;
use super::raw::Int;

/// Default `[state] timeout`: the budget of one Redis call.
pub const DEFAULT_STATE_TIMEOUT: Duration = Duration::from_millis(50);
/// Largest `[state] timeout`: Redis is never allowed to stall a request for long.
pub const MAX_STATE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default `[server] key_limits.default_max_tokens`: the tokens reserved for a request that
/// sets no `max_tokens` (reconciled with the usage the provider reports).
pub const DEFAULT_RESERVED_TOKENS: u64 = 1024;

/// The `[state]` section: where replicas share breaker openings, holds and key limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Environment variable holding the Redis URL (`redis://` or `rediss://`, with a
    /// password if any).
    pub redis_url_env: String,
    /// What key limits do while Redis cannot be reached: `Allow` (the default) falls back to
    /// per-process limits, `Deny` refuses with 503.
    pub on_redis_error: OnRedisError,
    /// Budget of one Redis call (default 50ms).
    pub timeout: Duration,
}

/// `[state] on_redis_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisError {
    /// Keep serving; key limits hold per process.
    #[default]
    Allow,
    /// Refuse requests that key limits apply to (503) until Redis is back.
    Deny,
}

/// `[server] key_limits`: per client key, across the fleet when `[state]` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Requests per rolling minute; `None`: unlimited.
    pub requests_per_minute: Option<u64>,
    /// Tokens (prompt + completion, as reported) per rolling minute; `None`: unlimited.
    pub tokens_per_minute: Option<u64>,
    /// Tokens reserved for a request without `max_tokens` (default [`DEFAULT_RESERVED_TOKENS`]).
    pub default_max_tokens: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawState {
    redis_url_env: Option<String>,
    on_redis_error: Option<OnRedisError>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    timeout: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawKeyLimits {
    requests_per_minute: Option<Int>,
    tokens_per_minute: Option<Int>,
    default_max_tokens: Option<Int>,
}

const LIMIT_MAX: i64 = 1 << 40;

pub(super) fn build_state(path: &KeyPath, raw: RawState) -> Result<StateConfig, Issue> {
    let redis_url_env = super::build::required(
        raw.redis_url_env,
        path.key("redis_url_env"),
        ": name the environment variable holding the Redis URL, e.g. \"BACKSTOP_REDIS_URL\"",
    )?;
    let timeout = positive_opt(path.key("timeout"), raw.timeout)?.unwrap_or(DEFAULT_STATE_TIMEOUT);
    if timeout > MAX_STATE_TIMEOUT {
        return Err(at_value(
            path.key("timeout"),
            "must be at most 1s: a Redis call must never hold a request up for long",
        ));
    }
    Ok(StateConfig {
        redis_url_env: env_name(path.key("redis_url_env"), redis_url_env)?,
        on_redis_error: raw.on_redis_error.unwrap_or_default(),
        timeout,
    })
}

pub(super) fn build_key_limits(path: &KeyPath, raw: RawKeyLimits) -> Result<KeyLimits, Issue> {
    let count = |key: &str, v: Option<Int>| {
        v.map(|v| int_in::<u64>(path.key(key), v, 1, LIMIT_MAX))
            .transpose()
    };
    let limits = KeyLimits {
        requests_per_minute: count("requests_per_minute", raw.requests_per_minute)?,
        tokens_per_minute: count("tokens_per_minute", raw.tokens_per_minute)?,
        default_max_tokens: count("default_max_tokens", raw.default_max_tokens)?
            .unwrap_or(DEFAULT_RESERVED_TOKENS),
    };
    if limits.requests_per_minute.is_none() && limits.tokens_per_minute.is_none() {
        return Err(at_value(
            path.clone(),
            "set requests_per_minute, tokens_per_minute or both (or remove key_limits)",
        ));
    }
    Ok(limits)
}
