//! Validation: from the raw config to the public types, with defaults applied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::locate::{KeyPath, Seg, Target};
use super::raw::*;
use super::*;
use crate::duration::format_duration;
use backstop::BreakerMode;

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

    let telemetry = build_telemetry(&root.key("telemetry"), raw.telemetry.unwrap_or_default())?;
    let state = raw
        .state
        .map(|s| super::state::build_state(&root.key("state"), s))
        .transpose()?;
    Ok(Config {
        server,
        providers,
        chains,
        telemetry,
        state,
    })
}

/// `[telemetry]`: the OTLP endpoint must be an absolute http(s) URL with a host.
fn build_telemetry(path: &KeyPath, raw: RawTelemetry) -> Result<TelemetryConfig, Issue> {
    let Some(text) = raw.otlp_endpoint else {
        return Ok(TelemetryConfig::default());
    };
    let path = path.key("otlp_endpoint");
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => Ok(TelemetryConfig {
            otlp_endpoint: Some(text),
        }),
        _ => Err(at_value(
            path,
            format!(
                "{text:?} is not an OTLP/HTTP endpoint: expected the collector's traces URL, \
                 such as \"http://127.0.0.1:4318/v1/traces\""
            ),
        )),
    }
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
        workers: raw
            .workers
            .map(|v| int_in(path.key("workers"), v, 1, limit(MAX_WORKERS)))
            .transpose()?,
        allowed_origins: list(&path.key("allowed_origins"), raw.allowed_origins, origin)?,
        allowed_hosts: list(&path.key("allowed_hosts"), raw.allowed_hosts, host)?,
        key_limits: raw
            .key_limits
            .map(|k| super::state::build_key_limits(&path.key("key_limits"), k))
            .transpose()?,
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

/// A provider's `base_url`, without its trailing `/`: an `http://` or `https://` URL that the
/// `url` crate parses (WHATWG rules), with a host and without credentials (keys belong in
/// `api_key_env`).
fn checked_base_url(path: &KeyPath, url: &str) -> Result<String, Issue> {
    let bad = |why: String| at_value(path.key("base_url"), why);
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(bad(format!("{url:?} is not an http:// or https:// URL")));
    }
    // The url crate drops tabs and newlines silently; a URL that holds any is a typo.
    if url.contains(char::is_whitespace) {
        return Err(bad(format!("{url:?} contains whitespace")));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| bad(format!("{url:?} is not a valid URL: {e}")))?;
    // WHATWG parsing reads `http:///v1` as the host `v1`; what was written has no host.
    let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
    if after_scheme.starts_with(['/', '\\', '?', '#'])
        || after_scheme.is_empty()
        || parsed.host_str().is_none_or(str::is_empty)
    {
        return Err(bad(format!("{url:?} has no host")));
    }
    if url.trim_end_matches('/').ends_with(':') {
        return Err(bad(format!("{url:?} has an empty port")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "the URL must not carry credentials: put the key in the variable named by `api_key_env`"
                .to_owned(),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
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
        Some(url) => checked_base_url(path, &url)?,
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
    let mut breaker = match raw.breaker {
        None => BreakerSettings::default(),
        Some(b) => build_breaker(&path.key("breaker"), b)?,
    };
    if let Some(h) = raw.hold {
        breaker.hold = build_hold(&path.key("hold"), h)?;
    }
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
    let dimensions = match raw.dimensions {
        None => None,
        Some(_) if matches!(kind, ProviderKind::Anthropic | ProviderKind::Groq) => {
            return Err(at_key(
                path.key("dimensions"),
                format!(
                    "kind \"{kind}\" has no embeddings API: `dimensions` (which makes a \
                     provider an embeddings provider) applies to openai and openai-compatible"
                ),
            ));
        }
        Some(v) => Some(int_in(path.key("dimensions"), v, 1, 65_536)?),
    };
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
        dimensions,
    })
}

