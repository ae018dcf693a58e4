//! Harness for the reliability tests (chaos, hostile input, secrets): simulators on loopback,
//! a gateway built from a config text with keys supplied through an env closure (never the
//! process environment), served on an ephemeral port, plus checkers for the OpenAI wire shapes
//! and the simulators' deterministic replies.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use backstop_gateway::app::App;
use backstop_gateway::config::Config;
use backstop_gateway::reload::Live;
use backstop_gateway::serve::{ServeOptions, Signals, Stopped, serve};
use backstop_sim::{SimConfig, SimHandle, Simulator};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub mod traffic;

/// Provider names (also the simulator flavours), in the default chain's priority order.
pub const PROVIDERS: [&str; 3] = ["openai", "anthropic", "groq"];

/// The base URL a provider of this kind uses on `sim`.
pub fn base_url(kind: &str, sim: &SimHandle) -> String {
    if kind == "openai" {
        sim.openai_base_url()
    } else {
        sim.base_url()
    }
}

/// A `[providers.NAME]` section of kind NAME pointing at `sim`; `extra` lines are appended.
pub fn provider_section(name: &str, sim: &SimHandle, extra: &str) -> String {
    format!(
        "\n[providers.{name}]\nkind = \"{name}\"\nmodel = \"{name}-model\"\n\
         api_key_env = \"REL_{upper}_KEY\"\nbase_url = \"{url}\"\n{extra}\n",
        upper = name.to_uppercase(),
        url = base_url(name, sim),
    )
}

/// A running gateway in front of simulators.
pub struct Gateway {
    /// The gateway's address.
    pub addr: SocketAddr,
    /// Simulators in [`PROVIDERS`] order.
    pub sims: Vec<SimHandle>,
    /// The gateway's state.
    pub app: Arc<App>,
    shutdown: Option<mpsc::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<Stopped>>>,
}

/// Starts one simulator per entry of `sims` (in [`PROVIDERS`] order).
pub async fn start_sims(sims: &[SimConfig]) -> Vec<SimHandle> {
    let mut out = Vec::new();
    for c in sims {
        out.push(Simulator::start(c.clone()).await.expect("start simulator"));
    }
    out
}

/// A gateway over one simulator per [`PROVIDERS`] entry (all started with `sim`): a provider
/// section for each with `provider_extra`, then `chains` (the chain sections), keys `key`.
pub async fn gateway_over_three(
    sim: SimConfig,
    provider_extra: &str,
    chains: &str,
    key: &str,
) -> Gateway {
    let sims = start_sims(&[sim.clone(), sim.clone(), sim]).await;
    let mut t = String::from("[server]\n");
    for (name, sim) in PROVIDERS.iter().zip(&sims) {
        t.push_str(&provider_section(name, sim, provider_extra));
    }
    t.push_str(chains);
    let env: HashMap<String, String> = PROVIDERS
        .iter()
        .map(|p| (format!("REL_{}_KEY", p.to_uppercase()), key.to_owned()))
        .collect();
    Gateway::start(sims, &t, env, Duration::from_secs(5)).await
}

/// POSTs one chat request for `prompt` to chain `c`; the provider that answered (its
/// `x-backstop-provider`) and the body. Any status but 200 fails the test.
pub async fn ask_chain_c(gw: &Gateway, prompt: &str, stream: bool) -> (String, Vec<u8>) {
    let r = client(1)
        .post(gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "c",
            "stream": stream,
            "messages": [{"role": "user", "content": prompt}],
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let provider = r.headers()["x-backstop-provider"]
        .to_str()
        .expect("a provider name")
        .to_owned();
    (provider, r.bytes().await.expect("body").to_vec())
}

impl Gateway {
    /// Builds the gateway from `config_text` with variables from `env`, and serves it.
    pub async fn start(
        sims: Vec<SimHandle>,
        config_text: &str,
        env: HashMap<String, String>,
        header_timeout: Duration,
    ) -> Gateway {
        let config = Config::parse(config_text, "reliability.toml")
            .unwrap_or_else(|e| panic!("config does not parse: {e}\n{config_text}"));
        let lookup = move |var: &str| env.get(var).cloned();
        let app = Arc::new(App::build_with_env(&config, &lookup).expect("build app"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, signals) = Signals::channel();
        let options = ServeOptions {
            header_timeout,
            shutdown_grace: Duration::from_secs(2),
            ..ServeOptions::new(&config.server, app.limits)
        };
        let task = tokio::spawn(serve(listener, Live::fixed(app.clone()), options, signals));
        Gateway {
            addr,
            sims,
            app,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The simulator behind provider `name`.
    pub fn sim(&self, name: &str) -> &SimHandle {
        let i = PROVIDERS
            .iter()
            .position(|p| *p == name)
            .unwrap_or_else(|| panic!("no provider {name}"));
        &self.sims[i]
    }

    /// Stops the gateway and the simulators.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.try_send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        for s in self.sims.drain(..) {
            s.shutdown().await;
        }
    }
}

/// A client that talks only to loopback and never uses a proxy.
/// Pooled connections expire after 2 s idle, before the gateways here (header timeout 5 s)
/// close them: reusing one the server is closing at that instant loses the request, as with
/// any HTTP/1.1 server, and such a race (seen once in CI) says nothing about backstop.
pub fn client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

/// The simulator's reply to `prompt` as provider `provider` with `chunks` pieces.
pub fn expected_reply(provider: &str, prompt: &str, chunks: usize) -> String {
    backstop_sim::reply_text(provider, prompt, chunks).expect("a simulated provider's name")
}

/// An OpenAI error object's fields.
#[derive(Debug, Clone)]
pub struct OpenAiError {
    /// `error.message`.
    pub message: String,
    /// `error.type`.
    pub kind: String,
    /// `error.param`.
    pub param: Option<String>,
    /// `error.code`.
    pub code: Option<String>,
}

/// Checks `v` is `{"error":{"message":str,"type":str,"param":str|null,"code":str|null}}`.
pub fn openai_error(v: &serde_json::Value) -> Result<OpenAiError, String> {
    let e = v
        .get("error")
        .and_then(|e| e.as_object())
        .ok_or_else(|| format!("no `error` object in {v}"))?;
    let message = e
        .get("message")
        .and_then(|m| m.as_str())
        .ok_or_else(|| format!("`error.message` is not a string in {v}"))?;
    if message.trim().is_empty() {
        return Err(format!("empty error message in {v}"));
    }
    let kind = e
        .get("type")
        .and_then(|m| m.as_str())
        .ok_or_else(|| format!("`error.type` is not a string in {v}"))?;
    let opt = |name: &str| -> Result<Option<String>, String> {
        match e.get(name) {
            Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            other => Err(format!(
                "`error.{name}` must be a string or null, got {other:?}"
            )),
        }
    };
    Ok(OpenAiError {
        message: message.to_owned(),
        kind: kind.to_owned(),
        param: opt("param")?,
        code: opt("code")?,
    })
}

/// Parses a body as an OpenAI error.
pub fn openai_error_bytes(body: &[u8]) -> Result<OpenAiError, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "error body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })?;
    openai_error(&v)
}

/// How an SSE body ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// `data: [DONE]`.
    Done,
    /// A `data: {"error":...}` event (its code).
    Error(Option<String>),
}

