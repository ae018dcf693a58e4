//! What a running gateway holds: chains built from the config, breakers, keys and metrics.
//!
//! An [`App`] is one config, built; a reload builds the next one from the previous
//! ([`App::rebuild`]), reusing every provider (client, breaker, hold) whose settings did not
//! change and every chain (retry budget, hedging statistics) whose settings and members did
//! not, and the running server handles it in an `ArcSwap` ([`crate::reload::Live`]).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiCompatible, OpenAiLlm};
use backstop::{CircuitBreaker, FallbackChain, LlmConfig, Provider, ProviderOptions};

use crate::auth::{KeyError, Keys};
use crate::browser_guard::BrowserGuard;
use crate::config::{ChainConfig, Config, ProviderConfig, ProviderKind, Strategy};
use crate::limits::{InFlight, Limits};
use crate::metrics::{ChainMetrics, Metrics, ProviderMetrics};
use crate::role::Role;
use crate::state::{Fleet, KeyLimiter, StateError};

/// The shared state every request handler sees.
pub struct App {
    /// Chains by name (the request's `model`).
    pub chains: HashMap<String, ServedChain>,
    /// Chain names, sorted, for `/v1/models`.
    pub chain_names: Vec<String>,
    /// One breaker per provider, by provider name.
    pub breakers: Vec<CircuitBreaker>,
    /// Client and admin keys.
    pub keys: Keys,
    /// The metrics registry (the same one across reloads).
    pub metrics: Arc<Metrics>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time to read a request body.
    pub body_timeout: Duration,
    /// Host and Origin rules against browsers (CSRF, DNS rebinding).
    pub guard: BrowserGuard,
    /// The connection and in-flight caps in force.
    pub limits: Limits,
    /// Admission of chat requests under `max_in_flight`.
    pub in_flight: InFlight,
    /// The configured (upstream) model of each provider, by provider name.
    pub provider_models: HashMap<String, String>,
    /// Set when the shutdown grace period ends: open streams end with `server_shutting_down`
    /// (one channel across reloads).
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The config in force: the file's, except the `[server]` settings a reload cannot change,
    /// which keep their start-up values.
    pub config: Config,
    /// The link to the fleet (`[state]`); `None`: this process alone.
    pub fleet: Option<Arc<Fleet>>,
    /// Enforces `server.key_limits` (across the fleet with `[state]`); one across reloads.
    pub key_limiter: Arc<KeyLimiter>,
    providers: HashMap<String, Built>,
    ids: Arc<AtomicU64>,
    /// `chatcmpl-` and the process's random salt in hex, written once (16 hex digits a
    /// completion otherwise); kept across reloads.
    id_prefix: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("chains", &self.chain_names)
            .field("breakers", &self.breakers)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// A chain as served: the library's chain and its metrics handles.
#[derive(Debug, Clone)]
pub struct ServedChain {
    /// The chain.
    pub chain: FallbackChain,
    /// Its series (also its observer).
    pub metrics: Arc<ChainMetrics>,
    config: ChainConfig,
}

impl Deref for ServedChain {
    type Target = FallbackChain;

    fn deref(&self) -> &FallbackChain {
        &self.chain
    }
}

/// One provider, built: kept as is by a reload that leaves its settings alone.
#[derive(Clone)]
struct Built {
    llm: Arc<dyn Provider>,
    breaker: CircuitBreaker,
    options: ProviderOptions,
    metrics: Arc<ProviderMetrics>,
    config: ProviderConfig,
}

/// A config that parses but cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A chain could not be assembled.
    #[error("chains.{chain}: {source}")]
    Chain {
        /// The chain's name.
        chain: String,
        /// Why.
        source: backstop::ChainBuildError,
    },
    /// A key variable the config names yields no key.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// `[state]` cannot be started.
    #[error(transparent)]
    State(#[from] StateError),
}

impl App {
    /// Builds providers, breakers and chains from a validated config; keys come from the
    /// environment variables the config names.
    pub fn build(config: &Config) -> Result<App, BuildError> {
        Self::build_with_env(config, &|var| std::env::var(var).ok())
    }

