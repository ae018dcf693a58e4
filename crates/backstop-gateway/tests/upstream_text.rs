//! Upstream text is untrusted (issue 16, items 1 and 4): an upstream that echoes our request
//! headers (a debugging proxy, a careless compatible server) must not leak the provider keys
//! to clients, logs, `/metrics` or `/v1/breakers`; and an upstream body with a newline and a
//! fake log record must not become a log line of its own. Run against the real binary, logs
//! captured from its stderr (TRACE for the secrets check).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;
mod upstream;

use std::sync::{Arc, Mutex};

use serde_json::json;
use upstream::{Reply, Upstream};

const OPENAI_KEY: &str = "sk-LEAKME-openai-0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-LEAKME-anthropic-fedcba987654";
const COMPAT_KEY: &str = "LEAKME-compat-key-55aa";
const CLIENT_KEY: &str = "ck-LEAKME-client-77";

fn config(openai: &Upstream, anthropic: &Upstream, compat: &Upstream) -> String {
    format!(
        "[server]\nclient_keys_env = \"CK\"\n\
         [providers.openai]\nkind = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"OK\"\nbase_url = \"{}\"\nretries = 0\nbreaker = {{ failure_threshold = 1000 }}\n\
         [providers.anthropic]\nkind = \"anthropic\"\nmodel = \"claude-x\"\napi_key_env = \"AK\"\nbase_url = \"{}\"\nretries = 0\nbreaker = {{ failure_threshold = 1000 }}\n\
         [providers.compat]\nkind = \"openai-compatible\"\nmodel = \"local\"\napi_key_env = \"XK\"\nbase_url = \"{}\"\nretries = 0\nbreaker = {{ failure_threshold = 1000 }}\n\
         [chains.default]\nproviders = [\"openai\", \"anthropic\", \"compat\"]\n",
        openai.openai_base_url(),
        anthropic.base_url(),
        compat.openai_base_url(),
    )
}