/// A parsed gateway SSE body.
#[derive(Debug, Clone)]
pub struct ParsedStream {
    /// Concatenated `delta.content`.
    pub text: String,
    /// How it ended.
    pub end: StreamEnd,
    /// Content events seen.
    pub content_events: usize,
    /// Finish reason, when a finish event came.
    pub finish_reason: Option<String>,
    /// `: backstop resumed on …` comment lines (one per stream resume).
    pub resume_comments: Vec<String>,
}

/// Parses a whole gateway SSE body, checking its structure: a role event first (and only
/// once), chunk events (and resume comments), at most one finish event, then exactly one
/// terminal event (`[DONE]` or an error event) and nothing after it.
pub fn parse_stream(body: &[u8]) -> Result<ParsedStream, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("stream is not UTF-8: {e}"))?;
    if !text.ends_with("\n\n") {
        return Err(format!(
            "stream does not end with a complete event: {:?}",
            tail(text)
        ));
    }
    let mut out = String::new();
    let mut end = None;
    let mut content_events = 0;
    let mut finish_reason = None;
    let mut saw_role = false;
    let mut resume_comments = Vec::new();
    for (i, event) in text.split("\n\n").filter(|e| !e.is_empty()).enumerate() {
        if end.is_some() {
            return Err(format!("event after the terminal event: {event:?}"));
        }
        if let Some(comment) = event.strip_prefix(": ") {
            resume_comments.push(comment.to_owned());
            continue;
        }
        let data = event
            .strip_prefix("data: ")
            .ok_or_else(|| format!("event is not a `data:` line: {event:?}"))?;
        if data.contains('\n') {
            return Err(format!("multi-line event: {event:?}"));
        }
        if data == "[DONE]" {
            end = Some(StreamEnd::Done);
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(data).map_err(|e| format!("event is not JSON ({e}): {data:?}"))?;
        if v.get("error").is_some() {
            let e = openai_error(&v)?;
            end = Some(StreamEnd::Error(e.code));
            continue;
        }
        if v["object"] != "chat.completion.chunk" {
            return Err(format!("not a chunk: {data}"));
        }
        let choices = v["choices"]
            .as_array()
            .ok_or_else(|| format!("no choices: {data}"))?;
        if i == 0 {
            if choices.first().map(|c| &c["delta"]["role"]) != Some(&"assistant".into()) {
                return Err(format!("first event is not the role event: {data}"));
            }
            saw_role = true;
        }
        if let Some(c) = choices.first() {
            if i > 0 && c["delta"].get("role").is_some() {
                return Err(format!("a second role event: {data}"));
            }
            if let Some(t) = c["delta"]["content"].as_str()
                && !t.is_empty()
            {
                content_events += 1;
                out.push_str(t);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                if finish_reason.is_some() {
                    return Err(format!("a second finish event: {data}"));
                }
                finish_reason = Some(f.to_owned());
            }
        }
    }
    if !saw_role {
        return Err("no role event".into());
    }
    let end = end.ok_or_else(|| {
        format!(
            "silent truncation: no [DONE] or error event; tail {:?}",
            tail(text)
        )
    })?;
    if end == StreamEnd::Done && finish_reason.is_none() {
        return Err("[DONE] without a finish event".into());
    }
    Ok(ParsedStream {
        text: out,
        end,
        content_events,
        finish_reason,
        resume_comments,
    })
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(200);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Checks an answer text is one provider's reply to `prompt` (whole, or a prefix of it when
/// `partial`): exactly one "Simulated answer from" marker, naming `provider`, echoing the
/// prompt (with its unique id).
pub fn check_answer(
    text: &str,
    provider: &str,
    prompt: &str,
    chunks: usize,
    partial: bool,
) -> Result<(), String> {
    let markers = text.matches("Simulated answer from").count();
    if markers != 1 {
        return Err(format!("{markers} provider markers in {text:?}"));
    }
    let expected = expected_reply(provider, prompt, chunks);
    let ok = if partial {
        !text.is_empty() && expected.starts_with(text)
    } else {
        text == expected
    };
    if !ok {
        return Err(format!(
            "answer is not {provider}'s reply to {prompt:?} (partial={partial}): {text:?}"
        ));
    }
    Ok(())
}
