//! The simulators behind `serve --demo` and `ask` without a config: `examples/demo.toml`
//! with its provider URLs pointed at three in-process simulators on ephemeral ports.

use std::time::Duration;

use backstop_sim::{SimConfig, SimHandle, Simulator};

use crate::config::{Config, ConfigError};

/// The demo config as shipped; its fixed ports are replaced by the simulators' real ones.
pub const DEMO_TOML: &str = include_str!("../../../examples/demo.toml");
const PORTS: [&str; 3] = ["127.0.0.1:18101", "127.0.0.1:18102", "127.0.0.1:18103"];
/// The key the demo config names; the simulators accept any key.
pub const DEMO_KEY_ENV: &str = "BACKSTOP_DEMO_KEY";
/// Client keys of `serve --demo`, when set.
pub const CLIENT_KEYS_ENV: &str = "BACKSTOP_CLIENT_KEYS";
/// The admin key of `serve --demo`, when set.
pub const ADMIN_KEY_ENV: &str = "BACKSTOP_ADMIN_KEY";

/// Three simulators: OpenAI, Anthropic and Groq formats (each serves all three routes).
pub struct DemoSims {
    /// Simulators in the order of the demo config's providers.
    pub handles: [SimHandle; 3],
}

impl DemoSims {
    /// Starts the simulators on loopback with small, realistic delays.
    pub async fn start() -> std::io::Result<Self> {
        let cfg = SimConfig {
            latency: Duration::from_millis(5),
            ttft: Duration::from_millis(20),
            chunk_delay: Duration::from_millis(5),
            record: false,
            ..SimConfig::default()
        };
        Ok(Self {
            handles: [
                Simulator::start(cfg.clone()).await?,
                Simulator::start(cfg.clone()).await?,
                Simulator::start(cfg).await?,
            ],
        })
    }

    /// The demo config, pointed at these simulators. Client auth is on when
    /// [`CLIENT_KEYS_ENV`] is set in the process environment, the admin endpoints when
    /// [`ADMIN_KEY_ENV`] is (set but empty fails the build, as for any config naming them).
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut text = DEMO_TOML.to_owned();
        for (port, sim) in PORTS.iter().zip(&self.handles) {
            text = text.replace(port, &sim.addr().to_string());
        }
        let mut config = Config::parse(&text, "examples/demo.toml (built in)")?;
        let named = |var: &str| std::env::var_os(var).is_some().then(|| var.to_owned());
        config.server.client_keys_env = named(CLIENT_KEYS_ENV);
        config.server.admin_key_env = named(ADMIN_KEY_ENV);
        Ok(config)
    }

    /// Environment lookups for the demo: the demo key is set, everything else comes from the process.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> + use<> {
        |var| {
            if var == DEMO_KEY_ENV {
                Some("demo-key".to_owned())
            } else {
                std::env::var(var).ok()
            }
        }
    }

    /// Stops the simulators.
    pub async fn shutdown(self) {
        for h in self.handles {
            h.shutdown().await;
        }
    }
}