    /// Like [`build`](Self::build), reading environment variables through `env`.
    pub fn build_with_env(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<App, BuildError> {
        let limits = Limits::resolve(&config.server);
        let metrics = Arc::new(Metrics::new());
        let fleet = config
            .state
            .as_ref()
            .map(|s| Fleet::start(s, env, metrics.clone()))
            .transpose()?;
        let shared = Shared {
            key_limiter: fleet
                .as_ref()
                .map_or_else(KeyLimiter::local, |f| f.limiter()),
            fleet,
            metrics,
            stopping: tokio::sync::watch::Sender::new(false),
            ids: Arc::new(AtomicU64::new(0)),
            id_prefix: id_prefix(rand::random()),
            limits,
            in_flight: InFlight::new(limits.max_in_flight),
        };
        let app = assemble(config.clone(), env, shared, None)?;
        app.metrics.set_breakers(app.breakers.clone());
        Ok(app)
    }

    /// The next config's app, sharing what outlives a config (metrics, the in-flight cap, the
    /// shutdown channel) and reusing unchanged providers and chains. `config.server`'s
    /// settings that need a restart keep their running values (see
    /// [`crate::reload::NOT_RELOADABLE`]).
    pub fn rebuild(
        &self,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<App, BuildError> {
        let mut config = config.clone();
        crate::reload::keep_running_server(&mut config.server, &self.config.server);
        // `[state]` is read at start-up only: the fleet link (and its settings) is kept.
        config.state.clone_from(&self.config.state);
        let shared = Shared {
            fleet: self.fleet.clone(),
            key_limiter: self.key_limiter.clone(),
            metrics: self.metrics.clone(),
            stopping: self.stopping.clone(),
            ids: self.ids.clone(),
            id_prefix: self.id_prefix.clone(),
            limits: self.limits,
            in_flight: self.in_flight.clone(),
        };
        assemble(config, env, shared, Some(self))
    }

    /// A fresh `chatcmpl-…` id.
    pub fn next_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.id_prefix.len() + 16);
        id.push_str(&self.id_prefix);
        push_hex(&mut id, n, 8);
        id
    }

