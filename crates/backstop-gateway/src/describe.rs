//! `backstop config check`: the resolved config, as a person reads it.

use std::fmt::Write as _;

use crate::config::{Config, Strategy};
use crate::duration::format_duration;

/// The resolved chains and providers, one line each, with every default applied.
pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "listen {}", config.server.listen);
    if let Some(k) = &config.server.key_limits {
        let per = |n: Option<u64>, what: &str| n.map(|n| format!("{n} {what}/min"));
        let limits: Vec<String> = [
            per(k.requests_per_minute, "requests"),
            per(k.tokens_per_minute, "tokens"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let scope = if config.state.is_some() {
            "across the fleet"
        } else {
            "per process"
        };
        let _ = writeln!(
            out,
            "key limits {} per client key, {scope}",
            limits.join(", ")
        );
    }
    if let Some(s) = &config.state {
        let url = if std::env::var_os(&s.redis_url_env).is_some() {
            "set"
        } else {
            "NOT SET"
        };
        let _ = writeln!(
            out,
            "fleet state on Redis from ${} ({url}), {} per call, key limits {} while it is unreachable",
            s.redis_url_env,
            format_duration(s.timeout),
            match s.on_redis_error {
                crate::config::OnRedisError::Allow => "per process",
                crate::config::OnRedisError::Deny => "refused (503)",
            }
        );
    }
    for (name, chain) in &config.chains {
        let members: Vec<String> = chain
            .providers
            .iter()
            .map(|m| match (chain.strategy, m.weight) {
                (Strategy::Weighted, Some(w)) => format!("{} (weight {w})", m.name),
                _ => m.name.clone(),
            })
            .collect();
        let (strategy, sep) = match chain.strategy {
            Strategy::Priority => ("priority", " → "),
            Strategy::Weighted => ("weighted", ", "),
        };
        let timeout = chain
            .timeout
            .map(|t| format!(", timeout {}", format_duration(t)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "chain {name} ({strategy}{timeout}): {}",
            members.join(sep)
        );
    }
    for (name, p) in &config.providers {
        let key = match &p.api_key_env {
            Some(var) if std::env::var_os(var).is_some() => format!("key ${var} (set)"),
            Some(var) => format!("key ${var} (NOT SET)"),
            None => "no key".to_owned(),
        };
        let b = &p.breaker;
        let _ = writeln!(
            out,
            "provider {name}: {} {} at {}, {key}, timeout {}, retries {}, breaker opens {}, recovers after {} (backing off to {}), rate-limit holds up to {}",
            p.kind.as_str(),
            p.model,
            p.base_url,
            format_duration(p.timeout),
            p.retries,
            describe_mode(b),
            format_duration(b.recovery_timeout),
            format_duration(b.max_recovery_timeout),
            format_duration(b.hold.max),
        );
    }
    out
}

/// The breaker's opening rule in words.
fn describe_mode(b: &crate::config::BreakerSettings) -> String {
    match b.mode {
        backstop::BreakerMode::Count { failure_threshold } => format!(
            "after {failure_threshold} failures in {}",
            format_duration(b.window)
        ),
        backstop::BreakerMode::Rate {
            failure_rate,
            minimum_calls,
            outage_failures,
            outage_time,
        } => format!(
            "at {:.0}% failures over {} (from {minimum_calls} calls) or {outage_failures} failures in a row with no success for {}",
            failure_rate * 100.0,
            format_duration(b.window),
            format_duration(outage_time)
        ),
        _ => b.mode.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_limits_and_fleet_state_are_described() {
        let text = "[server]\nkey_limits = { requests_per_minute = 60 }\n\
                    [state]\nredis_url_env = \"BACKSTOP_TEST_UNSET_REDIS_URL\"\non_redis_error = \"deny\"\n\
                    [providers.a]\nkind = \"openai\"\nmodel = \"m\"\n[chains.c]\nproviders = [\"a\"]\n";
        let config = crate::config::Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let out = super::describe(&config);
        assert!(
            out.contains("key limits 60 requests/min per client key, across the fleet\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "fleet state on Redis from $BACKSTOP_TEST_UNSET_REDIS_URL (NOT SET), 50ms per call, \
                 key limits refused (503) while it is unreachable\n"
            ),
            "{out}"
        );
    }
}
