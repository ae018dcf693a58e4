//! Secrets: distinctive provider, client and admin keys must appear nowhere a user or an
//! operator can see: trace-level logs (ours and every library's), error responses (plain and
//! streamed), `/metrics`, `/v1/breakers`, `/v1/models`, health endpoints, `Debug` output, panics.
//! The keys are supplied through the env closure, never the process environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop_sim::{Fault, SimConfig};
use reliability_support::{Gateway, PROVIDERS, client, provider_section, start_sims};

const OPENAI_KEY: &str = "sk-SECRET-openai-7f3a9c1d";
const ANTHROPIC_KEY: &str = "sk-ant-SECRET-anthropic-b41e0f77";
const GROQ_KEY: &str = "gsk_SECRET_groq_52d06a18";
const CLIENT_KEY: &str = "ck-SECRET-client-9e1b44c2";
const CLIENT_KEY_2: &str = "ck-SECRET-client2-0aa7e913";
const ADMIN_KEY: &str = "ak-SECRET-admin-33c7d5e0";
const ALL: [&str; 6] = [
    OPENAI_KEY,
    ANTHROPIC_KEY,
    GROQ_KEY,
    CLIENT_KEY,
    CLIENT_KEY_2,
    ADMIN_KEY,
];

/// Everything written by the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Finds any secret (or a distinctive 12-char piece of one) in `text`.
fn leaks(text: &str) -> Vec<&'static str> {
    ALL.iter()
        .copied()
        .filter(|k| text.contains(k) || text.contains(&k[k.len() - 12..]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_leak() {
    // Trace level for every target, ours and the libraries' (log records included).
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .try_init()
        .expect("install the subscriber");
    let panics = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let panics = panics.clone();
        std::panic::set_hook(Box::new(move |info| {
            panics.lock().unwrap().push(info.to_string());
        }));
    }

    let sims = start_sims(&vec![SimConfig::default(); 3]).await;
    let mut text = String::from(
        "[server]\nclient_keys_env = \"REL_CLIENT_KEYS\"\nadmin_key_env = \"REL_ADMIN_KEY\"\n",
    );
    for (name, sim) in PROVIDERS.iter().zip(&sims) {
        text.push_str(&provider_section(
            name,
            sim,
            "timeout = \"1s\"\nretries = 1\nbreaker = { failure_threshold = 2, recovery_timeout = \"200ms\" }",
        ));
    }
    // A provider whose key variable is unset: its Auth error names the variable, not a key.
    text.push_str(&format!(
        "\n[providers.nokey]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"REL_UNSET_KEY\"\nbase_url = \"{}\"\n",
        sims[0].openai_base_url()
    ));
    text.push_str(
        "\n[chains.default]\nproviders = [\"openai\", \"anthropic\", \"groq\"]\ntimeout = \"5s\"\n\
         \n[chains.nokey]\nproviders = [\"nokey\"]\n",
    );
    let env: HashMap<String, String> = [
        ("REL_OPENAI_KEY", OPENAI_KEY.to_owned()),
        ("REL_ANTHROPIC_KEY", ANTHROPIC_KEY.to_owned()),
        ("REL_GROQ_KEY", GROQ_KEY.to_owned()),
        ("REL_CLIENT_KEYS", format!("{CLIENT_KEY},{CLIENT_KEY_2}")),
        ("REL_ADMIN_KEY", ADMIN_KEY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = backstop_gateway::config::Config::parse(&text, "secrets.toml").unwrap();
    let gw = Gateway::start(sims, &text, env, Duration::from_secs(5)).await;
    let c = client(4);
    let chat = gw.url("/v1/chat/completions");
    let mut seen = String::new();

    let mut record = |what: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &str| {
        seen.push_str(&format!("== {what}: {status}\n"));
        for (k, v) in headers {
            seen.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        seen.push_str(body);
        seen.push('\n');
    };
    macro_rules! send {
        ($what:expr, $req:expr) => {{
            let r = $req.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await.unwrap();
            record($what, status, &headers, &body);
            (status, body)
        }};
    }
    let ask = |stream: bool, chain: &str| {
        serde_json::json!({
            "model": chain,
            "messages": [{"role": "user", "content": "secret test"}],
            "stream": stream,
        })
    };

    // A normal answer (the keys do travel upstream).
    let (s, _) = send!(
        "ok",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(false, "default"))
    );
    assert_eq!(s, 200);
    // Upstream 401s on every provider: the providers' auth errors reach the client.
    for sim in &gw.sims {
        sim.fail_next(4, Fault::Status(401));
    }
    let (s, body) = send!(
        "401s",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(false, "default"))
    );
    assert!(s >= 400, "{body}");
    // 500s until the breakers open, streamed and not.
    for sim in &gw.sims {
        sim.fail_next(20, Fault::Status(500));
    }
    for i in 0..6 {
        send!(
            "500s",
            c.post(&chat)
                .bearer_auth(CLIENT_KEY_2)
                .json(&ask(i % 2 == 0, "default"))
        );
    }
    let (s, body) = send!(
        "breakers open",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(false, "default"))
    );
    assert_eq!(s, 503, "{body}");
    // Streams that fail after their first chunk.
    for sim in &gw.sims {
        sim.clear_faults();
        sim.fail_next(1, Fault::Disconnect { after_chunks: 2 });
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    for b in &gw.app.breakers {
        b.reset();
    }
    let (_, body) = send!(
        "mid-stream failure",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(true, "default"))
    );
    assert!(body.contains("\"error\""), "{body}");
    for sim in &gw.sims {
        sim.fail_next(
            1,
            Fault::InBandError {
                after_chunks: 1,
                status: 401,
            },
        );
    }
    send!(
        "in-band 401",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(true, "default"))
    );
    // The provider without a key.
    let (s, body) = send!(
        "missing key",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(false, "nokey"))
    );
    assert!(s >= 400 && body.contains("REL_UNSET_KEY"), "{body}");
    // Wrong and partial client keys, admin endpoints with the wrong key and the right one.
    send!(
        "wrong key",
        c.post(&chat)
            .bearer_auth(&CLIENT_KEY[..CLIENT_KEY.len() - 1])
            .json(&ask(false, "default"))
    );
    send!(
        "provider key as client key",
        c.post(&chat)
            .bearer_auth(OPENAI_KEY)
            .json(&ask(false, "default"))
    );
    send!(
        "trip with client key",
        c.post(gw.url("/v1/breakers/openai/trip"))
            .bearer_auth(CLIENT_KEY)
    );
    send!(
        "trip",
        c.post(gw.url("/v1/breakers/openai/trip"))
            .bearer_auth(ADMIN_KEY)
    );
    send!(
        "while tripped",
        c.post(&chat)
            .bearer_auth(CLIENT_KEY)
            .json(&ask(false, "default"))
    );
    send!(
        "reset",
        c.post(gw.url("/v1/breakers/openai/reset"))
            .bearer_auth(ADMIN_KEY)
    );
    // Every read-only endpoint.
    for path in [
        "/metrics",
        "/v1/breakers",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/nope",
    ] {
        send!(path, c.get(gw.url(path)).bearer_auth(CLIENT_KEY));
        send!(path, c.get(gw.url(path)).bearer_auth(ADMIN_KEY));
    }

    // Debug output of everything that holds or built from a key.
    seen.push_str(&format!("{config:?}\n{:?}\n", gw.app.keys));
    seen.push_str(&format!("{:?}\n{:?}\n", gw.app.breakers, gw.app.chains));
    seen.push_str(&gw.app.metrics.render());
    let providers = format!(
        "{:?} {:?} {:?}",
        backstop::providers::OpenAiLlm::new("m").api_key(OPENAI_KEY),
        backstop::providers::AnthropicLlm::new("m").api_key(ANTHROPIC_KEY),
        backstop::providers::GroqLlm::new("m").api_key(GROQ_KEY),
    );
    seen.push_str(&providers);

    // Not vacuous: the keys did go upstream, and the log saw the failures.
    let sent: Vec<String> = gw
        .sims
        .iter()
        .flat_map(|s| s.requests())
        .flat_map(|r| {
            [r.header("authorization"), r.header("x-api-key")]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for key in [OPENAI_KEY, ANTHROPIC_KEY, GROQ_KEY] {
        assert!(
            sent.iter().any(|h| h.contains(key)),
            "{key} was never sent upstream: the test would prove nothing"
        );
    }
    gw.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let lines = log.lines().count();
    for needle in [
        "all providers failed",
        "circuit breaker state changed",
        "stream failed after the first chunk",
        "TRACE",
    ] {
        assert!(log.contains(needle), "the captured log lacks {needle:?}");
    }
    println!(
        "secrets: {lines} log lines ({} bytes), {} bytes of responses and Debug output searched; {} upstream requests carried a key",
        log.len(),
        seen.len(),
        sent.len()
    );

    let panics = panics.lock().unwrap().clone();
    let _ = std::panic::take_hook();
    assert!(panics.is_empty(), "panics: {panics:?}");
    // The search itself works.
    assert_eq!(leaks(&format!("x{GROQ_KEY}x")), vec![GROQ_KEY]);
    assert_eq!(leaks(&ADMIN_KEY[4..]), vec![ADMIN_KEY]);
    let in_log = leaks(&log);
    let in_seen = leaks(&seen);
    assert!(in_log.is_empty(), "secrets in the trace log: {in_log:?}");
    assert!(
        in_seen.is_empty(),
        "secrets in responses or Debug output: {in_seen:?}"
    );
}
