//! What a running gateway holds: chains built from the config, breakers, keys and metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiCompatible, OpenAiLlm};
use backstop::{CircuitBreaker, FallbackChain, LlmConfig, Provider, ProviderOptions};

use crate::auth::{KeyError, Keys};
use crate::browser_guard::BrowserGuard;
use crate::config::{ChainConfig, Config, ProviderConfig, ProviderKind, Strategy};
use crate::limits::{InFlight, Limits};
use crate::metrics::Metrics;
use crate::role::Role;

/// The shared state every request handler sees.
pub struct App {
    /// Chains by name (the request's `model`).
    pub chains: HashMap<String, FallbackChain>,
    /// Chain names, sorted, for `/v1/models`.
    pub chain_names: Vec<String>,
    /// One breaker per provider, by provider name.
    pub breakers: Vec<CircuitBreaker>,
    /// Client and admin keys.
    pub keys: Keys,
    /// The metrics registry (also the chains' observer).
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
    /// Set when the shutdown grace period ends: open streams end with `server_shutting_down`.
    pub stopping: tokio::sync::watch::Sender<bool>,
    ids: AtomicU64,
    id_salt: u64,
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
        let mut providers: HashMap<&str, (Arc<dyn Provider>, CircuitBreaker, ProviderOptions)> =
            HashMap::new();
        let mut breakers = Vec::new();
        for (name, p) in &config.providers {
            let breaker = CircuitBreaker::with_config(name.clone(), p.breaker);
            let options = ProviderOptions::default()
                .attempt_timeout(p.timeout)
                .retries(p.retries);
            breakers.push(breaker.clone());
            providers.insert(name.as_str(), (provider(name, p, env), breaker, options));
        }
        let chain_names: Vec<String> = config.chains.keys().cloned().collect();
        let metrics = Arc::new(Metrics::new(&chain_names, breakers.clone()));
        let mut chains = HashMap::new();
        for (name, c) in &config.chains {
            let chain = chain(name, c, &providers, metrics.clone()).map_err(|source| {
                BuildError::Chain {
                    chain: name.clone(),
                    source,
                }
            })?;
            chains.insert(name.clone(), chain);
        }
        let keys = Keys::from_env(
            config.server.client_keys_env.as_deref(),
            config.server.admin_key_env.as_deref(),
            env,
        )?;
        let limits = Limits::resolve(&config.server);
        Ok(App {
            chains,
            chain_names,
            breakers,
            guard: BrowserGuard::new(&config.server, keys.clients_required()),
            keys,
            metrics,
            max_body_bytes: config.server.max_body_bytes,
            body_timeout: config.server.body_timeout,
            in_flight: InFlight::new(limits.max_in_flight),
            limits,
            provider_models: config
                .providers
                .iter()
                .map(|(name, p)| (name.clone(), p.model.clone()))
                .collect(),
            stopping: tokio::sync::watch::Sender::new(false),
            ids: AtomicU64::new(0),
            id_salt: rand::random(),
        })
    }

    /// A fresh `chatcmpl-…` id.
    pub fn next_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("chatcmpl-{:016x}{:08x}", self.id_salt, n)
    }

    /// The breaker of the provider with this name.
    pub fn breaker(&self, name: &str) -> Option<&CircuitBreaker> {
        self.breakers.iter().find(|b| b.name() == name)
    }
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
    providers: &HashMap<&str, (Arc<dyn Provider>, CircuitBreaker, ProviderOptions)>,
    metrics: Arc<Metrics>,
) -> Result<FallbackChain, backstop::ChainBuildError> {
    let members = c
        .providers
        .iter()
        .filter_map(|m| providers.get(m.name.as_str()).map(|p| (m, p)));
    macro_rules! settings {
        ($b:expr) => {{
            let mut b = $b
                .name(name)
                .observer(metrics)
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
        Strategy::Priority => settings!(
            members.fold(FallbackChain::builder(), |b, (_, (llm, breaker, opts))| {
                b.provider_with(llm.clone(), breaker.clone(), *opts)
            })
        ),
        Strategy::Weighted => settings!(members.fold(
            FallbackChain::weighted(),
            |b, (m, (llm, breaker, opts))| {
                b.provider_with(llm.clone(), breaker.clone(), m.weight.unwrap_or(0.0), *opts)
            }
        )),
    }
}
