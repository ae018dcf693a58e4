//! The accept loop: HTTP/1.1 with keep-alive and a header read timeout; connections beyond
//! `max_connections` answered 503 and closed; writes to clients that read nothing cut after
//! `client_write_timeout`; and shutdown in three steps:
//!
//! 1. the first signal stops accepting; in-flight requests and streams get `shutdown_grace`;
//! 2. when the grace period ends, streams still open get an SSE `server_shutting_down` error
//!    event and requests still waiting on a provider a 503, then connections are closed;
//! 3. a second signal during the drain exits at once.
//!
//! The outcome ([`Stopped`]) becomes the process exit status.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use crate::limits::Limits;
use crate::reload::Live;
use crate::workers::Workers;
use crate::write_timeout::WriteTimeout;

/// Connections being answered 503 at once; beyond it accepting pauses (the backlog waits).
/// Well inside the descriptor reserve ([`crate::limits::FD_RESERVE`]).
const MAX_SHEDDING: usize = 16;
/// After the grace period, how long the final error events get to reach their clients.
const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// Serving limits.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Longest time to receive a request's headers.
    pub header_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// A client whose connection accepts no bytes for this long is disconnected.
    pub client_write_timeout: Duration,
    /// Open connections beyond which new ones are answered 503 and closed.
    pub max_connections: usize,
    /// hyper's per-connection buffer: bounds the response bytes held for a slow reader.
    pub max_stream_buffer_bytes: usize,
    /// Threads serving connections, each with its own single-threaded runtime; 0 serves them
    /// on the runtime that calls [`serve`].
    pub workers: usize,
}

impl ServeOptions {
    /// The options a config asks for, with the caps resolved in `limits`.
    pub fn new(server: &ServerConfig, limits: Limits) -> Self {
        Self {
            header_timeout: server.header_timeout,
            shutdown_grace: server.shutdown_grace,
            client_write_timeout: server.client_write_timeout,
            max_connections: limits.max_connections,
            max_stream_buffer_bytes: server.max_stream_buffer_bytes,
            workers: server.workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(1, std::num::NonZeroUsize::get)
                    .min(crate::config::MAX_WORKERS)
            }),
        }
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within the grace period.
    Drained,
    /// The grace period ended with connections open: their streams were ended with a
    /// `server_shutting_down` event and the connections closed.
    Cut,
    /// A second signal during the drain: connections were dropped at once.
    Forced,
}

impl Stopped {
    /// The process exit status: 0 drained, 3 connections cut at the end of the grace
    /// period, 4 exited at once on a second signal.
    pub fn exit_code(self) -> u8 {
        match self {
            Stopped::Drained => 0,
            Stopped::Cut => 3,
            Stopped::Forced => 4,
        }
    }
}

/// Shutdown signals: each item is one SIGTERM / Ctrl-C. The channel closing before any
/// signal also means "stop" (the owner is gone); after a signal it means nothing more.
#[derive(Debug)]
pub struct Signals {
    rx: mpsc::Receiver<()>,
    closed: bool,
}

impl Signals {
    /// A sender for tests and [`os_signals`], and the receiving side for [`serve`].
    pub fn channel() -> (mpsc::Sender<()>, Signals) {
        let (tx, rx) = mpsc::channel(4);
        (tx, Signals { rx, closed: false })
    }

    /// The first signal (or the channel closing).
    async fn first(&mut self) {
        if self.rx.recv().await.is_none() {
            self.closed = true;
        }
    }

    /// A further signal; never resolves once the channel is closed.
    async fn again(&mut self) {
        if !self.closed && self.rx.recv().await.is_some() {
            return;
        }
        self.closed = true;
        std::future::pending::<()>().await;
    }
}

/// Forwards every Ctrl-C and SIGTERM of the process into a [`Signals`] channel. The handlers
/// are installed before this returns, so a signal sent right after start-up is not lost.
pub fn os_signals() -> Signals {
    let (tx, signals) = Signals::channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        if let (Ok(mut term), Ok(mut int)) = (term, int) {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            });
            return signals;
        }
        tracing::warn!("could not install signal handlers; falling back to Ctrl-C only");
    }
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    signals
}

