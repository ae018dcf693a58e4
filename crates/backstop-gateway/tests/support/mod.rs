//! Shared harness for the gateway's HTTP tests: simulators on loopback, a config pointing at
//! them, and a gateway served on an ephemeral port with a shutdown trigger.
#![allow(dead_code)]

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

/// The provider kinds of the test chain, in priority order (also the provider names).
pub const PROVIDERS: [&str; 3] = ["openai", "anthropic", "groq"];
/// The client key the harness configures when auth is on.
pub const CLIENT_KEY: &str = "client-key-1";
/// A second client key (comma-separated list).
pub const CLIENT_KEY_2: &str = "client-key-2";
/// The admin key the harness configures when auth is on.
pub const ADMIN_KEY: &str = "admin-key-xyz";

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Simulator timing, shared by the three simulators.
    pub sim: SimConfig,
    /// Breaker failure threshold of every provider.
    pub failure_threshold: u32,
    /// Breaker recovery timeout (config duration string).
    pub recovery: &'static str,
    /// Retries per provider.
    pub retries: u32,
    /// Per-attempt timeout (config duration string).
    pub provider_timeout: &'static str,
    /// Whole-request timeout of the chains (config duration string).
    pub chain_timeout: &'static str,
    /// `server.max_body_bytes`, when set.
    pub max_body_bytes: Option<usize>,
    /// `server.body_timeout`, when set (config duration string).
    pub body_timeout: Option<&'static str>,
    /// Configure client keys and the admin key.
    pub auth: bool,
    /// Configure only the admin key (no client keys).
    pub admin_only: bool,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// More `[server]` lines (`client_write_timeout = "1s"`, ...).
    pub server_extra: String,
    /// More config text (further chains), appended as is.
    pub extra_toml: String,
    /// A Redis URL: the config gets `[state] redis_url_env = "TEST_REDIS_URL"` (plus
    /// [`Self::state_extra`]) and the variable holds it.
    pub redis_url: Option<String>,
    /// More `[state]` lines.
    pub state_extra: String,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            sim: SimConfig {
                record: false,
                ..SimConfig::default()
            },
            failure_threshold: 2,
            recovery: "10s",
            retries: 0,
            provider_timeout: "2s",
            chain_timeout: "5s",
            max_body_bytes: None,
            body_timeout: None,
            auth: false,
            admin_only: false,
            shutdown_grace: Duration::from_secs(5),
            server_extra: String::new(),
            extra_toml: String::new(),
            redis_url: None,
            state_extra: String::new(),
        }
    }
}

/// A running gateway in front of three simulators.
pub struct TestGateway {
    /// The gateway's bound address.
    pub addr: SocketAddr,
    /// Simulators in [`PROVIDERS`] order.
    pub sims: Vec<SimHandle>,
    /// The gateway's state at start-up (breakers, metrics); after a reload see [`Self::live`].
    pub app: Arc<App>,
    /// The running gateway (its current app, and reload).
    pub live: Arc<Live>,
    /// The config file it reloads from.
    pub config_path: std::path::PathBuf,
    /// A client that never uses a proxy.
    pub client: reqwest::Client,
    /// The client key the helpers send (`Some` when the spec turned auth on).
    pub key: Option<&'static str>,
    shutdown: mpsc::Sender<()>,
    task: Option<JoinHandle<std::io::Result<Stopped>>>,
}

