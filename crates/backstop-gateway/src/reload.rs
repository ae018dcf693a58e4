//! Hot reload: `SIGHUP` and `POST /v1/admin/reload` re-read the config file and swap the new
//! [`App`] in atomically. Any error leaves the running config in place and is logged and
//! returned as one line (`file:line:col: key: message`). Requests and streams in flight hold
//! the `App` they started on and finish on it. Providers whose settings did not change keep
//! their client, breaker and rate-limit hold; chains whose settings and members did not change
//! keep their retry budget.
//!
//! The `[server]` settings bound to the listener and the accept loop ([`NOT_RELOADABLE`])
//! need a restart: a reload that changes one applies everything else, keeps the running
//! value, and says so in its answer and in a warning.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::app::{App, BuildError};
use crate::config::{Config, ConfigError, ServerConfig};
use crate::duration::format_duration;

/// `[server]` keys that a reload does not apply (they need a restart).
pub const NOT_RELOADABLE: [&str; 8] = [
    "server.listen",
    "server.header_timeout",
    "server.shutdown_grace",
    "server.client_write_timeout",
    "server.max_connections",
    "server.max_in_flight",
    "server.max_stream_buffer_bytes",
    "server.workers",
];

/// The values of the [`NOT_RELOADABLE`] settings, as the config writes them.
fn fixed_values(s: &ServerConfig) -> [String; NOT_RELOADABLE.len()] {
    let auto = |n: Option<usize>| {
        n.map_or_else(
            || "(derived from the open-file limit)".to_owned(),
            |n| n.to_string(),
        )
    };
    [
        s.listen.to_string(),
        format_duration(s.header_timeout),
        format_duration(s.shutdown_grace),
        format_duration(s.client_write_timeout),
        auto(s.max_connections),
        s.max_in_flight
            .map_or_else(|| "(as many as connections)".to_owned(), |n| n.to_string()),
        s.max_stream_buffer_bytes.to_string(),
        s.workers
            .map_or_else(|| "(one per CPU core)".to_owned(), |n| n.to_string()),
    ]
}

/// `[state]` as a reload report shows it (read at start-up only: the fleet link is kept).
fn state_value(s: Option<&crate::config::StateConfig>) -> String {
    s.map_or_else(
        || "(none)".to_owned(),
        |s| {
            format!(
                "redis_url_env = {}, on_redis_error = {:?}, timeout = {}",
                s.redis_url_env,
                s.on_redis_error,
                format_duration(s.timeout)
            )
        },
    )
}

/// Gives `next` the running values of the settings a reload cannot change.
pub(crate) fn keep_running_server(next: &mut ServerConfig, running: &ServerConfig) {
    next.listen = running.listen;
    next.header_timeout = running.header_timeout;
    next.shutdown_grace = running.shutdown_grace;
    next.client_write_timeout = running.client_write_timeout;
    next.max_connections = running.max_connections;
    next.max_in_flight = running.max_in_flight;
    next.max_stream_buffer_bytes = running.max_stream_buffer_bytes;
    next.workers = running.workers;
}

/// A setting the file changed that stays at its running value until a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    /// `server.listen`, ...
    pub key: &'static str,
    /// The value in force.
    pub running: String,
    /// The value in the file.
    pub configured: String,
}

/// What changed, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// New in the file.
    pub added: Vec<String>,
    /// Gone from the file.
    pub removed: Vec<String>,
    /// Rebuilt: their settings (or, for chains, a member's) changed; their state starts afresh.
    pub changed: Vec<String>,
    /// Kept as they were, state included.
    pub unchanged: Vec<String>,
}

/// The answer to a successful reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// The file read.
    pub file: String,
    /// Chains.
    pub chains: Changes,
    /// Providers (an unchanged provider keeps its breaker, hold and client).
    pub providers: Changes,
    /// Settings that need a restart and were left at their running values (the
    /// [`NOT_RELOADABLE`] `[server]` keys, and `state`).
    pub not_applied: Vec<NotApplied>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The gateway was not started from a config file (`serve --demo`).
    #[error("this gateway was started without a config file (--demo): there is nothing to reload")]
    NoFile,
    /// The file cannot be read or is not a valid config.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The config is valid but cannot be run (a key variable that yields no key, a chain).
    #[error("{file}: {error}")]
    Build {
        /// The file read.
        file: String,
        /// Why.
        error: BuildError,
    },
}

impl ReloadError {
    /// A stable code for the admin endpoint's answer.
    pub fn code(&self) -> &'static str {
        match self {
            ReloadError::NoFile => "no_config_file",
            ReloadError::Config(ConfigError::Read { .. }) => "config_unreadable",
            ReloadError::Config(_) => "config_invalid",
            ReloadError::Build { .. } => "config_not_runnable",
        }
    }
}

/// The environment a reload reads key variables from.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

struct Source {
    path: PathBuf,
    env: Env,
}

/// The running [`App`], swapped whole by a reload.
pub struct Live {
    current: ArcSwap<App>,
    source: Option<Source>,
    /// One reload at a time (a SIGHUP and an admin request may race).
    reloading: Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field(
                "file",
                &self.source.as_ref().map(|s| s.path.display().to_string()),
            )
            .finish_non_exhaustive()
    }
}

impl Live {
    /// A gateway that cannot reload (no config file).
    pub fn fixed(app: Arc<App>) -> Arc<Live> {
        Arc::new(Live {
            current: ArcSwap::new(app),
            source: None,
            reloading: Mutex::new(()),
        })
    }