/// Decrements the open-connection count when a connection task ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves the gateway on `listener` until a signal, then drains as the module docs say. A
/// reload swaps the app in `live`; the listener and these options stay.
pub async fn serve(
    listener: TcpListener,
    live: Arc<Live>,
    options: ServeOptions,
    mut signals: Signals,
) -> std::io::Result<Stopped> {
    let router = crate::server::router(live.clone());
    // The registry and the shutdown channel are the same across reloads.
    let metrics = live.app().metrics.clone();
    let stopping = live.app().stopping.clone();
    let shed_router = Router::new()
        .fallback(|| async {
            crate::server::overloaded(
                "the gateway is at its connection limit (server.max_connections); retry shortly",
                "gateway_overloaded",
            )
        })
        .layer(axum::middleware::from_fn(crate::request_id::layer));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shedding = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_stream_buffer_bytes)
        .keep_alive(true);
    let mut shed_builder = http1::Builder::new();
    shed_builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(1))
        .keep_alive(false);
    let mut workers = match options.workers {
        0 => None,
        n => Some(Workers::start(n)?),
    };
    let timeouts = metrics.clone();
    let on_timeout: crate::write_timeout::OnTimeout = Arc::new(move || timeouts.write_timeout());
    loop {
        tokio::select! {
            accepted = listener.accept(), if shedding.len() < MAX_SHEDDING => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if open.load(Ordering::Relaxed) >= options.max_connections {
                    metrics.shed("connections");
                    let service = TowerToHyperService::new(shed_router.clone());
                    let conn = shed_builder.serve_connection(TokioIo::new(stream), service);
                    shedding.spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                    });
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let guard = Open(open.clone());
                let service = TowerToHyperService::new(router.clone());
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let on_timeout = on_timeout.clone();
                let write_timeout = options.client_write_timeout;
                let answer = move |stream: TcpStream| async move {
                    let _guard = guard;
                    let io = WriteTimeout::new(stream, write_timeout, Some(on_timeout));
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                };
                match workers.as_mut() {
                    None => {
                        connections.spawn(answer(stream));
                    }
                    // Moved to the worker's own event loop: it is registered there.
                    Some(w) => match stream.into_std() {
                        Ok(stream) => {
                            let (worker, served) = w.next();
                            connections.spawn_on(
                                async move {
                                    let _served = served;
                                    match TcpStream::from_std(stream) {
                                        Ok(stream) => answer(stream).await,
                                        Err(e) => tracing::warn!(error = %e, "could not hand a connection to a worker"),
                                    }
                                },
                                worker,
                            );
                        }
                        Err(e) => tracing::warn!(error = %e, "could not hand a connection to a worker"),
                    },
                }
            }
            // Reap finished connection tasks so the sets do not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(_) = shedding.join_next(), if !shedding.is_empty() => {}
            () = signals.first() => break,
        }
    }
    drop(listener);
    shedding.abort_all();
    tracing::info!(
        grace_ms = options.shutdown_grace.as_millis() as u64,
        open = open.load(Ordering::Relaxed),
        "shutting down: draining connections (a second signal exits at once)"
    );
    let drain = graceful.shutdown();
    tokio::pin!(drain);
    tokio::select! {
        r = tokio::time::timeout(options.shutdown_grace, &mut drain) => if r.is_ok() {
            return Ok(Stopped::Drained);
        },
        () = signals.again() => {
            tracing::warn!(open = open.load(Ordering::Relaxed), "second signal: exiting at once");
            connections.abort_all();
            return Ok(Stopped::Forced);
        }
    }
    tracing::warn!(
        open = open.load(Ordering::Relaxed),
        "grace period over: ending open streams with server_shutting_down and closing connections"
    );
    stopping.send_replace(true);
    tokio::select! {
        _ = tokio::time::timeout(FINAL_FLUSH.min(options.shutdown_grace), &mut drain) => {}
        () = signals.again() => {}
    }
    connections.shutdown().await;
    Ok(Stopped::Cut)
}
