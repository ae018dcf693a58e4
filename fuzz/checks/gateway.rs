//! The checks behind the gateway fuzz targets, shared with the corpus replay test
//! (`crates/backstop-gateway/tests/fuzz_corpus.rs` includes this file): each takes raw bytes,
//! must not panic, and asserts the properties noted on it.
#![allow(dead_code)]

use backstop_gateway::config::Config;
use backstop_gateway::wire;

/// Request parsing: never panics. An accepted request names a chain and has a message,
/// at most four non-empty stop sequences and `max_tokens` in range; a refused one renders as
/// an OpenAI error body that is valid JSON and carries the message and param unchanged.
pub fn gateway_request(data: &[u8]) {
    match wire::parse_request(data) {
        Ok(req) => {
            assert!(!req.chain.trim().is_empty(), "{req:?}");
            let messages = &req.request.messages;
            assert!(!messages.is_empty(), "{req:?}");
            let config = &req.request.config;
            assert!(config.stop.len() <= 4, "{req:?}");
            assert!(config.stop.iter().all(|s| !s.is_empty()), "{req:?}");
            if let Some(n) = config.max_tokens {
                assert!((1..=1_000_000).contains(&n), "{req:?}");
            }
        }
        Err(bad) => {
            assert!(!bad.message.is_empty());
            let body = wire::error_body(
                &bad.message,
                "invalid_request_error",
                bad.param.as_deref(),
                None,
            );
            let v: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => panic!("error body is not JSON ({e}): {body:?}"),
            };
            assert_eq!(v["error"]["message"].as_str(), Some(bad.message.as_str()));
            assert_eq!(v["error"]["param"].as_str(), bad.param.as_deref());
        }
    }
}

/// Config parsing (UTF-8 input only; a config file that is not UTF-8 fails when read): never
/// panics, and an error renders as one line with a 1-based position.
pub fn config_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = Config::parse(text, "fuzz.toml") {
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line:?}");
        assert!(line.starts_with("fuzz.toml:"), "{line:?}");
        if let Some(d) = err.diagnostic() {
            assert!(d.line >= 1 && d.column >= 1, "{d:?}");
            assert!(d.line <= text.matches('\n').count() + 1, "{d:?}");
        }
    }
}

/// Anthropic Messages request parsing (`POST /v1/messages`): never panics. An accepted request
/// names a chain, has a message, `max_tokens` in range and is answered in Anthropic's format; a
/// refused one says what is wrong, naming a bounded JSON path.
pub fn messages_request(data: &[u8]) {
    match backstop_gateway::messages_request::parse_messages_request(data) {
        Ok(req) => {
            assert!(!req.chain.trim().is_empty(), "{req:?}");
            assert!(!req.request.messages.is_empty(), "{req:?}");
            assert_eq!(req.api, backstop::ApiFormat::Anthropic);
            let n = req.request.config.max_tokens;
            assert!(n.is_some_and(|n| (1..=1_000_000).contains(&n)), "{req:?}");
        }
        Err(bad) => {
            assert!(!bad.message.is_empty());
            if let Some(p) = &bad.param {
                assert!(p.chars().count() <= 101, "{p}");
            }
        }
    }
}
