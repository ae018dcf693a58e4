//! Validation: from the raw config to the public types, with defaults applied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::locate::{KeyPath, Seg, Target};
use super::raw::*;
use super::*;
use crate::duration::format_duration;

pub(super) struct Issue {
    pub(super) path: KeyPath,
    pub(super) target: Target,
    pub(super) message: String,
}

pub(super) fn at_value(path: KeyPath, message: impl Into<String>) -> Issue {
    Issue {
        path,
        target: Target::Value,
        message: message.into(),
    }
}

pub(super) fn at_key(path: KeyPath, message: impl Into<String>) -> Issue {
    Issue {
        path,
        target: Target::Key,
        message: message.into(),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub(super) fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) fn env_name(path: KeyPath, value: String) -> Result<String, Issue> {
    if is_env_var_name(&value) {
        return Ok(value);
    }
    let looks_secret = value.starts_with("sk-") || value.len() >= 32;
    let hint = if looks_secret {
        " (this looks like a secret itself: put the key in the environment and name the \
         variable here)"
    } else {
        ""
    };
    Err(at_value(
        path,
        format!(
            "{value:?} is not a valid environment variable name: use letters, digits and _, \
             not starting with a digit{hint}"
        ),
    ))
}

pub(super) fn positive(path: KeyPath, duration: Duration) -> Result<Duration, Issue> {
    if duration.is_zero() {
        Err(at_value(
            path,
            format!(
                "duration must be greater than zero (got \"{}\")",
                format_duration(duration)
            ),
        ))
    } else {
        Ok(duration)
    }
}

pub(super) fn positive_opt(
    path: KeyPath,
    duration: Option<Duration>,
) -> Result<Option<Duration>, Issue> {
    duration.map(|d| positive(path, d)).transpose()
}

pub(super) fn int_in<T: TryFrom<i64>>(
    path: KeyPath,
    value: Int,
    min: i64,
    max: i64,
) -> Result<T, Issue> {
    let out_of_range = || {
        at_value(
            path.clone(),
            format!("must be between {min} and {max}, got {}", value.0),
        )
    };
    if value.0 < min || value.0 > max {
        return Err(out_of_range());
    }
    T::try_from(value.0).map_err(|_| out_of_range())
}

#[allow(clippy::cast_possible_truncation)]
pub(super) fn float_in(path: KeyPath, value: Float, min: f64, max: f64) -> Result<f32, Issue> {
    if value.0.is_finite() && (min..=max).contains(&value.0) {
        Ok(value.0 as f32)
    } else {
        Err(at_value(
            path,
            format!("must be between {min} and {max}, got {}", value.0),
        ))
    }
}

pub(super) fn required<T>(value: Option<T>, path: KeyPath, hint: &str) -> Result<T, Issue> {
    let key = match path.0.last() {
        Some(Seg::Key(key)) => key.clone(),
        _ => String::new(),
    };
    value.ok_or_else(|| at_key(path, format!("missing required key `{key}`{hint}")))
}

pub(super) fn build(raw: RawConfig) -> Result<Config, Issue> {
    let root = KeyPath::default();
    let server = build_server(&root.key("server"), raw.server.unwrap_or_default())?;

    let providers_path = root.key("providers");
    let raw_providers = raw.providers.unwrap_or_default();
    if raw_providers.is_empty() {
        return Err(at_key(
            providers_path,
            "at least one provider is required: add a [providers.<name>] table with `kind` \
             and `model`",
        ));
    }
    let mut providers = BTreeMap::new();
    for (name, provider) in raw_providers {
        let built = build_provider(&providers_path.key(&name), provider)?;
        providers.insert(name, built);
    }

    let chains_path = root.key("chains");
    let raw_chains = raw.chains.unwrap_or_default();
    if raw_chains.is_empty() {
        return Err(at_key(
            chains_path,
            "at least one chain is required: add a [chains.<name>] table listing `providers`",
        ));
    }
    let mut chains = BTreeMap::new();
    for (name, chain) in raw_chains {
        let built = build_chain(&chains_path.key(&name), chain, &providers)?;
        chains.insert(name, built);
    }

    Ok(Config {
        server,
        providers,
        chains,
    })
}

pub(super) fn build_server(path: &KeyPath, raw: RawServer) -> Result<ServerConfig, Issue> {
    let defaults = ServerConfig::default();
    let listen = match raw.listen {
        None => defaults.listen,
        Some(text) => text.parse::<SocketAddr>().map_err(|_| {
            at_value(
                path.key("listen"),
                format!(
                    "{text:?} is not a socket address: expected IP:port such as \
                     \"127.0.0.1:8080\" or \"[::1]:8080\" (host names are not resolved)"
                ),
            )
        })?,
    };
    let max_body_bytes = match raw.max_body_bytes {
        None => defaults.max_body_bytes,
        Some(v) => int_in(
            path.key("max_body_bytes"),
            v,
            1,
            i64::try_from(MAX_BODY_BYTES_LIMIT).unwrap_or(i64::MAX),
        )?,
    };
    Ok(ServerConfig {
        listen,
        client_keys_env: raw
            .client_keys_env
            .map(|v| env_name(path.key("client_keys_env"), v))
            .transpose()?,
        admin_key_env: raw
            .admin_key_env
            .map(|v| env_name(path.key("admin_key_env"), v))
            .transpose()?,
        max_body_bytes,
        header_timeout: positive_opt(path.key("header_timeout"), raw.header_timeout)?
            .unwrap_or(defaults.header_timeout),
        body_timeout: positive_opt(path.key("body_timeout"), raw.body_timeout)?
            .unwrap_or(defaults.body_timeout),
        shutdown_grace: positive_opt(path.key("shutdown_grace"), raw.shutdown_grace)?
            .unwrap_or(defaults.shutdown_grace),
        client_write_timeout: positive_opt(
            path.key("client_write_timeout"),
            raw.client_write_timeout,
        )?
        .unwrap_or(defaults.client_write_timeout),
        max_connections: raw
            .max_connections
            .map(|v| {
                int_in(
                    path.key("max_connections"),
                    v,
                    1,
                    limit(MAX_CONNECTIONS_LIMIT),
                )
            })
            .transpose()?,
        max_in_flight: raw
            .max_in_flight
            .map(|v| {
                int_in(
                    path.key("max_in_flight"),
                    v,
                    1,
                    limit(MAX_CONNECTIONS_LIMIT),
                )
            })
            .transpose()?,
        max_stream_buffer_bytes: match raw.max_stream_buffer_bytes {
            None => defaults.max_stream_buffer_bytes,
            Some(v) => int_in(
                path.key("max_stream_buffer_bytes"),
                v,
                limit(MIN_STREAM_BUFFER_BYTES),
                limit(MAX_BODY_BYTES_LIMIT),
            )?,
        },
        allowed_origins: list(&path.key("allowed_origins"), raw.allowed_origins, origin)?,
        allowed_hosts: list(&path.key("allowed_hosts"), raw.allowed_hosts, host)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Each entry checked (and normalised) by `check`, which says what is wrong with a bad one.
fn list(
    path: &KeyPath,
    raw: Option<Vec<String>>,
    check: fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, Issue> {
    raw.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, v)| check(v).map_err(|m| at_value(path.index(i), m)))
        .collect()
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`; lower-cased.
fn origin(v: &str) -> Result<String, String> {
    let lower = v.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ', '*']) => Ok(lower),
        _ => Err(format!(
            "{v:?} is not an origin: write scheme://host[:port] as the browser sends it, \
             e.g. \"https://app.example.com\" (no path, no trailing slash, no wildcard)"
        )),
    }
}

/// A host name or IP address (no scheme, port or path); `.example.com` for a domain and its
/// subdomains. Lower-cased.
fn host(v: &str) -> Result<String, String> {
    let lower = v.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = lower.trim_start_matches('.');
    let ok = !bare.is_empty()
        && (bare.parse::<std::net::IpAddr>().is_ok()
            || bare
                .strip_prefix('[')
                .and_then(|b| b.strip_suffix(']'))
                .is_some_and(|b| b.parse::<std::net::Ipv6Addr>().is_ok())
            || bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if ok {
        Ok(lower)
    } else {
        Err(format!(
            "{v:?} is not a host name: write the name alone, e.g. \"gateway.internal\" or \
             \".example.com\" for a domain and its subdomains (no scheme, port or path)"
        ))
    }
}

pub(super) fn build_provider(path: &KeyPath, raw: RawProvider) -> Result<ProviderConfig, Issue> {
    let kind = required(
        raw.kind,
        path.key("kind"),
        " (one of: openai, anthropic, groq, openai-compatible)",
    )?;
    let model = required(raw.model, path.key("model"), " (the upstream model name)")?;
    if model.trim().is_empty() {
        return Err(at_value(path.key("model"), "`model` must not be empty"));
    }
    let api_key_env = match raw.api_key_env {
        Some(name) => Some(env_name(path.key("api_key_env"), name)?),
        None => kind.default_api_key_env().map(str::to_owned),
    };
    let base_url = match raw.base_url {
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.trim_end_matches('/').ends_with(':')
                || url.contains(char::is_whitespace)
            {
                return Err(at_value(
                    path.key("base_url"),
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            url.trim_end_matches('/').to_owned()
        }
        None => match kind.default_base_url() {
            Some(url) => url.to_owned(),
            None => {
                return Err(at_key(
                    path.key("base_url"),
                    format!(
                        "missing required key `base_url`: kind \"{kind}\" has no default, \
                         e.g. base_url = \"http://localhost:8000/v1\""
                    ),
                ));
            }
        },
    };
    let timeout =
        positive_opt(path.key("timeout"), raw.timeout)?.unwrap_or(DEFAULT_PROVIDER_TIMEOUT);
    let retries = match raw.retries {
        None => DEFAULT_RETRIES,
        Some(v) => int_in(path.key("retries"), v, 0, i64::from(MAX_RETRIES))?,
    };
    let breaker = match raw.breaker {
        None => BreakerSettings::default(),
        Some(b) => build_breaker(&path.key("breaker"), b)?,
    };
    let temperature = raw
        .temperature
        .map(|v| float_in(path.key("temperature"), v, 0.0, 2.0))
        .transpose()?;
    let top_p = raw
        .top_p
        .map(|v| float_in(path.key("top_p"), v, 0.0, 1.0))
        .transpose()?;
    let max_tokens = raw
        .max_tokens
        .map(|v| int_in(path.key("max_tokens"), v, 1, i64::from(u32::MAX)))
        .transpose()?;
    let stop = raw.stop.unwrap_or_default();
    if let Some(i) = stop.iter().position(String::is_empty) {
        return Err(at_value(
            path.key("stop").index(i),
            "stop sequences must not be empty",
        ));
    }
    Ok(ProviderConfig {
        kind,
        model,
        api_key_env,
        base_url,
        timeout,
        retries,
        breaker,
        temperature,
        max_tokens,
        top_p,
        stop,
    })
}

pub(super) fn build_breaker(path: &KeyPath, raw: RawBreaker) -> Result<BreakerSettings, Issue> {
    let defaults = BreakerSettings::default();
    Ok(BreakerSettings {
        failure_threshold: match raw.failure_threshold {
            None => defaults.failure_threshold,
            Some(v) => int_in(path.key("failure_threshold"), v, 1, 10_000)?,
        },
        window: positive_opt(path.key("window"), raw.window)?.unwrap_or(defaults.window),
        recovery_timeout: positive_opt(path.key("recovery_timeout"), raw.recovery_timeout)?
            .unwrap_or(defaults.recovery_timeout),
        half_open_probes: match raw.half_open_probes {
            None => defaults.half_open_probes,
            Some(v) => int_in(path.key("half_open_probes"), v, 1, 1_000)?,
        },
    })
}

pub(super) fn build_chain(
    path: &KeyPath,
    raw: RawChain,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<ChainConfig, Issue> {
    let strategy = raw.strategy.unwrap_or_default();
    let members_path = path.key("providers");
    let members = required(
        raw.providers,
        members_path.clone(),
        " (the provider names to try, in order)",
    )?;
    if members.is_empty() {
        return Err(at_value(
            members_path,
            "a chain needs at least one provider",
        ));
    }
    let mut out: Vec<ChainMember> = Vec::with_capacity(members.len());
    for (i, member) in members.into_iter().enumerate() {
        let member_path = members_path.index(i);
        if !providers.contains_key(&member.name) {
            let defined: Vec<&str> = providers.keys().map(String::as_str).collect();
            return Err(at_value(
                member_path,
                format!(
                    "unknown provider {:?} (defined: {})",
                    member.name,
                    defined.join(", ")
                ),
            ));
        }
        if let Some(first) = out.iter().position(|m| m.name == member.name) {
            return Err(at_value(
                member_path,
                format!(
                    "provider {:?} is listed twice in this chain (first at providers[{first}])",
                    member.name
                ),
            ));
        }
        match (strategy, member.weight) {
            (Strategy::Priority, Some(_)) => {
                return Err(at_key(
                    member_path.key("weight"),
                    "weights only apply to weighted chains: remove the weight or set \
                     strategy = \"weighted\"",
                ));
            }
            (Strategy::Weighted, None) => {
                return Err(at_value(
                    member_path,
                    format!(
                        "a weighted chain needs a weight for every provider: write {{ name = \
                         {:?}, weight = 0.5 }}",
                        member.name
                    ),
                ));
            }
            (Strategy::Weighted, Some(w)) if !(w.is_finite() && w > 0.0) => {
                return Err(at_value(
                    member_path.key("weight"),
                    format!("weight must be a finite number greater than 0, got {w}"),
                ));
            }
            _ => {}
        }
        out.push(ChainMember {
            name: member.name,
            weight: member.weight,
        });
    }
    Ok(ChainConfig {
        strategy,
        providers: out,
        timeout: positive_opt(path.key("timeout"), raw.timeout)?,
        ttft_timeout: positive_opt(path.key("ttft_timeout"), raw.ttft_timeout)?,
        idle_timeout: positive_opt(path.key("idle_timeout"), raw.idle_timeout)?,
    })
}