    /// A gateway that reloads from `path`, reading key variables through `env`.
    pub fn from_file(app: Arc<App>, path: &Path, env: Env) -> Arc<Live> {
        Arc::new(Live {
            current: ArcSwap::new(app),
            source: Some(Source {
                path: path.to_owned(),
                env,
            }),
            reloading: Mutex::new(()),
        })
    }

    /// The app in force now; a request keeps the one it started with.
    pub fn app(&self) -> Arc<App> {
        self.current.load_full()
    }

    /// Re-reads the config file and swaps the new app in; on error nothing changes. Logs the
    /// outcome either way. Blocking (file read, clients built): call it off the async workers.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let result = self.try_reload();
        let metrics = self.app().metrics.clone();
        metrics.reload(result.is_ok());
        match &result {
            Ok(r) => {
                tracing::info!(
                    file = %r.file,
                    chains_added = ?r.chains.added,
                    chains_removed = ?r.chains.removed,
                    chains_changed = ?r.chains.changed,
                    providers_added = ?r.providers.added,
                    providers_removed = ?r.providers.removed,
                    providers_changed = ?r.providers.changed,
                    "config reloaded"
                );
                for n in &r.not_applied {
                    tracing::warn!(
                        key = n.key,
                        running = %n.running,
                        configured = %n.configured,
                        "config reload: this setting needs a restart; the running value stays"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; the running config stays");
            }
        }
        result
    }

    fn try_reload(&self) -> Result<ReloadReport, ReloadError> {
        let source = self.source.as_ref().ok_or(ReloadError::NoFile)?;
        let file = source.path.display().to_string();
        let config = Config::load(&source.path)?;
        let old = self.app();
        let env = &*source.env;
        let new = old
            .rebuild(&config, env)
            .map_err(|error| ReloadError::Build {
                file: file.clone(),
                error,
            })?;
        let report = report(file, &old, &new, &config);
        let chains: Vec<&str> = new.chain_names.iter().map(String::as_str).collect();
        let providers: Vec<&str> = new.breakers.iter().map(|b| b.name()).collect();
        new.metrics.set_breakers(new.breakers.clone());
        new.metrics.retain(&chains, &providers);
        self.current.store(Arc::new(new));
        Ok(report)
    }
}

fn report(file: String, old: &App, new: &App, file_config: &Config) -> ReloadReport {
    let providers = changes(
        old.config.providers.keys(),
        new.config.providers.keys(),
        |name| old.config.providers.get(name) == new.config.providers.get(name),
    );
    let chains = changes(old.config.chains.keys(), new.config.chains.keys(), |name| {
        old.config.chains.get(name) == new.config.chains.get(name)
            && new.config.chains.get(name).is_some_and(|c| {
                c.providers
                    .iter()
                    .all(|m| !providers.changed.contains(&m.name))
            })
    });
    let running = fixed_values(&old.config.server);
    let configured = fixed_values(&file_config.server);
    let not_applied = NOT_RELOADABLE
        .iter()
        .zip(running.into_iter().zip(configured))
        .filter(|(_, (r, c))| r != c)
        .map(|(key, (running, configured))| NotApplied {
            key,
            running,
            configured,
        })
        .chain((old.config.state != file_config.state).then(|| NotApplied {
            key: "state",
            running: state_value(old.config.state.as_ref()),
            configured: state_value(file_config.state.as_ref()),
        }))
        .collect();
    ReloadReport {
        file,
        chains,
        providers,
        not_applied,
    }
}

fn changes<'a>(
    old: impl Iterator<Item = &'a String>,
    new: impl Iterator<Item = &'a String> + Clone,
    same: impl Fn(&str) -> bool,
) -> Changes {
    let old: Vec<&String> = old.collect();
    let mut c = Changes::default();
    for name in new.clone() {
        if !old.contains(&name) {
            c.added.push(name.clone());
        } else if same(name) {
            c.unchanged.push(name.clone());
        } else {
            c.changed.push(name.clone());
        }
    }
    let new: Vec<&String> = new.collect();
    c.removed = old
        .into_iter()
        .filter(|n| !new.contains(n))
        .cloned()
        .collect();
    c
}

/// Reloads on every `SIGHUP` (the process would otherwise die of it). The handler is installed
/// before this returns.
///
/// # Errors
///
/// The signal handler could not be installed.
#[cfg(unix)]
pub fn reload_on_sighup(live: Arc<Live>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            let live = live.clone();
            // The outcome is logged by `reload`.
            let _ = tokio::task::spawn_blocking(move || live.reload()).await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_kept_are_the_settings_reported() {
        let running = ServerConfig::default();
        let mut file = ServerConfig {
            listen: "127.0.0.1:9999".parse().unwrap(),
            header_timeout: std::time::Duration::from_secs(1),
            shutdown_grace: std::time::Duration::from_secs(2),
            client_write_timeout: std::time::Duration::from_secs(3),
            max_connections: Some(7),
            max_in_flight: Some(5),
            max_stream_buffer_bytes: 9000,
            workers: Some(3),
            max_body_bytes: 10,
            ..ServerConfig::default()
        };
        let before = fixed_values(&file);
        assert!(
            before
                .iter()
                .zip(fixed_values(&running))
                .all(|(a, b)| *a != b),
            "every fixed setting differs in this test"
        );
        keep_running_server(&mut file, &running);
        assert_eq!(fixed_values(&file), fixed_values(&running));
        assert_eq!(
            file.max_body_bytes, 10,
            "reloadable settings are left alone"
        );
    }
}
