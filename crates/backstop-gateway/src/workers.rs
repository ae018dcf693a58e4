//! The threads that serve client connections: one single-threaded runtime each. A connection
//! is handed to one at accept and stays there with the upstream connections its requests use
//! (the shared client keeps a pool per runtime), so a request's tasks never wake a task on
//! another thread. Under tokio's work-stealing runtime they did: the futex and context-switch
//! hand-offs cost 5–20% of throughput and most of the idle CPU time at saturation
//! (BENCHMARKS.md, session 30).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Running worker threads; dropping this stops them (and drops the tasks still on them).
pub(crate) struct Workers {
    workers: Vec<Worker>,
    /// Where the search for the least busy worker starts: ties go round robin.
    next: usize,
}

struct Worker {
    handle: Handle,
    /// Its open connections, kept by [`Served`].
    open: Arc<AtomicUsize>,
    /// Dropping it ends the thread's `block_on`.
    _stop: oneshot::Sender<()>,
}

/// A connection's place on a worker: counted until dropped.
pub(crate) struct Served(Arc<AtomicUsize>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// Starts `n` (at least one) threads, each driving its own runtime.
    pub(crate) fn start(n: usize) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name(format!("backstop-worker-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
            workers.push(Worker {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(Workers { workers, next: 0 })
    }

    /// The worker for the next connection: the one with the fewest open, so connections that
    /// outlive others (streams, a client's pooled ones) do not pile up on one thread, and in
    /// turn among equals. Keep the [`Served`] for as long as the connection is open.
    pub(crate) fn next(&mut self) -> (&Handle, Served) {
        let n = self.workers.len();
        let start = self.next % n;
        // From `start` on round; `min_by_key` keeps the first of equals.
        let i = (start..start + n)
            .map(|k| k % n)
            .min_by_key(|&i| self.workers[i].open.load(Ordering::Relaxed))
            .unwrap_or(start);
        self.next = i + 1;
        let worker = &self.workers[i];
        worker.open.fetch_add(1, Ordering::Relaxed);
        (&worker.handle, Served(worker.open.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_dealt_to_every_worker_in_turn() {
        let mut workers = Workers::start(3).unwrap();
        let mut held = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..6 {
            let (handle, served) = workers.next();
            ids.push(handle.id());
            held.push(served);
        }
        assert_eq!(ids[0..3], ids[3..6]);
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_ne!(ids[0], ids[2]);
    }

    #[test]
    fn a_new_connection_goes_to_the_worker_with_fewest_open() {
        let mut workers = Workers::start(2).unwrap();
        let (first, a) = workers.next();
        let first = first.id();
        let (second, b) = workers.next();
        let second = second.id();
        let (_, c) = workers.next();
        // `a` and `c` were on the first worker; both close, `b` stays open on the second.
        drop((a, c));
        // Turn by turn the second would be next; it has the only open connection.
        let (next, d) = workers.next();
        assert_eq!(next.id(), first);
        let (next, _e) = workers.next();
        assert_eq!(next.id(), second, "one each again: in turn");
        drop((b, d));
    }

    #[test]
    fn a_task_spawned_on_a_worker_runs_there_and_stops_with_it() {
        let mut workers = Workers::start(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = workers.next().0.clone();
        handle.spawn(async move {
            let name = std::thread::current().name().map(str::to_owned);
            tx.send(name).unwrap();
            std::future::pending::<()>().await;
        });
        let name = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(name.as_deref(), Some("backstop-worker-0"));
        drop(workers);
        // Its runtime is gone: spawning on the handle now fails instead of hanging.
        let waiter = Builder::new_current_thread().build().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match waiter.block_on(handle.spawn(async {})) {
                Err(e) if e.is_cancelled() => break,
                _ if std::time::Instant::now() > deadline => panic!("the worker still runs"),
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    }
}
