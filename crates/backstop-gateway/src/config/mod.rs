//! The gateway's TOML configuration: `[server]`, `[providers.<name>]` and `[chains.<name>]`.
//!
//! [`Config::load`] / [`Config::parse`] read the file in three steps:
//!
//! 1. parse the TOML into a spanned tree (`toml::de::DeTable`), so every key and value keeps
//!    its byte range in the source;
//! 2. deserialize that tree into private `Raw*` structs, which reject unknown keys and wrong
//!    types;
//! 3. validate and resolve defaults into the public types below.
//!
//! Any failure becomes one [`ConfigError`] whose `Display` is a single line of the form
//! `file:line:column: key.path: what is wrong`. The key path of a serde error is found by
//! looking up the error's span in the spanned tree; the location of a validation error is
//! found by looking up its key path in the same tree.
//!
//! Secrets never appear in the file: keys are named by environment variable (`api_key_env`,
//! `client_keys_env`, `admin_key_env`), and `api_key`, `client_keys` and `admin_key` are
//! rejected with a message saying so.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeTable;

mod build;
mod error;
mod locate;
mod raw;
mod state;

use build::build;
pub use error::{ConfigError, Diagnostic};
use error::{deserialize_error, syntax_error};
use locate::locate;
use raw::RawConfig;
pub use state::{
    DEFAULT_RESERVED_TOKENS, DEFAULT_STATE_TIMEOUT, KeyLimits, MAX_STATE_TIMEOUT, OnRedisError,
    StateConfig,
};

/// Default `server.listen` address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default `server.max_body_bytes`: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest allowed `server.max_body_bytes`: 1 GiB.
pub const MAX_BODY_BYTES_LIMIT: usize = 1024 * 1024 * 1024;
/// Default `server.header_timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `server.body_timeout`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `server.shutdown_grace`.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Default `server.client_write_timeout`: a client that reads nothing for this long is cut.
pub const DEFAULT_CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `server.max_stream_buffer_bytes`: response bytes buffered per connection.
pub const DEFAULT_MAX_STREAM_BUFFER_BYTES: usize = 64 * 1024;
/// Smallest `server.max_stream_buffer_bytes` (hyper needs room for one read).
pub const MIN_STREAM_BUFFER_BYTES: usize = 8 * 1024;
/// Largest `server.workers`.
pub const MAX_WORKERS: usize = 256;
/// Largest `server.max_connections` / `server.max_in_flight`.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;
/// Default per-attempt `providers.<name>.timeout`.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `providers.<name>.retries`.
pub const DEFAULT_RETRIES: u32 = 1;
/// Largest allowed `providers.<name>.retries`.
pub const MAX_RETRIES: u32 = 10;

pub(super) const SECRET_HINT: &str = "secrets are not allowed in the config file";
/// Keys that would hold a secret, and the `*_env` key to use instead.
pub(super) const SECRET_KEYS: [(&str, &str); 3] = [
    ("api_key", "api_key_env"),
    ("client_keys", "client_keys_env"),
    ("admin_key", "admin_key_env"),
];

// ---------------------------------------------------------------------------------------
// Public configuration types
// ---------------------------------------------------------------------------------------

/// A validated gateway configuration with every default resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `[server]` section (all defaults when absent).
    pub server: ServerConfig,
    /// `[providers.<name>]`, by name. Never empty.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[chains.<name>]`, by name. Never empty; every member names a key of `providers`.
    pub chains: BTreeMap<String, ChainConfig>,
    /// The `[telemetry]` section (no export when absent).
    pub telemetry: TelemetryConfig,
    /// The `[state]` section: fleet state on Redis; `None`: this process alone.
    pub state: Option<StateConfig>,
}

/// The `[telemetry]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Where traces go, over OTLP HTTP/protobuf: the full traces URL
    /// (`http://127.0.0.1:4318/v1/traces`). `None`: no spans are exported.
    pub otlp_endpoint: Option<String>,
}