/// The config text for `spec`, with providers pointing at `sims`.
pub fn config_text(spec: &Spec, sims: &[SimHandle]) -> String {
    let mut t = String::from("[server]\n");
    if spec.auth {
        t.push_str("client_keys_env = \"TEST_CLIENT_KEYS\"\nadmin_key_env = \"TEST_ADMIN_KEY\"\n");
    } else if spec.admin_only {
        t.push_str("admin_key_env = \"TEST_ADMIN_KEY\"\n");
    }
    if let Some(n) = spec.max_body_bytes {
        t.push_str(&format!("max_body_bytes = {n}\n"));
    }
    if let Some(d) = spec.body_timeout {
        t.push_str(&format!("body_timeout = \"{d}\"\n"));
    }
    t.push_str(&format!(
        "shutdown_grace = \"{}ms\"\n",
        spec.shutdown_grace.as_millis()
    ));
    t.push_str(&spec.server_extra);
    for (name, sim) in PROVIDERS.iter().zip(sims) {
        let base_url = if *name == "openai" {
            sim.openai_base_url()
        } else {
            sim.base_url()
        };
        t.push_str(&format!(
            "\n[providers.{name}]\nkind = \"{name}\"\nmodel = \"{name}-model\"\n\
             api_key_env = \"TEST_{upper}_KEY\"\nbase_url = \"{base_url}\"\n\
             timeout = \"{timeout}\"\nretries = {retries}\n\
             breaker = {{ failure_threshold = {threshold}, window = \"60s\", recovery_timeout = \"{recovery}\" }}\n",
            upper = name.to_uppercase(),
            timeout = spec.provider_timeout,
            retries = spec.retries,
            threshold = spec.failure_threshold,
            recovery = spec.recovery,
        ));
    }
    t.push_str(&format!(
        "\n[chains.default]\nproviders = [\"openai\", \"anthropic\", \"groq\"]\ntimeout = \"{ct}\"\n\
         \n[chains.solo]\nproviders = [\"openai\"]\ntimeout = \"{ct}\"\n",
        ct = spec.chain_timeout
    ));
    t.push_str(&spec.extra_toml);
    if spec.redis_url.is_some() {
        t.push_str("\n[state]\nredis_url_env = \"TEST_REDIS_URL\"\n");
        t.push_str(&spec.state_extra);
    }
    t
}

/// The variables the harness's configs name. The admin key comes with a trailing newline,
/// as from a secrets file: it must still match.
pub fn env(var: &str) -> Option<String> {
    match var {
        "TEST_OPENAI_KEY" | "TEST_ANTHROPIC_KEY" | "TEST_GROQ_KEY" => Some("sk-test".to_owned()),
        "TEST_CLIENT_KEYS" => Some(format!("{CLIENT_KEY}, {CLIENT_KEY_2}")),
        "TEST_ADMIN_KEY" => Some(format!("{ADMIN_KEY}\n")),
        _ => None,
    }
}

impl TestGateway {
    /// Starts three simulators and a gateway with the default [`Spec`].
    pub async fn start() -> Self {
        Self::start_with(Spec::default()).await
    }

    /// Starts three simulators and a gateway as `spec` says.
    pub async fn start_with(spec: Spec) -> Self {
        let mut sims = Vec::new();
        for _ in PROVIDERS {
            sims.push(
                Simulator::start(spec.sim.clone())
                    .await
                    .expect("start simulator"),
            );
        }
        Self::start_sharing(spec, sims).await
    }

