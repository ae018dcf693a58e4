//! Rust futures as asyncio awaitables, with synchronous cancellation.
//!
//! [`start`] polls the future once on the caller's thread (an in-memory answer, or a refusal
//! by every breaker, is there at once: no thread hand-off), then, if it is still pending,
//! spawns it on the runtime; its result reaches the asyncio future through the loop's
//! [`Inbox`]. The returned [`Call`]'s `cancel()` drops the Rust future *before it returns*.
//! The Python wrappers call it when their `await` is interrupted, so when `asyncio.wait_for`
//! raises `TimeoutError` the cancelled attempt is already on the breaker (with
//! `drop_counts_as_timeout`). A bridge that only signals the task to stop (as
//! `pyo3-async-runtimes` does) records it some time later, on a runtime thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use pyo3::prelude::*;
use tokio::task::AbortHandle;

use crate::inbox::{Deliver, Inbox, resolve};
use crate::runtime::runtime;

type Job = Pin<Box<dyn Future<Output = Deliver> + Send>>;

/// The running future; `None` once it finished or was cancelled.
struct Slot {
    job: Mutex<Option<Job>>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Job>> {
        self.job.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Polls the job under the slot's lock, so `cancel` (which takes it under the same lock) waits
/// for at most one poll; resolves to `None` when the job was taken.
struct Polled(Arc<Slot>);

impl Future for Polled {
    type Output = Option<Deliver>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut job = self.0.lock();
        let Some(fut) = job.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(deliver) => {
                *job = None;
                Poll::Ready(Some(deliver))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One call in flight; `cancel()` stops it.
#[pyclass(module = "backstop._native", frozen)]
pub(crate) struct Call {
    slot: Arc<Slot>,
    /// The runtime task, when the call did not finish on its first poll.
    abort: Option<AbortHandle>,
}

#[pymethods]
impl Call {
    /// Drops the Rust future now, if it is still running (a no-op once it finished).
    fn cancel(&self, py: Python<'_>) {
        if self.abort.is_some() {
            py.detach(|| self.cancel_now());
        }
    }
}

impl Call {
    fn cancel_now(&self) {
        let job = self.slot.lock().take();
        if job.is_some() {
            // Dropped inside the runtime's context: its timers and sockets belong to it.
            let guard = runtime().ok().map(|rt| rt.enter());
            drop(job);
            drop(guard);
            // The task would otherwise wait for a wake-up that never comes.
            if let Some(abort) = &self.abort {
                abort.abort();
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.cancel_now();
    }
}

/// Runs `fut`, whose output `convert` turns into the result of `future` (an asyncio future of
/// the loop that owns `inbox`; an `Err` is set as its exception).
pub(crate) fn start<F, T, C>(
    py: Python<'_>,
    inbox: &Inbox,
    future: Bound<'_, PyAny>,
    fut: F,
    convert: C,
) -> PyResult<Call>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
    C: for<'py> FnOnce(Python<'py>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let rt = runtime()?;
    let mut job: Job = Box::pin(async move {
        let out = fut.await;
        Box::new(move |py: Python<'_>| convert(py, out)) as Deliver
    });
    // The first poll here; the task's first poll registers the waker that counts.
    let first = {
        let _context = rt.enter();
        job.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    };
    let slot = Arc::new(Slot {
        job: Mutex::new(None),
    });
    if let Poll::Ready(deliver) = first {
        resolve(py, &future, deliver);
        return Ok(Call { slot, abort: None });
    }
    *slot.lock() = Some(job);
    let polled = Polled(Arc::clone(&slot));
    let poster = inbox.poster();
    let future = future.unbind();
    let handle = rt.spawn(async move {
        if let Some(deliver) = polled.await {
            poster.post(future, deliver);
        }
    });
    Ok(Call {
        slot,
        abort: Some(handle.abort_handle()),
    })
}
