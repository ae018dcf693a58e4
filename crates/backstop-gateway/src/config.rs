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
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::duration::format_duration;

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
/// Default per-attempt `providers.<name>.timeout`.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `providers.<name>.retries`.
pub const DEFAULT_RETRIES: u32 = 1;
/// Largest allowed `providers.<name>.retries`.
pub const MAX_RETRIES: u32 = 10;

const SECRET_HINT: &str = "secrets are not allowed in the config file";
/// Keys that would hold a secret, and the `*_env` key to use instead.
const SECRET_KEYS: [(&str, &str); 3] = [
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
    /// Time allowed to receive request headers (default 10s).
    pub header_timeout: Duration,
    /// Time allowed to receive the request body (default 30s).
    pub body_timeout: Duration,
    /// Time in-flight requests get to finish on shutdown (default 30s).
    pub shutdown_grace: Duration,
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

/// Circuit-breaker settings of one provider (`breaker = { ... }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failures within `window` that open the breaker (default 5, 1..=10000).
    pub failure_threshold: u32,
    /// Sliding window over which failures are counted (default 60s).
    pub window: Duration,
    /// How long the breaker stays open before probing (default 30s).
    pub recovery_timeout: Duration,
    /// Concurrent probe requests allowed while half-open (default 1, 1..=1000).
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(30),
            half_open_probes: 1,
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
}

impl Config {
    /// Reads and validates the config file at `path`; messages name the file as given.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read, otherwise as [`Config::parse`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: origin.clone(),
            source,
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

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a config could not be loaded. `Display` is one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config file: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{0}")]
    Syntax(Box<Diagnostic>),
    /// Valid TOML, but not a valid config: unknown key, wrong type or failed validation.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

impl ConfigError {
    /// Where and what, for syntax and validation errors.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax(d) | ConfigError::Invalid(d) => Some(d),
        }
    }
}