    /// The breaker of the provider with this name.
    pub fn breaker(&self, name: &str) -> Option<&CircuitBreaker> {
        self.breakers.iter().find(|b| b.name() == name)
    }
}

/// What outlives one config.
struct Shared {
    fleet: Option<Arc<Fleet>>,
    key_limiter: Arc<KeyLimiter>,
    metrics: Arc<Metrics>,
    stopping: tokio::sync::watch::Sender<bool>,
    ids: Arc<AtomicU64>,
    id_prefix: String,
    limits: Limits,
    in_flight: InFlight,
}

fn assemble(
    config: Config,
    env: &dyn Fn(&str) -> Option<String>,
    shared: Shared,
    previous: Option<&App>,
) -> Result<App, BuildError> {
    let metrics = shared.metrics;
    // Keys first: a reload with a key variable that yields nothing must change nothing.
    let keys = Keys::from_env(
        config.server.client_keys_env.as_deref(),
        config.server.admin_key_env.as_deref(),
        env,
    )?;
    let mut providers: HashMap<String, Built> = HashMap::new();
    for (name, p) in &config.providers {
        let kept = previous
            .and_then(|prev| prev.providers.get(name))
            .filter(|b| b.config == *p);
        let built = match kept {
            Some(b) => b.clone(),
            None => {
                let breaker = CircuitBreaker::with_config(name.clone(), p.breaker);
                breaker.observe(Arc::new(metrics.breaker_watch(&breaker)));
                if let Some(fleet) = &shared.fleet {
                    breaker.observe(fleet.observer());
                }
                Built {
                    llm: provider(name, p, env),
                    breaker,
                    options: ProviderOptions::default()
                        .attempt_timeout(p.timeout)
                        .retries(p.retries),
                    metrics: metrics.provider(name),
                    config: p.clone(),
                }
            }
        };
        providers.insert(name.clone(), built);
    }
    let mut chains = HashMap::new();
    for (name, c) in &config.chains {
        let kept = previous
            .and_then(|prev| prev.chains.get(name))
            .filter(|old| {
                old.config == *c
                    && c.providers.iter().all(|m| {
                        let (now, before) = (
                            providers.get(&m.name),
                            previous.and_then(|p| p.providers.get(&m.name)),
                        );
                        matches!((now, before), (Some(a), Some(b)) if Arc::ptr_eq(&a.llm, &b.llm))
                    })
            });
        let served = match kept {
            Some(old) => old.clone(),
            None => {
                let members = c
                    .providers
                    .iter()
                    .filter_map(|m| providers.get(&m.name))
                    .map(|b| b.metrics.clone())
                    .collect();
                let chain_metrics = metrics.chain(name, members);
                let observer: Arc<dyn backstop::Observer> = match &shared.fleet {
                    Some(fleet) => {
                        Arc::new(crate::state::Tee(chain_metrics.clone(), fleet.observer()))
                    }
                    None => chain_metrics.clone(),
                };
                let chain =
                    chain(name, c, &providers, observer).map_err(|source| BuildError::Chain {
                        chain: name.clone(),
                        source,
                    })?;
                ServedChain {
                    chain,
                    metrics: chain_metrics,
                    config: c.clone(),
                }
            }
        };
        chains.insert(name.clone(), served);
    }
    let breakers: Vec<CircuitBreaker> = config
        .providers
        .keys()
        .filter_map(|n| providers.get(n).map(|b| b.breaker.clone()))
        .collect();
    if let Some(fleet) = &shared.fleet {
        fleet.track(breakers.clone());
    }
    Ok(App {
        chain_names: config.chains.keys().cloned().collect(),
        chains,
        breakers,
        guard: BrowserGuard::new(&config.server, keys.clients_required()),
        keys,
        metrics,
        max_body_bytes: config.server.max_body_bytes,
        body_timeout: config.server.body_timeout,
        in_flight: shared.in_flight,
        limits: shared.limits,
        provider_models: config
            .providers
            .iter()
            .map(|(name, p)| (name.clone(), p.model.clone()))
            .collect(),
        stopping: shared.stopping,
        providers,
        config,
        fleet: shared.fleet,
        key_limiter: shared.key_limiter,
        ids: shared.ids,
        id_prefix: shared.id_prefix,
    })
}

fn llm_config(p: &ProviderConfig) -> LlmConfig {
    LlmConfig {
        temperature: p.temperature,
        max_tokens: p.max_tokens,
        top_p: p.top_p,
        stop: p.stop.clone(),
    }
}

/// One provider from its config section. The key is read from the named variable; when it
/// is unset the provider fails every call with an `Auth` error naming the variable.
fn provider(
    name: &str,
    p: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Arc<dyn Provider> {
    macro_rules! finish {
        ($llm:expr) => {{
            let llm = $llm
                .name(name)
                .base_url(p.base_url.clone())
                .config(llm_config(p));
            let llm = match &p.api_key_env {
                Some(var) => match env(var) {
                    Some(key) => llm.api_key(key),
                    None => llm.api_key_env(var.clone()),
                },
                None => llm.no_api_key(),
            };
            let llm = Arc::new(llm) as Arc<dyn Provider>;
            match p.dimensions {
                Some(_) => Role::embeddings(llm),
                None => Role::chat(llm),
            }
        }};
    }
    match p.kind {
        ProviderKind::OpenAi => finish!(OpenAiLlm::new(p.model.clone())),
        ProviderKind::Anthropic => finish!(AnthropicLlm::new(p.model.clone())),
        ProviderKind::Groq => finish!(GroqLlm::new(p.model.clone())),
        ProviderKind::OpenAiCompatible => {
            finish!(OpenAiCompatible::new(p.base_url.clone(), p.model.clone()))
        }
    }
}

fn chain(
    name: &str,
    c: &ChainConfig,
    providers: &HashMap<String, Built>,
    observer: Arc<dyn backstop::Observer>,
) -> Result<FallbackChain, backstop::ChainBuildError> {
    let members = c
        .providers
        .iter()
        .filter_map(|m| providers.get(&m.name).map(|p| (m, p)));
    macro_rules! settings {
        ($b:expr) => {{
            let mut b = $b
                .name(name)
                .observer(observer)
                .fall_through(c.fall_through)
                .when_all_open(c.when_all_open.into())
                .retry_budget(c.retry_budget)
                .stream_resume(c.stream_resume)
                .max_resumes(c.max_resumes);
            if let Some((after, budget)) = c.hedge {
                b = b.hedge(after, budget);
            }
            if let Some(t) = c.timeout {
                b = b.timeout(t);
            }
            if let Some(t) = c.ttft_timeout {
                b = b.ttft_timeout(t);
            }
            if let Some(t) = c.idle_timeout {
                b = b.idle_timeout(t);
            }
            b.build()
        }};
    }
    match c.strategy {
        Strategy::Priority => settings!(members.fold(FallbackChain::builder(), |b, (_, p)| {
            b.provider_with(p.llm.clone(), p.breaker.clone(), p.options)
        })),
        Strategy::Weighted => settings!(members.fold(FallbackChain::weighted(), |b, (m, p)| {
            b.provider_with(
                p.llm.clone(),
                p.breaker.clone(),
                m.weight.unwrap_or(0.0),
                p.options,
            )
        })),
    }
}

fn id_prefix(salt: u64) -> String {
    let mut prefix = String::with_capacity(9 + 16);
    prefix.push_str("chatcmpl-");
    push_hex(&mut prefix, salt, 16);
    prefix
}

/// `n` in lower-case hex, at least `width` digits: `format!("{n:0width$x}")` without the
/// formatter (a tenth of writing a completion's body).
fn push_hex(out: &mut String, n: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(width);
    for i in (0..digits).rev() {
        let d = n.checked_shr(4 * i as u32).unwrap_or(0) & 0xf;
        out.push(char::from(HEX[d as usize]));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_completion_id_prefix_is_chatcmpl_then_the_salt_in_16_hex_digits() {
        assert_eq!(super::id_prefix(0xdead), "chatcmpl-000000000000dead");
    }

    #[test]
    fn ids_are_written_as_the_formatter_writes_them() {
        for n in [
            0,
            1,
            0xf,
            0x10,
            0xdead_beef,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            for width in [8, 16] {
                let mut s = String::new();
                super::push_hex(&mut s, n, width);
                assert_eq!(s, format!("{n:0width$x}"));
            }
        }
    }
}