/// The `[server]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to bind (default [`DEFAULT_LISTEN`]).
    pub listen: SocketAddr,
    /// Environment variable holding comma-separated client keys; `None` disables client auth.
    pub client_keys_env: Option<String>,
    /// Environment variable holding the admin key; `None` disables the admin endpoints' key.
    pub admin_key_env: Option<String>,
    /// Largest accepted request body (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// Time allowed to receive request headers (default 10s); it also closes a keep-alive
    /// connection left idle that long, so clients should expire pooled connections sooner.
    pub header_timeout: Duration,
    /// Time allowed to receive the request body (default 30s).
    pub body_timeout: Duration,
    /// Time in-flight requests get to finish on shutdown (default 30s).
    pub shutdown_grace: Duration,
    /// A client that accepts no response bytes for this long is disconnected and its
    /// upstream request cancelled (default 30s).
    pub client_write_timeout: Duration,
    /// Most open client connections; more are answered 503 and closed. `None`: derived
    /// from the open-file limit at start-up.
    pub max_connections: Option<usize>,
    /// Most chat requests in flight; more are answered 503. `None`: as many as connections.
    pub max_in_flight: Option<usize>,
    /// Response bytes buffered per connection before the gateway stops reading upstream
    /// (default 64 KiB, at least 8 KiB); also the largest request head accepted.
    pub max_stream_buffer_bytes: usize,
    /// Threads serving client connections, each with its own event loop; a connection and the
    /// upstream connections its requests use stay on one. `None`: one per CPU core (at most
    /// [`MAX_WORKERS`]).
    pub workers: Option<usize>,
    /// Browser origins (`https://app.example.com`) allowed to call the gateway (CORS);
    /// requests with any other `Origin` are refused. Empty (the default): none.
    pub allowed_origins: Vec<String>,
    /// Host names accepted besides loopback ones when no client keys are configured
    /// (DNS-rebinding protection); `.example.com` also matches its subdomains.
    pub allowed_hosts: Vec<String>,
    /// Per-client-key request and token limits (across the fleet with `[state]`, per process
    /// without); `None`: none.
    pub key_limits: Option<KeyLimits>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            client_keys_env: None,
            admin_key_env: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            client_write_timeout: DEFAULT_CLIENT_WRITE_TIMEOUT,
            max_connections: None,
            max_in_flight: None,
            max_stream_buffer_bytes: DEFAULT_MAX_STREAM_BUFFER_BYTES,
            workers: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            key_limits: None,
        }
    }
}

/// Which wire protocol and defaults a provider uses (`kind = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum ProviderKind {
    /// `"openai"`: OpenAI chat completions.
    #[serde(rename = "openai")]
    OpenAi,
    /// `"anthropic"`: Anthropic messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// `"groq"`: Groq's OpenAI-compatible endpoint.
    #[serde(rename = "groq")]
    Groq,
    /// `"openai-compatible"`: any OpenAI-compatible server; `base_url` is required.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    /// Every kind, in documentation order.
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Groq,
        ProviderKind::OpenAiCompatible,
    ];

    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Groq => "groq",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The environment variable read for the API key when `api_key_env` is not set.
    pub fn default_api_key_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderKind::Groq => Some("GROQ_API_KEY"),
            ProviderKind::OpenAiCompatible => None,
        }
    }

    /// The base URL used when `base_url` is not set (`None`: it is required).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Groq => Some("https://api.groq.com"),
            ProviderKind::OpenAiCompatible => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Circuit-breaker settings of one provider (`breaker = { ... }`): the library's own type,
/// with its defaults (failure-rate mode unless `failure_threshold` is set).
pub use backstop::BreakerConfig as BreakerSettings;

/// `when_all_open` of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenAllOpenSetting {
    /// Fail at once (the default).
    #[default]
    Fail,
    /// Probe the provider whose breaker opened longest ago.
    Probe,
}

