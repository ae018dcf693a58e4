//! Config errors: one line, `file:line:column: key.path: what is wrong`.

use std::fmt;

use toml::Spanned;
use toml::de::DeTable;

use super::locate::path_at;
use super::{SECRET_HINT, SECRET_KEYS};

/// Why a config could not be loaded. `Display` is one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config file: {error}")]
    Read {
        /// The path as given.
        file: String,
        /// The underlying I/O error (part of the message, so not also its `source()`: a
        /// printed error chain would say it twice).
        error: std::io::Error,
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
    pub(super) fn new(
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

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
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

pub(super) fn syntax_error(text: &str, origin: &str, err: &toml::de::Error) -> ConfigError {
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

pub(super) fn deserialize_error(
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
