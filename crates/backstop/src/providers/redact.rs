//! Upstream text made safe to keep: before a provider's words become a [`ProviderError`]
//! message (shown to callers, logged, relayed by the gateway) the provider's own key and
//! anything shaped like a credential are replaced by `[REDACTED]`, control characters are
//! escaped so a message is always one line, and the length is bounded.
//!
//! [`ProviderError`]: crate::ProviderError

use std::fmt::Write as _;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::error::MAX_MESSAGE_LEN;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Header and field names whose value is a credential (lower case, compared ignoring case).
const CREDENTIAL_NAMES: [&str; 7] = [
    "proxy-authorization",
    "authorization",
    "x-goog-api-key",
    "x-api-key",
    "api-key",
    "api_key",
    "apikey",
];

/// Auth schemes that may stand between a credential name and the credential.
const SCHEMES: [&str; 3] = ["bearer", "basic", "token"];

/// Prefixes of provider keys (OpenAI and Anthropic `sk-`, Groq `gsk_`, xAI `xai-`); a word
/// starting with one and at least [`MIN_KEY_TAIL`] key characters long is taken for a key.
const KEY_PREFIXES: [&str; 3] = ["sk-", "gsk_", "xai-"];
const MIN_KEY_TAIL: usize = 16;

/// Scrubs upstream text for one provider: knows that provider's key.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secret: Option<Arc<SecretString>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

impl Redactor {
    /// A redactor that also removes this key (ignored when shorter than 4 characters: too
    /// short to be a real key, and it would mangle ordinary words).
    pub(crate) fn new(secret: Option<&SecretString>) -> Self {
        Self {
            secret: secret
                .filter(|s| s.expose_secret().trim().len() >= 4)
                .map(|s| Arc::new(s.clone())),
        }
    }

    /// `text` with secrets redacted, control characters escaped, at most about
    /// [`MAX_MESSAGE_LEN`] bytes.
    pub(crate) fn clean(&self, text: &str) -> String {
        let mut s = match &self.secret {
            Some(k) => text.replace(k.expose_secret().trim(), REDACTED),
            None => text.to_owned(),
        };
        s = redact_credentials(&s);
        bound(escape_controls(&s), MAX_MESSAGE_LEN)
    }

    /// The error with its message cleaned.
    pub(crate) fn error(&self, mut e: crate::ProviderError) -> crate::ProviderError {
        e.message = self.clean(&e.message);
        e
    }
}

/// Replaces the value after every credential name, the word after `Bearer`, and every
/// key-shaped word.
pub(crate) fn redact_credentials(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    // Byte ranges to replace, found on the lower-cased copy (same byte offsets: ASCII only).
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for name in CREDENTIAL_NAMES.iter().chain(SCHEMES[..1].iter()) {
        let mut from = 0;
        while let Some(i) = lower[from..].find(name) {
            let start = from + i;
            let end = start + name.len();
            from = end;
            // A name glued to a preceding letter or digit (`forbearer`) is not a name.
            if start > 0 && bytes[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let mut j = skip_separators(bytes, end);
            if j == end {
                // A name with no separator after it (`authorizationless`) is just a word.
                continue;
            }
            // Skip an auth scheme between the name and the value (`Authorization: Bearer x`).
            if let Some(scheme) = SCHEMES.iter().find(|s| lower[j..].starts_with(*s)) {
                let after = j + scheme.len();
                if bytes.get(after).is_some_and(|b| is_separator(*b)) {
                    j = skip_separators(bytes, after);
                }
            }
            let value_end = word_end(bytes, j);
            if value_end > j {
                ranges.push((j, value_end));
            }
        }
    }
    for prefix in KEY_PREFIXES {
        let mut from = 0;
        while let Some(i) = lower[from..].find(prefix) {
            let start = from + i;
            from = start + prefix.len();
            if start > 0 && is_key_byte(bytes[start - 1]) {
                continue;
            }
            let end = key_end(bytes, start);
            if end - start >= prefix.len() + MIN_KEY_TAIL {
                ranges.push((start, end));
            }
        }
    }
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if end <= at {
            continue;
        }
        let start = start.max(at);
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b':' | b'=' | b'"' | b'\'' | b'\\')
}

fn skip_separators(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| is_separator(*b)) {
        i += 1;
    }
    i
}

/// End of a credential value: up to whitespace, a quote, a backslash (JSON escapes) or
/// punctuation that ends a header or field. Stops only on ASCII bytes, so it always lands on
/// a char boundary.
fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'\\' | b',' | b';' | b'<' | b'>')
        {
            break;
        }
        i += 1;
    }
    i
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn key_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| is_key_byte(*b)) {
        i += 1;
    }
    i
}

/// Escapes characters that could split a log line or disguise text: C0/C1 controls, DEL,
/// Unicode line and paragraph separators, and bidirectional overrides (`\n`, `\u{1b}`).
/// For any text from outside (upstream bodies, headers, model names) that goes into a log.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut with `…`.
fn bound(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(text: &str) -> String {
        Redactor::new(Some(&SecretString::from("my-own-key-123"))).clean(text)
    }

    #[test]
    fn credentials_in_echoed_headers_are_redacted() {
        let echoed = "401 Unauthorized\nrequest headers:\nauthorization: Bearer abc.DEF-ghi_123\nx-api-key: plainkey42\ncontent-type: application/json";
        let out = clean(echoed);
        assert!(!out.contains("abc.DEF-ghi_123"), "{out}");
        assert!(!out.contains("plainkey42"), "{out}");
        assert!(out.contains("authorization: Bearer [REDACTED]"), "{out}");
        assert!(out.contains("x-api-key: [REDACTED]"), "{out}");
        assert!(out.contains("content-type: application/json"), "{out}");
        assert!(!out.contains('\n'), "one line: {out}");
    }

    #[test]
    fn json_shaped_credentials_and_key_shaped_words_are_redacted() {
        let body = r#"{"headers":{"Authorization":"Bearer sk-proj-AAAAAAAAAAAAAAAAAAAA","X-Api-Key":"k1"},"note":"key gsk_BBBBBBBBBBBBBBBBBBBB was refused","api_key=xyz"}"#;
        let out = clean(body);
        for secret in ["sk-proj-AAAA", "k1\"", "gsk_BBBB", "=xyz"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        // A JSON-escaped header inside a string.
        let out = clean(r#"{"error":"bad header \"authorization: Bearer tok123\""}"#);
        assert!(!out.contains("tok123"), "{out}");
    }

    #[test]
    fn the_providers_own_key_is_redacted_wherever_it_appears() {
        let out = clean("you sent my-own-key-123, which is revoked");
        assert_eq!(out, "you sent [REDACTED], which is revoked");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "The server had an error while processing your request.",
            "Incorrect API key provided.",
            "task-queue is full; sk-short is not a key",
            "forbearers and authorizationless prose",
        ] {
            assert_eq!(clean(text), text);
        }
    }

    #[test]
    fn control_characters_are_escaped_and_length_is_bounded() {
        let out =
            clean("boom\n2026-01-01T00:00:00Z  INFO backstop: admin key rotated\r\x1b[31m\u{2028}");
        assert_eq!(
            out,
            "boom\\n2026-01-01T00:00:00Z  INFO backstop: admin key rotated\\r\\u{1b}[31m\\u{2028}"
        );
        let long = clean(&"é".repeat(2000));
        assert!(long.len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
        assert!(long.ends_with('…'));
    }
}