impl From<WhenAllOpenSetting> for backstop::WhenAllOpen {
    fn from(w: WhenAllOpenSetting) -> Self {
        match w {
            WhenAllOpenSetting::Fail => backstop::WhenAllOpen::Fail,
            WhenAllOpenSetting::Probe => backstop::WhenAllOpen::Probe,
        }
    }
}

/// One `[providers.<name>]` table, defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Model name sent upstream. Never empty.
    pub model: String,
    /// Environment variable holding the API key: the configured name, else the kind's
    /// default; `None` only for `openai-compatible` without `api_key_env` (no auth header).
    pub api_key_env: Option<String>,
    /// Base URL (configured or the kind's default), `http://` or `https://`, without a
    /// trailing `/`.
    pub base_url: String,
    /// Per-attempt timeout (default 30s).
    pub timeout: Duration,
    /// Retries after the first attempt (default 1, at most 10).
    pub retries: u32,
    /// Circuit-breaker settings.
    pub breaker: BreakerSettings,
    /// Default sampling temperature, 0..=2.
    pub temperature: Option<f32>,
    /// Default completion length limit, at least 1.
    pub max_tokens: Option<u32>,
    /// Default nucleus-sampling mass, 0..=1.
    pub top_p: Option<f32>,
    /// Default stop sequences (empty: none).
    pub stop: Vec<String>,
    /// Set for an embeddings provider: the size of its vectors. It then serves
    /// `/v1/embeddings` only; without it, chat only.
    pub dimensions: Option<u32>,
}

/// How a chain orders its providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Try providers in the listed order (the default).
    #[default]
    Priority,
    /// Pick the first provider by weight, then fall back through the rest.
    Weighted,
}

impl Strategy {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One provider in a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainMember {
    /// A key of [`Config::providers`].
    pub name: String,
    /// Finite and > 0 for weighted chains; always `None` for priority chains.
    pub weight: Option<f64>,
}

/// One `[chains.<name>]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainConfig {
    /// Ordering strategy (default priority).
    pub strategy: Strategy,
    /// Members, in the configured order; non-empty, no duplicates.
    pub providers: Vec<ChainMember>,
    /// Deadline for the whole request, across attempts.
    pub timeout: Option<Duration>,
    /// Streaming: deadline for the first token of an attempt.
    pub ttft_timeout: Option<Duration>,
    /// Streaming: longest allowed gap between chunks.
    pub idle_timeout: Option<Duration>,
    /// Which configurable error kinds try the next provider (`fall_through_on`).
    pub fall_through: backstop::FallThrough,
    /// What a request does when every breaker is open.
    pub when_all_open: WhenAllOpenSetting,
    /// The chain's retry budget; `None` when turned off.
    pub retry_budget: Option<backstop::RetryBudget>,
    /// Streaming: continue a broken stream on the next provider (`stream_resume`).
    pub stream_resume: bool,
    /// Streaming: at most this many resumes per request (default 3).
    pub max_resumes: u32,
    /// Hedging: when to start the next provider beside a slow first one, and the share of
    /// requests that may be hedged (`hedge_after`, `hedge_budget`).
    pub hedge: Option<(backstop::HedgeAfter, f64)>,
    /// For a chain of embeddings providers, the vector size they all declare.
    pub dimensions: Option<u32>,
}

impl Config {
    /// Reads and validates the config file at `path`; messages name the file as given.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read, otherwise as [`Config::parse`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: origin.clone(),
            error,
        })?;
        Config::parse(&text, &origin)
    }

    /// Parses and validates config text; `origin` (usually the file name) prefixes messages.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] for malformed TOML, [`ConfigError::Invalid`] for unknown keys,
    /// wrong types and failed validation.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(err) => return Err(syntax_error(text, origin, &err)),
        };
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc.clone()))
            .map_err(|err| deserialize_error(text, origin, &doc, &err))?;
        build(raw).map_err(|issue| {
            let span = locate(&doc, &issue.path.0, issue.target);
            ConfigError::Invalid(Box::new(Diagnostic::new(
                text,
                origin,
                span.start,
                Some(issue.path.to_string()),
                issue.message,
            )))
        })
    }
}
