//! `backstop`: the demo, the OpenAI-compatible gateway, one-off requests and config checks.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use backstop_gateway::app::App;
use backstop_gateway::config::Config;
use backstop_gateway::logs;
use backstop_gateway::reload::Live;
#[cfg(unix)]
use backstop_gateway::reload::reload_on_sighup;
use backstop_gateway::serve::{ServeOptions, Stopped, os_signals, serve};
use backstop_gateway::telemetry::Telemetry;
use backstop_gateway::{demo, sims};
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt;

#[derive(Parser)]
#[command(
    name = "backstop",
    version,
    about = "Keeps your app answering when its LLM provider does not."
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Play the fallback story on built-in simulated providers (no keys, no network).
    Demo,
    /// Run the OpenAI-compatible gateway.
    Serve {
        /// The config file (TOML).
        #[arg(long, short, required_unless_present = "demo", conflicts_with = "demo")]
        config: Option<PathBuf>,
        /// Serve the demo chains on built-in simulators instead of a config file.
        #[arg(long)]
        demo: bool,
        /// Listen address (overrides the config's `server.listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve without client keys on a non-loopback address.
        #[arg(long)]
        allow_unauthenticated: bool,
    },
    /// Send one prompt through a chain and print the answer (provider and attempts on stderr).
    Ask {
        /// The prompt.
        prompt: String,
        /// The config file; without one, the demo chains on built-in simulators answer.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The chain to use.
        #[arg(long, default_value = "default")]
        chain: String,
        /// Stream the answer.
        #[arg(long)]
        stream: bool,
    },
    /// Check a config file.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate a config file and print the resolved chains.
    Check {
        /// The config file (TOML).
        file: PathBuf,
    },
}

fn init_logs(format: LogFormat, default: &str) {
    init_logs_with(format, default, None);
}

/// The logs, and the trace exporter's layer when `[telemetry]` set one up.
fn init_logs_with(format: LogFormat, default: &str, telemetry: Option<&Telemetry>) {
    let format = match format {
        LogFormat::Text => logs::LogFormat::Text,
        LogFormat::Json => logs::LogFormat::Json,
    };
    logs::init_with_writer(format, default, std::io::stderr, telemetry);
}

/// mimalloc: 12% fewer instructions per request than glibc's malloc, 3% fewer than jemalloc
/// (callgrind, BENCHMARKS.md); built without transparent huge pages (idle RSS 16 → 10.6 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; the exit status on success (`serve` says how it stopped).
fn run() -> anyhow::Result<u8> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo => {
                init_logs(cli.log_format, "error");
                let stdout = std::io::stdout();
                let color = stdout.is_terminal();
                let mut out = stdout.lock();
                let started = std::time::Instant::now();
                demo::run(&mut out, color).await?;
                println!(
                    "Story complete in {:.1} s.",
                    started.elapsed().as_secs_f64()
                );
                Ok(0)
            }
            Command::Serve {
                config,
                demo,
                listen,
                allow_unauthenticated,
            } => run_serve(cli.log_format, config, demo, listen, allow_unauthenticated)
                .await
                .map(Stopped::exit_code),
            Command::Ask {
                prompt,
                config,
                chain,
                stream,
            } => {
                init_logs(cli.log_format, "warn");
                run_ask(prompt, config, chain, stream).await.map(|()| 0)
            }
            Command::Config {
                action: ConfigAction::Check { file },
            } => {
                let config = Config::load(&file)?;
                print!("{}", backstop_gateway::describe(&config));
                println!("{}: OK", file.display());
                Ok(0)
            }
        }
    })
}

/// The config to run, and the simulators behind it when it is the demo's.
async fn load(config: Option<PathBuf>) -> anyhow::Result<(Config, Option<sims::DemoSims>)> {
    match config {
        Some(path) => Ok((Config::load(&path)?, None)),
        None => {
            let sims = sims::DemoSims::start().await?;
            Ok((sims.config()?, Some(sims)))
        }
    }
}

async fn run_serve(
    log_format: LogFormat,
    config: Option<PathBuf>,
    demo: bool,
    listen: Option<SocketAddr>,
    allow_unauthenticated: bool,
) -> anyhow::Result<Stopped> {
    // The config first: it says whether spans are exported, which the logging set-up needs.
    let path = if demo { None } else { config };
    let (config, sims) = load(path.clone()).await?;
    let telemetry = Telemetry::start(&config.telemetry)?;
    init_logs_with(log_format, "info", telemetry.as_ref());
    if let Some(t) = &telemetry {
        tracing::info!(endpoint = t.url(), "exporting traces over OTLP/HTTP");
    }
    let stopped = serve_loaded(config, path, sims, listen, allow_unauthenticated).await;
    if let Some(t) = telemetry {
        t.shutdown().await;
    }
    stopped
}