/// A located config problem: `origin:line:column: key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name (or other origin) given to [`Config::parse`].
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted key path such as `chains.default.providers[1]`, when one applies.
    pub key_path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    fn new(
        text: &str,
        origin: &str,
        offset: usize,
        key_path: Option<String>,
        message: String,
    ) -> Self {
        let (line, column) = line_col(text, offset);
        Self {
            origin: origin.to_owned(),
            line,
            column,
            key_path: key_path.filter(|p| !p.is_empty()),
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if let Some(path) = &self.key_path {
            write!(f, "{path}: ")?;
        }
        // Keep the promise of one line even if an upstream message has several.
        let mut lines = self.message.lines();
        if let Some(first) = lines.next() {
            f.write_str(first)?;
        }
        for rest in lines {
            write!(f, " {}", rest.trim())?;
        }
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn syntax_error(text: &str, origin: &str, err: &toml::de::Error) -> ConfigError {
    let span = err.span().unwrap_or(0..0);
    let mut message = format!("TOML syntax error: {}", err.message());
    if err.message() == "duplicate key"
        && let Some(key) = text.get(span.clone())
    {
        message = format!("TOML syntax error: duplicate key `{}`", key.trim());
    }
    // Best effort: if the parser recovered enough of the document around the error, name
    // the key it happened in.
    let (partial, _) = DeTable::parse_recoverable(text);
    let path = path_at(&partial, &span);
    ConfigError::Syntax(Box::new(Diagnostic::new(
        text,
        origin,
        span.start,
        Some(path.to_string()),
        message,
    )))
}

fn deserialize_error(
    text: &str,
    origin: &str,
    doc: &Spanned<DeTable<'_>>,
    err: &toml::de::Error,
) -> ConfigError {
    let span = err.span().unwrap_or(0..0);
    let path = path_at(doc, &span);
    let message = err.message();
    let secret_env = SECRET_KEYS
        .iter()
        .find(|(key, _)| message.starts_with(&format!("unknown field `{key}`")))
        .map(|(_, env)| env);
    let message = if let Some(env) = secret_env {
        format!("{SECRET_HINT}; set `{env}` to the name of an environment variable")
    } else if let Some(rest) = message.strip_prefix("unknown field") {
        format!("unknown key{rest}")
    } else if let Some(rest) = message.strip_prefix("missing field") {
        format!("missing required key{rest}")
    } else {
        message.to_owned()
    };
    ConfigError::Invalid(Box::new(Diagnostic::new(
        text,
        origin,
        span.start,
        Some(path.to_string()),
        message,
    )))
}

// ---------------------------------------------------------------------------------------
// Key paths and spans
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A path such as `providers.openai.breaker.window` or `chains.default.providers[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KeyPath(Vec<Seg>);

impl KeyPath {
    fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    fn index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether an issue is about a key's presence (point at the key) or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Key,
    Value,
}

/// The span for `path` in the document: the deepest existing prefix of the path; the key or
/// the value of the final segment depending on `target`.
fn locate(doc: &Spanned<DeTable<'_>>, path: &[Seg], target: Target) -> Range<usize> {
    let root = doc.span().start..doc.span().start;
    locate_in_table(doc.get_ref(), path, target, root)
}

fn locate_in_table(
    table: &DeTable<'_>,
    path: &[Seg],
    target: Target,
    fallback: Range<usize>,
) -> Range<usize> {
    let Some((Seg::Key(want), rest)) = path.split_first() else {
        return fallback;
    };
    let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref() == want) else {
        return fallback;
    };
    if rest.is_empty() && target == Target::Key {
        return key.span();
    }
    locate_in_value(value, rest, target)
}

fn locate_in_value(value: &Spanned<DeValue<'_>>, path: &[Seg], target: Target) -> Range<usize> {
    match (value.get_ref(), path.first()) {
        (DeValue::Table(table), Some(Seg::Key(_))) => {
            locate_in_table(table, path, target, value.span())
        }
        (DeValue::Array(items), Some(Seg::Index(i))) => match items.get(*i) {
            Some(item) => locate_in_value(item, &path[1..], target),
            None => value.span(),
        },
        _ => value.span(),
    }
}

/// The key path of the smallest key or value whose span contains `span`.
fn path_at(doc: &Spanned<DeTable<'_>>, span: &Range<usize>) -> KeyPath {
    let mut best: Option<(usize, Vec<Seg>)> = None;
    let mut prefix = Vec::new();
    search_table(doc.get_ref(), span, &mut prefix, &mut best);
    KeyPath(best.map(|(_, path)| path).unwrap_or_default())
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn consider(
    candidate: &Range<usize>,
    span: &Range<usize>,
    prefix: &[Seg],
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    if !contains(candidate, span) {
        return;
    }
    let len = candidate.len();
    let better = match best {
        None => true,
        Some((best_len, best_path)) => {
            len < *best_len || (len == *best_len && prefix.len() > best_path.len())
        }
    };
    if better {
        *best = Some((len, prefix.to_vec()));
    }
}

fn search_table(
    table: &DeTable<'_>,
    span: &Range<usize>,
    prefix: &mut Vec<Seg>,
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    for (key, value) in table.iter() {
        prefix.push(Seg::Key(key.get_ref().to_string()));
        consider(&key.span(), span, prefix, best);
        search_value(value, span, prefix, best);
        prefix.pop();
    }
}

fn search_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    prefix: &mut Vec<Seg>,
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    consider(&value.span(), span, prefix, best);
    match value.get_ref() {
        DeValue::Table(table) => search_table(table, span, prefix, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(Seg::Index(i));
                search_value(item, span, prefix, best);
                prefix.pop();
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Raw (as-written) structures
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawConfig {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    providers: Option<BTreeMap<String, RawProvider>>,
    #[serde(default)]
    chains: Option<BTreeMap<String, RawChain>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawServer {
    listen: Option<String>,
    client_keys_env: Option<String>,
    admin_key_env: Option<String>,
    max_body_bytes: Option<Int>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    body_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    shutdown_grace: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawProvider {
    kind: Option<ProviderKind>,
    model: Option<String>,
    api_key_env: Option<String>,
    base_url: Option<String>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    timeout: Option<Duration>,
    retries: Option<Int>,
    breaker: Option<RawBreaker>,
    temperature: Option<Float>,
    max_tokens: Option<Int>,
    top_p: Option<Float>,
    stop: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawBreaker {
    failure_threshold: Option<Int>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    window: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    recovery_timeout: Option<Duration>,
    half_open_probes: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawChain {
    strategy: Option<Strategy>,
    providers: Option<Vec<RawMember>>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    ttft_timeout: Option<Duration>,
    #[serde(default, with = "crate::duration::serde_str::option")]
    idle_timeout: Option<Duration>,
}

/// A chain member: `"name"` or `{ name = "...", weight = 0.5 }`.
struct RawMember {
    name: String,
    weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawMemberTable {
    name: String,
    weight: Option<Float>,
}

impl<'de> Deserialize<'de> for RawMember {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = RawMember;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a provider name or a table { name = \"...\", weight = 0.5 }")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMember, E> {
                Ok(RawMember {
                    name: v.to_owned(),
                    weight: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMember, A::Error> {
                // Delegate to the derived impl so toml keeps key spans for its errors.
                let table =
                    RawMemberTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawMember {
                    name: table.name,
                    weight: table.weight.map(|w| w.0),
                })
            }
        }

        deserializer.deserialize_any(MemberVisitor)
    }
}

/// An integer with a friendlier type error than `i64`'s, range-checked later.
#[derive(Clone, Copy)]
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
        }

        deserializer.deserialize_i64(IntVisitor)
    }
}

/// A number (integer or float), range-checked later.
#[derive(Clone, Copy)]
struct Float(f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FloatVisitor;

        impl Visitor<'_> for FloatVisitor {
            type Value = Float;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }

            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }

            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
        }

        deserializer.deserialize_f64(FloatVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

struct Issue {
    path: KeyPath,
    target: Target,
    message: String,
}

fn at_value(path: KeyPath, message: impl Into<String>) -> Issue {
    Issue {
        path,
        target: Target::Value,
        message: message.into(),
    }
}

fn at_key(path: KeyPath, message: impl Into<String>) -> Issue {
    Issue {
        path,
        target: Target::Key,
        message: message.into(),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn env_name(path: KeyPath, value: String) -> Result<String, Issue> {
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

fn positive(path: KeyPath, duration: Duration) -> Result<Duration, Issue> {
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

fn positive_opt(path: KeyPath, duration: Option<Duration>) -> Result<Option<Duration>, Issue> {
    duration.map(|d| positive(path, d)).transpose()
}

fn int_in<T: TryFrom<i64>>(path: KeyPath, value: Int, min: i64, max: i64) -> Result<T, Issue> {
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
fn float_in(path: KeyPath, value: Float, min: f64, max: f64) -> Result<f32, Issue> {
    if value.0.is_finite() && (min..=max).contains(&value.0) {
        Ok(value.0 as f32)
    } else {
        Err(at_value(
            path,
            format!("must be between {min} and {max}, got {}", value.0),
        ))
    }
}

fn required<T>(value: Option<T>, path: KeyPath, hint: &str) -> Result<T, Issue> {
    let key = match path.0.last() {
        Some(Seg::Key(key)) => key.clone(),
        _ => String::new(),
    };
    value.ok_or_else(|| at_key(path, format!("missing required key `{key}`{hint}")))
}

fn build(raw: RawConfig) -> Result<Config, Issue> {
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

fn build_server(path: &KeyPath, raw: RawServer) -> Result<ServerConfig, Issue> {
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
    })
}

fn build_provider(path: &KeyPath, raw: RawProvider) -> Result<ProviderConfig, Issue> {
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

fn build_breaker(path: &KeyPath, raw: RawBreaker) -> Result<BreakerSettings, Issue> {
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

fn build_chain(
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
