//! Starting a simulator and controlling it from Rust.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::Shared;
use crate::{Fault, RecordedRequest, Scope, SimConfig};

/// Entry point: starts simulator servers.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Starts a simulator on `127.0.0.1` with an ephemeral port.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a simulator on `addr`.
    pub async fn start_on(addr: SocketAddr, config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(&config));
        let app = crate::server::router(Arc::clone(&shared));
        let signal_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { signal_shared.shutdown_signal().await })
            .await
        });
        Ok(SimHandle {
            shared,
            addr,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }
}

/// Handle to a running simulator; clones control the same instance.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Arc<Mutex<Option<JoinHandle<std::io::Result<()>>>>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL for Anthropic (`/v1/messages`) and for
    /// Groq (`/openai/v1/chat/completions`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the OpenAI base URL (`/chat/completions` appended).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Applies `fault` to each of the next `n` requests (queued after earlier calls).
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.shared.with_plan(|p| p.push_next(n, fault));
    }

    /// Adds a random fault applied with probability `rate` (clamped to 0..=1) to
    /// requests without a queued fault. Draws come from the seeded rng in request order.
    pub fn set_random(&self, fault: Fault, rate: f64) {
        self.set_random_for(fault, rate, Scope::All);
    }

    /// Like [`set_random`](Self::set_random), for the requests in `scope` only (a mid-stream
    /// fault for streamed requests, say); other requests never draw it.
    pub fn set_random_for(&self, fault: Fault, rate: f64, scope: Scope) {
        self.shared.with_plan(|p| p.push_random(fault, rate, scope));
    }

    /// Removes queued and random faults and reseeds the rng.
    pub fn clear_faults(&self) {
        self.shared.with_plan(crate::fault::FaultPlan::clear);
    }

    /// Whether a conversation ending with an assistant message (prefill) gets a 400.
    pub fn set_reject_prefill(&self, yes: bool) {
        self.shared.set_reject_prefill(yes);
    }

    /// How many characters of the partial answer a continuation repeats before going on.
    pub fn set_continuation_overlap(&self, n: usize) {
        self.shared.set_continuation_overlap(n);
    }

    /// Sets the base delay before response headers.
    pub fn set_latency(&self, d: Duration) {
        self.shared.set_latency(d);
    }

    /// Sets the delay before the first streamed content chunk.
    pub fn set_ttft(&self, d: Duration) {
        self.shared.set_ttft(d);
    }

    /// Sets the delay between streamed content chunks.
    pub fn set_chunk_delay(&self, d: Duration) {
        self.shared.set_chunk_delay(d);
    }

    /// The size of the vectors `/v1/embeddings` answers when a request names no `dimensions`
    /// (default [`crate::DEFAULT_EMBEDDING_DIMENSIONS`]).
    pub fn set_embedding_dimensions(&self, n: usize) {
        self.shared.set_embedding_dimensions(n);
    }

    /// Sets the number of content chunks per reply (at least 1).
    pub fn set_chunks(&self, n: usize) {
        self.shared.set_chunks(n);
    }

    /// Requests received on provider routes, faulted or not, since start or reset.
    pub fn request_count(&self) -> u64 {
        self.shared.request_count()
    }

    /// Requests that had a fault applied, since start or reset.
    pub fn faults_applied(&self) -> u64 {
        self.shared.faults_applied()
    }

    /// The request log, oldest first (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded()
    }

    /// Clears faults, counters and the log (timing is kept).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, ends hung and stalled requests, and waits for the server.
    pub async fn shutdown(self) {
        self.shared.trigger_shutdown();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
