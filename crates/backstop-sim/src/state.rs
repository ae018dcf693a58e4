//! State shared by every connection of one simulator: counters, timing, the fault plan
//! and the request log. The hot path touches only atomics unless faults or recording
//! are on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::fault::FaultPlan;
use crate::{Fault, RecordedRequest, SimConfig};

/// Requests kept in the log; older ones are dropped.
pub const MAX_RECORDED: usize = 10_000;

const RELAXED: Ordering = Ordering::Relaxed;

/// Size of the vectors `/v1/embeddings` answers when the request names no `dimensions`.
pub const DEFAULT_EMBEDDING_DIMENSIONS: usize = 8;

pub(crate) struct Shared {
    latency_ns: AtomicU64,
    ttft_ns: AtomicU64,
    chunk_delay_ns: AtomicU64,
    chunks: AtomicUsize,
    record: bool,
    reject_prefill: AtomicBool,
    continuation_overlap: AtomicUsize,
    embedding_dimensions: AtomicUsize,
    faults_active: AtomicBool,
    plan: Mutex<FaultPlan>,
    requests: AtomicU64,
    faulted: AtomicU64,
    log: Mutex<VecDeque<RecordedRequest>>,
    shutdown: watch::Sender<bool>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: &SimConfig) -> Self {
        Self {
            latency_ns: AtomicU64::new(nanos(config.latency)),
            ttft_ns: AtomicU64::new(nanos(config.ttft)),
            chunk_delay_ns: AtomicU64::new(nanos(config.chunk_delay)),
            chunks: AtomicUsize::new(config.chunks.max(1)),
            record: config.record,
            reject_prefill: AtomicBool::new(config.reject_prefill),
            continuation_overlap: AtomicUsize::new(config.continuation_overlap),
            embedding_dimensions: AtomicUsize::new(DEFAULT_EMBEDDING_DIMENSIONS),
            faults_active: AtomicBool::new(false),
            plan: Mutex::new(FaultPlan::new(config.seed)),
            requests: AtomicU64::new(0),
            faulted: AtomicU64::new(0),
            log: Mutex::new(VecDeque::new()),
            shutdown: watch::Sender::new(false),
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_ns.load(RELAXED))
    }
    pub(crate) fn ttft(&self) -> Duration {
        Duration::from_nanos(self.ttft_ns.load(RELAXED))
    }
    pub(crate) fn chunk_delay(&self) -> Duration {
        Duration::from_nanos(self.chunk_delay_ns.load(RELAXED))
    }
    pub(crate) fn chunks(&self) -> usize {
        self.chunks.load(RELAXED)
    }
    pub(crate) fn set_latency(&self, d: Duration) {
        self.latency_ns.store(nanos(d), RELAXED);
    }
    pub(crate) fn set_ttft(&self, d: Duration) {
        self.ttft_ns.store(nanos(d), RELAXED);
    }
    pub(crate) fn set_chunk_delay(&self, d: Duration) {
        self.chunk_delay_ns.store(nanos(d), RELAXED);
    }
    pub(crate) fn set_chunks(&self, n: usize) {
        self.chunks.store(n.max(1), RELAXED);
    }
    pub(crate) fn records(&self) -> bool {
        self.record
    }
    pub(crate) fn reject_prefill(&self) -> bool {
        self.reject_prefill.load(RELAXED)
    }
    pub(crate) fn set_reject_prefill(&self, yes: bool) {
        self.reject_prefill.store(yes, RELAXED);
    }
    pub(crate) fn embedding_dimensions(&self) -> usize {
        self.embedding_dimensions.load(RELAXED)
    }
    pub(crate) fn set_embedding_dimensions(&self, n: usize) {
        self.embedding_dimensions.store(n, RELAXED);
    }
    pub(crate) fn continuation_overlap(&self) -> usize {
        self.continuation_overlap.load(RELAXED)
    }
    pub(crate) fn set_continuation_overlap(&self, n: usize) {
        self.continuation_overlap.store(n, RELAXED);
    }

    /// Counts a provider request; returns its 1-based number.
    pub(crate) fn count_request(&self) -> u64 {
        self.requests.fetch_add(1, RELAXED) + 1
    }
    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(RELAXED)
    }
    pub(crate) fn faults_applied(&self) -> u64 {
        self.faulted.load(RELAXED)
    }

    /// Edits the fault plan under its lock and refreshes the fast-path flag.
    pub(crate) fn with_plan<R>(&self, f: impl FnOnce(&mut FaultPlan) -> R) -> R {
        let mut plan = lock(&self.plan);
        let r = f(&mut plan);
        self.faults_active
            .store(plan.is_active(), Ordering::Release);
        r
    }

    /// The fault for this request; lock-free when no fault is configured.
    pub(crate) fn next_fault(&self, stream: bool) -> Option<Fault> {
        if !self.faults_active.load(Ordering::Acquire) {
            return None;
        }
        let fault = self.with_plan(|p| p.next_fault(stream));
        if fault.is_some() {
            self.faulted.fetch_add(1, RELAXED);
        }
        fault
    }

    pub(crate) fn push_record(&self, r: RecordedRequest) {
        let mut log = lock(&self.log);
        if log.len() >= MAX_RECORDED {
            log.pop_front();
        }
        log.push_back(r);
    }

    pub(crate) fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.log).iter().cloned().collect()
    }

    pub(crate) fn recorded_len(&self) -> usize {
        lock(&self.log).len()
    }

    /// Clears faults (reseeding the rng), counters and the log.
    pub(crate) fn reset(&self) {
        self.with_plan(FaultPlan::clear);
        self.requests.store(0, RELAXED);
        self.faulted.store(0, RELAXED);
        lock(&self.log).clear();
    }

    /// Signals every hung/stalled request and the server to stop.
    pub(crate) fn trigger_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once shutdown has been triggered (immediately if it already was).
    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps for `d`; false if shutdown came first.
    pub(crate) async fn sleep(&self, d: Duration) -> bool {
        if d.is_zero() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.shutdown_signal() => false,
        }
    }
}