/// Serves `config`; `path` is the file it came from, re-read on reload (none for the demo).
async fn serve_loaded(
    config: Config,
    path: Option<PathBuf>,
    sims: Option<sims::DemoSims>,
    listen: Option<SocketAddr>,
    allow_unauthenticated: bool,
) -> anyhow::Result<Stopped> {
    // Descriptors are the first thing a busy gateway runs out of: take all we may have
    // before the connection cap is derived from the limit.
    match backstop_gateway::limits::raise_open_file_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!(before, after, "raised the open-file limit");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let env = sims.as_ref().map(sims::DemoSims::env);
    let app = App::build_with_env(&config, &|var| match &env {
        Some(demo_env) => demo_env(var),
        None => std::env::var(var).ok(),
    })?;
    let addr = listen.unwrap_or(config.server.listen);
    if !app.keys.clients_required() && !addr.ip().is_loopback() && !allow_unauthenticated {
        bail!(
            "refusing to serve on {addr} without client keys: set server.client_keys_env, listen on 127.0.0.1, or pass --allow-unauthenticated"
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let options = ServeOptions::new(&config.server, app.limits);
    tracing::info!(
        max_connections = app.limits.max_connections,
        max_in_flight = app.limits.max_in_flight,
        workers = options.workers,
        "limits"
    );
    let app = Arc::new(app);
    let live = match &path {
        Some(path) => Live::from_file(app, path, Arc::new(|var: &str| std::env::var(var).ok())),
        None => Live::fixed(app),
    };
    // Both handlers before the address is announced: a signal sent right after never kills us.
    let signals = os_signals();
    #[cfg(unix)]
    reload_on_sighup(live.clone()).context("installing the SIGHUP handler")?;
    println!("backstop listening on http://{local}");
    let stopped = serve(listener, live, options, signals).await?;
    if let Some(s) = sims {
        s.shutdown().await;
    }
    match stopped {
        Stopped::Drained => tracing::info!("stopped: every connection finished"),
        Stopped::Cut => tracing::warn!(
            "stopped: connections still open when the grace period ended were closed (exit status 3)"
        ),
        Stopped::Forced => tracing::warn!("stopped at once on a second signal (exit status 4)"),
    }
    Ok(stopped)
}

async fn run_ask(
    prompt: String,
    config: Option<PathBuf>,
    chain: String,
    stream: bool,
) -> anyhow::Result<()> {
    let (mut config, sims) = load(config).await?;
    // One request from this terminal: no clients to authenticate, so the server's key
    // variables need not be set.
    config.server.client_keys_env = None;
    config.server.admin_key_env = None;
    let env = sims.as_ref().map(sims::DemoSims::env);
    let app = App::build_with_env(&config, &|var| match &env {
        Some(demo_env) => demo_env(var),
        None => std::env::var(var).ok(),
    })?;
    let Some(chain_ref) = app.chains.get(&chain) else {
        bail!(
            "no chain named {chain:?}; the config has: {}",
            app.chain_names.join(", ")
        );
    };
    let (provider, attempts, failed) = if stream {
        match chain_ref.stream(prompt.as_str()).await {
            Ok(mut s) => {
                let provider = s.provider_used().to_owned();
                let attempts = s.attempts().to_vec();
                let mut failed = None;
                while let Some(item) = s.next().await {
                    match item {
                        Ok(c) => print!("{}", c.text),
                        Err(e) => failed = Some(e.to_string()),
                    }
                }
                println!();
                (Some(provider), attempts, failed)
            }
            Err(f) => (None, f.attempts.clone(), Some(f.to_string())),
        }
    } else {
        match chain_ref.generate(prompt.as_str()).await {
            Ok(r) => {
                println!("{}", r.text);
                (Some(r.provider_used), r.attempts, None)
            }
            Err(f) => (None, f.attempts.clone(), Some(f.to_string())),
        }
    };
    for a in &attempts {
        let err = a
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        eprintln!(
            "attempt {} {} ({:.1} ms){err}",
            a.provider,
            a.outcome.as_str(),
            a.latency.as_secs_f64() * 1000.0
        );
    }
    if let Some(s) = sims {
        s.shutdown().await;
    }
    match (provider, failed) {
        (Some(p), None) => {
            eprintln!("answered by {p}");
            Ok(())
        }
        (_, Some(e)) => bail!("{e}"),
        (None, None) => bail!("no answer"),
    }
}