fn ask(stream: bool) -> serde_json::Value {
    json!({"model": "default", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_echoed_by_an_upstream_reach_no_client_log_or_metric() {
    let sent = Arc::new(Mutex::new(String::new()));
    let s = sent.clone();
    // A debugging proxy: 401 with the request headers as plain text.
    let openai = Upstream::start(move |req| {
        s.lock().unwrap().push_str(&req.header_lines());
        Reply::text(
            401,
            format!("401 Unauthorized\nyou sent:\n{}", req.header_lines()),
        )
    })
    .await;
    let s = sent.clone();
    // A provider-shaped error whose message quotes the headers (passed on, scrubbed).
    let anthropic = Upstream::start(move |req| {
        s.lock().unwrap().push_str(&req.header_lines());
        Reply::json(
            500,
            json!({"type": "error", "error": {"type": "api_error", "message": format!("request was: {}", req.header_lines())}}),
        )
    })
    .await;
    let s = sent.clone();
    // A compatible server that fails in-band: in the stream, or in a 200 body.
    let compat = Upstream::start(move |req| {
        s.lock().unwrap().push_str(&req.header_lines());
        let error = json!({"error": {"message": format!("bad key in {}", req.header_lines()), "type": "server_error"}});
        if req.stream() {
            Reply::sse([error.to_string()])
        } else {
            Reply::json(200, error)
        }
    })
    .await;
    let mut gw = binary::Gateway::start(
        &config(&openai, &anthropic, &compat),
        binary::Launch {
            env: &[
                ("CK", CLIENT_KEY),
                ("OK", OPENAI_KEY),
                ("AK", ANTHROPIC_KEY),
                ("XK", COMPAT_KEY),
            ],
            rust_log: Some("trace"),
            ..Default::default()
        },
    );
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut seen = String::new();
    for stream in [false, true, false, true] {
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&ask(stream))
            .send()
            .await
            .unwrap();
        seen.push_str(&format!("{}\n", r.status()));
        seen.push_str(&r.text().await.unwrap());
    }
    for path in ["/metrics", "/v1/breakers"] {
        let r = c
            .get(gw.url(path))
            .bearer_auth(CLIENT_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        seen.push_str(&r.text().await.unwrap());
    }
    let status = gw.stop();
    assert!(status.success(), "{status:?}");
    let logs = gw.logs();

    // Not vacuous: every key went upstream and came back in the upstreams' text, the
    // client was told what each provider said, and the log is at TRACE.
    let sent = sent.lock().unwrap().clone();
    for key in [OPENAI_KEY, ANTHROPIC_KEY, COMPAT_KEY] {
        assert!(sent.contains(key), "{key} never went upstream");
    }
    assert!(
        seen.contains("auth (HTTP 401): Unauthorized (error body in no known format"),
        "{seen}"
    );
    assert!(seen.contains("request was: "), "{seen}");
    assert!(seen.contains("[REDACTED]"), "{seen}");
    assert!(logs.contains("TRACE"), "not a trace log");
    assert!(logs.contains("all providers failed"), "{logs}");
    // Nothing of any key anywhere.
    for (what, text) in [("client responses and endpoints", &seen), ("logs", &logs)] {
        assert!(
            !text.contains("LEAKME"),
            "a key leaked into the {what}:\n{text}"
        );
    }
}

/// A fake record an upstream slips into its error text.
const FAKE: &str =
    "2030-01-01T00:00:00.000000Z  INFO backstop::request: chain=default status=200 INJECTED";

async fn injecting_upstreams() -> (Upstream, Upstream, Upstream) {
    // Plain text body (not relayed; logged scrubbed at debug level).
    let a = Upstream::start(|_| Reply::text(502, format!("upstream broke\n{FAKE}\n"))).await;
    // The provider's own message field (relayed and logged).
    let b = Upstream::start(|_| {
        Reply::json(
            500,
            json!({"type": "error", "error": {"type": "api_error", "message": format!("boom\r\n{FAKE}")}}),
        )
    })
    .await;
    // An in-band stream error (after the stream is open).
    let c = Upstream::start(|req| {
        let error = json!({"error": {"message": format!("stream broke\n{FAKE}\u{2028}{FAKE}"), "type": "server_error"}});
        if req.stream() {
            Reply::sse([error.to_string()])
        } else {
            Reply::json(500, error)
        }
    })
    .await;
    (a, b, c)
}

async fn drive(gw: &binary::Gateway) {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    for stream in [false, true] {
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&ask(stream))
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        assert!(
            body.contains("INJECTED"),
            "the message did reach the client: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_newline_never_starts_a_text_log_line() {
    let (a, b, c) = injecting_upstreams().await;
    let env = [
        ("CK", CLIENT_KEY),
        ("OK", OPENAI_KEY),
        ("AK", ANTHROPIC_KEY),
        ("XK", COMPAT_KEY),
    ];
    let mut gw = binary::Gateway::start(
        &config(&a, &b, &c),
        binary::Launch {
            env: &env,
            rust_log: Some("debug"),
            ..Default::default()
        },
    );
    drive(&gw).await;
    assert!(gw.stop().success());
    let logs = gw.logs();
    let carrying: Vec<&str> = logs.lines().filter(|l| l.contains("INJECTED")).collect();
    assert!(
        carrying.len() >= 3,
        "the injected text was logged (escaped) from each upstream:\n{logs}"
    );
    for line in logs.lines() {
        assert!(
            !line.starts_with("2030-01-01"),
            "an upstream started a log line: {line:?}\n{logs}"
        );
        assert!(!line.contains('\u{2028}'), "a raw line separator: {line:?}");
    }
    // Every line carrying the text is one of ours: our timestamp and level first.
    for line in carrying {
        assert!(
            !line.starts_with("2030") && line.contains(" backstop"),
            "{line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_stay_one_object_per_line_with_hostile_upstream_text() {
    let (a, b, c) = injecting_upstreams().await;
    let env = [
        ("CK", CLIENT_KEY),
        ("OK", OPENAI_KEY),
        ("AK", ANTHROPIC_KEY),
        ("XK", COMPAT_KEY),
    ];
    let mut gw = binary::Gateway::start(
        &config(&a, &b, &c),
        binary::Launch {
            env: &env,
            rust_log: Some("debug"),
            args: &["--log-format", "json"],
            shell_prefix: None,
        },
    );
    drive(&gw).await;
    assert!(gw.stop().success());
    let logs = gw.logs();
    assert!(logs.contains("INJECTED"));
    for line in logs.lines().filter(|l| !l.is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
    }
}