    /// Starts a gateway in front of these simulators (another gateway's: a second replica).
    pub async fn start_sharing(spec: Spec, sims: Vec<SimHandle>) -> Self {
        let text = config_text(&spec, &sims);
        let config = Config::parse(&text, "test.toml")
            .unwrap_or_else(|e| panic!("config does not parse: {e}\n{text}"));
        let redis_url = spec.redis_url.clone();
        let env = move |var: &str| match var {
            "TEST_REDIS_URL" => redis_url.clone(),
            _ => env(var),
        };
        let app = Arc::new(App::build_with_env(&config, &env).expect("build app"));
        let config_path = temp_path("config.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let live = Live::from_file(app.clone(), &config_path, Arc::new(env));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, signals) = Signals::channel();
        let options = ServeOptions {
            header_timeout: Duration::from_secs(5),
            ..ServeOptions::new(&config.server, app.limits)
        };
        let task = tokio::spawn(serve(listener, live.clone(), options, signals));
        Self {
            addr,
            sims,
            app,
            live,
            config_path,
            client: client(),
            key: spec.auth.then_some(CLIENT_KEY),
            shutdown: tx,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn at(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The simulator behind the provider with this name.
    pub fn sim(&self, provider: &str) -> &SimHandle {
        let i = PROVIDERS
            .iter()
            .position(|p| *p == provider)
            .unwrap_or_else(|| panic!("no provider {provider}"));
        &self.sims[i]
    }

    /// A request to `path` carrying the harness's client key (when auth is on).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.client.request(method, self.at(path));
        match self.key {
            Some(k) => b.bearer_auth(k),
            None => b,
        }
    }

    /// POSTs a chat completion body.
    pub async fn chat(&self, body: &serde_json::Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/v1/chat/completions")
            .json(body)
            .send()
            .await
            .expect("send chat request")
    }

    /// POSTs `/v1/breakers/{name}/{action}` with the admin key; asserts 200 and returns the breaker.
    pub async fn admin(&self, name: &str, action: &str) -> serde_json::Value {
        let r = self
            .client
            .post(self.at(&format!("/v1/breakers/{name}/{action}")))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("admin request");
        let status = r.status();
        let text = r.text().await.expect("admin body");
        assert_eq!(status, 200, "{action} {name}: {text}");
        serde_json::from_str(&text).expect("admin JSON")
    }

    /// GETs `path` and returns its body as text, asserting status 200.
    pub async fn get_text(&self, path: &str) -> String {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.expect("body")
    }

    /// `/v1/breakers` as JSON.
    pub async fn breakers(&self) -> serde_json::Value {
        serde_json::from_str(&self.get_text("/v1/breakers").await).expect("breakers JSON")
    }

    /// One breaker's entry in `/v1/breakers`.
    pub async fn breaker(&self, name: &str) -> serde_json::Value {
        let all = self.breakers().await;
        all["breakers"]
            .as_array()
            .expect("breakers array")
            .iter()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no breaker {name} in {all}"))
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        self.get_text("/metrics").await
    }

    /// Sends one shutdown signal (SIGTERM) without waiting; a second one forces the exit.
    pub fn begin_shutdown(&mut self) {
        let _ = self.shutdown.try_send(());
    }

    /// Waits for the server to stop; how it stopped.
    pub async fn wait_stopped(&mut self) -> Stopped {
        let task = self.task.take().expect("already waited");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server did not stop within 10s")
            .expect("server task panicked")
            .expect("server failed")
    }

    /// Stops the gateway and the simulators.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        if self.task.is_some() {
            self.wait_stopped().await;
        }
        for s in std::mem::take(&mut self.sims) {
            s.shutdown().await;
        }
    }
}

/// A fresh path in cargo's test tmpdir.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("support-{}-{n}-{name}", std::process::id()))
}

/// A reqwest client that talks to loopback directly.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build client")
}

/// A minimal valid request to `chain`.
pub fn chat_body(chain: &str, prompt: &str) -> serde_json::Value {
    serde_json::json!({
        "model": chain,
        "messages": [{"role": "user", "content": prompt}],
    })
}

/// A minimal streaming request to `chain`.
pub fn stream_body(chain: &str, prompt: &str) -> serde_json::Value {
    serde_json::json!({
        "model": chain,
        "messages": [{"role": "user", "content": prompt}],
        "stream": true,
    })
}

/// A response header as a string.
pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Asserts `body` is an OpenAI error object and returns its `error` member.
pub fn assert_openai_error(body: &serde_json::Value) -> serde_json::Value {
    let e = &body["error"];
    assert!(e.is_object(), "not an OpenAI error: {body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error.message: {body}"
    );
    assert!(e["type"].is_string(), "error.type: {body}");
    let obj = e.as_object().expect("object");
    for key in ["message", "type", "param", "code"] {
        assert!(obj.contains_key(key), "error.{key} missing: {body}");
    }
    assert!(
        e["param"].is_null() || e["param"].is_string(),
        "error.param: {body}"
    );
    assert!(
        e["code"].is_null() || e["code"].is_string(),
        "error.code: {body}"
    );
    e.clone()
}

/// Reads an error response: asserts the status and the JSON content type, returns `error`.
pub async fn expect_error(r: reqwest::Response, status: u16) -> serde_json::Value {
    let got = r.status().as_u16();
    let ct = header(&r, "content-type").unwrap_or_default().to_owned();
    let text = r.text().await.expect("error body");
    assert_eq!(got, status, "status; body: {text}");
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body not JSON ({e}): {text}"));
    assert_openai_error(&body)
}

/// The value of one sample line of a Prometheus exposition (`name{labels}`), exactly matched.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.trim().parse::<f64>().expect("metric value"))
        })
        .unwrap_or_else(|| panic!("series {series} not found in:\n{text}"))
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Concatenated `delta.content` of parsed chunk events.
pub fn content_of(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Polls `cond` every 10 ms for at most `limit`; panics with `what` when it never holds.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
