//! The threads that serve client connections: one single-threaded runtime each. A connection
//! is handed to one at accept and stays there with the upstream connections its requests use
//! (the shared client keeps a pool per runtime), so a request's tasks never wake a task on
//! another thread. Under tokio's work-stealing runtime they did: the futex and context-switch
//! hand-offs cost 5–20% of throughput and most of the idle CPU time at saturation
//! (BENCHMARKS.md, session 30).

use std::io;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Running worker threads; dropping this stops them (and drops the tasks still on them).
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: usize,
    /// Dropping a sender ends its thread's `block_on`.
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `n` (at least one) threads, each driving its own runtime.
    pub(crate) fn start(n: usize) -> io::Result<Self> {
        let n = n.max(1);
        let mut handles = Vec::with_capacity(n);
        let mut stop = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("backstop-worker-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(rx);
                })?;
            stop.push(tx);
        }
        Ok(Workers {
            handles,
            next: 0,
            _stop: stop,
        })
    }

    /// The runtime for the next connection: round robin, so each gets an equal share of
    /// connections whatever their source ports (`SO_REUSEPORT` hashes them and can leave one
    /// thread with most of a client's pooled connections).
    pub(crate) fn next(&mut self) -> &Handle {
        let i = self.next;
        self.next = (i + 1) % self.handles.len();
        &self.handles[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_dealt_to_every_worker_in_turn() {
        let mut workers = Workers::start(3).unwrap();
        let ids: Vec<_> = (0..6).map(|_| workers.next().id()).collect();
        assert_eq!(ids[0..3], ids[3..6]);
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_ne!(ids[0], ids[2]);
    }

    #[test]
    fn a_task_spawned_on_a_worker_runs_there_and_stops_with_it() {
        let mut workers = Workers::start(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = workers.next().clone();
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