pub(super) fn build_breaker(path: &KeyPath, raw: RawBreaker) -> Result<BreakerSettings, Issue> {
    let mut b = BreakerSettings::default();
    let rate_key = [
        ("failure_rate", raw.failure_rate.is_some()),
        ("minimum_calls", raw.minimum_calls.is_some()),
        ("outage_failures", raw.outage_failures.is_some()),
        ("outage_time", raw.outage_time.is_some()),
    ]
    .into_iter()
    .find(|(_, set)| *set)
    .map(|(k, _)| k);
    b.mode = match (raw.failure_threshold, rate_key) {
        (Some(_), Some(key)) => {
            return Err(at_key(
                path.key(key),
                "`failure_threshold` (count mode) and the failure-rate keys (failure_rate, \
                 minimum_calls, outage_failures, outage_time) cannot be mixed: choose one mode",
            ));
        }
        (Some(t), None) => BreakerMode::Count {
            failure_threshold: int_in(path.key("failure_threshold"), t, 1, 10_000)?,
        },
        (None, _) => {
            let BreakerMode::Rate {
                failure_rate,
                minimum_calls,
                outage_failures,
                outage_time,
            } = BreakerMode::DEFAULT_RATE
            else {
                return Err(at_key(
                    path.clone(),
                    "internal: the default mode is not failure-rate",
                ));
            };
            BreakerMode::Rate {
                failure_rate: match raw.failure_rate {
                    Some(r) if r.0.is_finite() && r.0 > 0.0 && r.0 <= 1.0 => r.0,
                    Some(r) => {
                        return Err(at_value(
                            path.key("failure_rate"),
                            format!("must be greater than 0 and at most 1, got {}", r.0),
                        ));
                    }
                    None => failure_rate,
                },
                minimum_calls: match raw.minimum_calls {
                    Some(v) => int_in(path.key("minimum_calls"), v, 1, 1_000_000)?,
                    None => minimum_calls,
                },
                outage_failures: match raw.outage_failures {
                    Some(v) => int_in(path.key("outage_failures"), v, 0, 1_000_000)?,
                    None => outage_failures,
                },
                outage_time: raw.outage_time.unwrap_or(outage_time),
            }
        }
    };
    b.window = positive_opt(path.key("window"), raw.window)?.unwrap_or(b.window);
    if let Some(r) = positive_opt(path.key("recovery_timeout"), raw.recovery_timeout)? {
        // An explicit recovery timeout is the open period, every time, unless a maximum asks
        // for backoff.
        b.recovery_timeout = r;
        b.max_recovery_timeout = r;
    }
    if let Some(m) = positive_opt(path.key("max_recovery_timeout"), raw.max_recovery_timeout)? {
        if m < b.recovery_timeout {
            return Err(at_value(
                path.key("max_recovery_timeout"),
                format!(
                    "must not be shorter than recovery_timeout (\"{}\")",
                    format_duration(b.recovery_timeout)
                ),
            ));
        }
        b.max_recovery_timeout = m;
    }
    if let Some(v) = raw.half_open_probes {
        b.half_open_probes = int_in(path.key("half_open_probes"), v, 1, 1_000)?;
    }
    Ok(b)
}

pub(super) fn build_hold(path: &KeyPath, raw: RawHold) -> Result<backstop::HoldConfig, Issue> {
    let d = backstop::HoldConfig::default();
    let max = positive_opt(path.key("max"), raw.max)?.unwrap_or(d.max);
    let initial = positive_opt(path.key("initial"), raw.initial)?.unwrap_or(d.initial);
    if initial > max {
        return Err(at_value(
            path.key("initial"),
            format!("must not be longer than max (\"{}\")", format_duration(max)),
        ));
    }
    Ok(backstop::HoldConfig { max, initial })
}

/// `fall_through_on`: the configurable kinds that try the next provider (the list replaces the
/// default, `["invalid_request"]`).
fn build_fall_through(path: &KeyPath, kinds: Vec<String>) -> Result<backstop::FallThrough, Issue> {
    let mut f = backstop::FallThrough {
        invalid_request: false,
        content_filtered: false,
    };
    for (i, k) in kinds.iter().enumerate() {
        match k.as_str() {
            "invalid_request" => f.invalid_request = true,
            "content_filtered" => f.content_filtered = true,
            "timeout"
            | "connect"
            | "rate_limited"
            | "quota_exhausted"
            | "overloaded"
            | "server"
            | "auth"
            | "context_length_exceeded"
            | "protocol" => {
                return Err(at_value(
                    path.index(i),
                    format!(
                        "{k:?} always falls through; only invalid_request and content_filtered are configurable"
                    ),
                ));
            }
            other => {
                return Err(at_value(
                    path.index(i),
                    format!(
                        "unknown error kind {other:?}; configurable kinds are invalid_request and content_filtered"
                    ),
                ));
            }
        }
    }
    Ok(f)
}

fn build_budget(path: &KeyPath, raw: RawBudget) -> Result<Option<backstop::RetryBudget>, Issue> {
    let t = match raw {
        RawBudget::Off => return Ok(None),
        RawBudget::On(t) => t,
    };
    let d = backstop::RetryBudget::default();
    let ratio = match t.ratio {
        Some(r) if r.0.is_finite() && (0.0..=10.0).contains(&r.0) => r.0,
        Some(r) => {
            return Err(at_value(
                path.key("ratio"),
                format!("must be between 0 and 10 retries per request, got {}", r.0),
            ));
        }
        None => d.ratio,
    };
    Ok(Some(backstop::RetryBudget {
        ratio,
        min_per_second: match t.min_per_second {
            Some(v) => int_in(path.key("min_per_second"), v, 0, 1_000_000)?,
            None => d.min_per_second,
        },
        ttl: positive_opt(path.key("ttl"), t.ttl)?.unwrap_or(d.ttl),
    }))
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
    let dimensions = chain_dimensions(&members_path, &out, providers)?;
    if dimensions.is_some() && raw.stream_resume == Some(true) {
        return Err(at_key(
            path.key("stream_resume"),
            "an embeddings chain has no streams to resume: remove `stream_resume`",
        ));
    }
    Ok(ChainConfig {
        strategy,
        providers: out,
        timeout: positive_opt(path.key("timeout"), raw.timeout)?,
        ttft_timeout: positive_opt(path.key("ttft_timeout"), raw.ttft_timeout)?,
        idle_timeout: positive_opt(path.key("idle_timeout"), raw.idle_timeout)?,
        fall_through: match raw.fall_through_on {
            Some(kinds) => build_fall_through(&path.key("fall_through_on"), kinds)?,
            None => backstop::FallThrough::default(),
        },
        when_all_open: raw.when_all_open.unwrap_or_default(),
        retry_budget: match raw.retry_budget {
            Some(b) => build_budget(&path.key("retry_budget"), b)?,
            None => Some(backstop::RetryBudget::default()),
        },
        stream_resume: raw.stream_resume.unwrap_or(false),
        max_resumes: match raw.max_resumes {
            Some(v) => int_in(path.key("max_resumes"), v, 0, 10)?,
            None => 3,
        },
        hedge: build_hedge(path, raw.hedge_after, raw.hedge_budget)?,
        dimensions,
    })
}

/// A chain is all chat providers (`None`) or all embeddings providers of one vector size:
/// a fallback must not hand back vectors of another size, or a chat answer to an embedding
/// request.
fn chain_dimensions(
    members_path: &KeyPath,
    members: &[ChainMember],
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<Option<u32>, Issue> {
    let dims = |m: &ChainMember| providers.get(&m.name).and_then(|p| p.dimensions);
    let Some(first) = members.first() else {
        return Ok(None);
    };
    let want = dims(first);
    for (i, m) in members.iter().enumerate().skip(1) {
        let got = dims(m);
        if got == want {
            continue;
        }
        let describe = |name: &str, d: Option<u32>| match d {
            Some(d) => format!("{name:?} is an embeddings provider of {d} dimensions"),
            None => format!("{name:?} is a chat provider (no `dimensions`)"),
        };
        return Err(at_value(
            members_path.index(i),
            format!(
                "{} but {}: a chain's providers must all be chat providers or all embeddings \
                 providers of the same dimensions",
                describe(&m.name, got),
                describe(&first.name, want)
            ),
        ));
    }
    Ok(want)
}

fn build_hedge(
    path: &KeyPath,
    after: Option<RawHedgeAfter>,
    budget: Option<Float>,
) -> Result<Option<(backstop::HedgeAfter, f64)>, Issue> {
    let budget = match budget {
        Some(b) if b.0.is_finite() && b.0 > 0.0 && b.0 <= 1.0 => Some(b.0),
        Some(b) => {
            return Err(at_value(
                path.key("hedge_budget"),
                format!(
                    "must be a share of requests greater than 0 and at most 1, got {}",
                    b.0
                ),
            ));
        }
        None => None,
    };
    let after = match after {
        None if budget.is_some() => {
            return Err(at_key(
                path.key("hedge_budget"),
                "`hedge_budget` needs `hedge_after` (when to start the hedge)",
            ));
        }
        None => return Ok(None),
        Some(RawHedgeAfter::Fixed(d)) => {
            backstop::HedgeAfter::Fixed(positive(path.key("hedge_after"), d)?)
        }
        Some(RawHedgeAfter::Percentile(p)) => {
            if !(p.percentile.0.is_finite() && (1.0..=100.0).contains(&p.percentile.0)) {
                return Err(at_value(
                    path.key("hedge_after").key("percentile"),
                    format!("must be between 1 and 100, got {}", p.percentile.0),
                ));
            }
            backstop::HedgeAfter::Percentile {
                percentile: p.percentile.0,
                min: p.min.unwrap_or(std::time::Duration::from_millis(100)),
            }
        }
    };
    Ok(Some((after, budget.unwrap_or(0.1))))
}
