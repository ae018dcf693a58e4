//! Rust futures as asyncio awaitables, with synchronous cancellation.
//!
//! [`start`] spawns the future on the runtime and returns a [`Call`]: an asyncio future
//! (created on the caller's running loop) that the result lands in, through
//! `loop.call_soon_threadsafe`, and a `cancel()` that drops the Rust future *before it
//! returns*. The Python wrappers call `cancel()` when their `await` is interrupted, so when
//! `asyncio.wait_for` raises `TimeoutError` the cancelled attempt is already on the breaker
//! (with `drop_counts_as_timeout`). A bridge that only signals the task to stop (as
//! `pyo3-async-runtimes` does) records it some time later, on a runtime thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::task::AbortHandle;

use crate::runtime::runtime;

/// Builds the Python value (or exception) once the future finished, with the GIL held.
type Deliver = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;
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

/// One call in flight: `future` is the asyncio future to await, `cancel()` stops the call.
#[pyclass(module = "backstop._native", frozen)]
pub(crate) struct Call {
    slot: Arc<Slot>,
    abort: AbortHandle,
    /// The asyncio future the result (or exception) is set on.
    #[pyo3(get)]
    future: Py<PyAny>,
}

#[pymethods]
impl Call {
    /// Drops the Rust future now, if it is still running (a no-op once it finished).
    fn cancel(&self, py: Python<'_>) {
        py.detach(|| self.cancel_now());
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
            self.abort.abort();
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.cancel_now();
    }
}

/// Runs `fut` on the runtime; `convert` turns its output into the Python result (an `Err` is
/// set as the future's exception). Must be called with a running asyncio loop.
pub(crate) fn start<F, T, C>(py: Python<'_>, fut: F, convert: C) -> PyResult<Call>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
    C: for<'py> FnOnce(Python<'py>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let rt = runtime()?;
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let future = event_loop.call_method0("create_future")?;
    let job: Job = Box::pin(async move {
        let out = fut.await;
        Box::new(move |py: Python<'_>| convert(py, out)) as Deliver
    });
    let slot = Arc::new(Slot {
        job: Mutex::new(Some(job)),
    });
    let polled = Polled(Arc::clone(&slot));
    let (loop_ref, fut_ref) = (event_loop.unbind(), future.clone().unbind());
    let handle = rt.spawn(async move {
        if let Some(deliver) = polled.await {
            deliver_later(loop_ref, fut_ref, deliver);
        }
    });
    Ok(Call {
        slot,
        abort: handle.abort_handle(),
        future: future.unbind(),
    })
}

/// Set (by an `atexit` hook) once the interpreter is shutting down: runtime threads must not
/// take the GIL any more (CPython ends a thread that asks for it while finalizing, which a
/// Tokio worker does not survive).
static FINALIZING: AtomicBool = AtomicBool::new(false);
/// Deliveries holding the GIL or waiting for it.
static DELIVERING: AtomicUsize = AtomicUsize::new(0);

/// Registered with `atexit` at import: stops deliveries and waits, with the GIL released, for
/// those under way (one may be inside `call_soon_threadsafe`, which can yield the GIL).
#[pyfunction]
pub(crate) fn before_exit(py: Python<'_>) {
    FINALIZING.store(true, Ordering::SeqCst);
    py.detach(|| {
        while DELIVERING.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
    });
}

/// Hands the outcome to the loop's thread (from a runtime thread, taking the GIL), which sets
/// it unless the future was cancelled. Nobody is waiting once the interpreter shuts down.
fn deliver_later(event_loop: Py<PyAny>, future: Py<PyAny>, deliver: Deliver) {
    DELIVERING.fetch_add(1, Ordering::SeqCst);
    if !FINALIZING.load(Ordering::SeqCst) {
        Python::attach(move |py| deliver_with_gil(py, event_loop, future, deliver));
    }
    DELIVERING.fetch_sub(1, Ordering::SeqCst);
}

fn deliver_with_gil(py: Python<'_>, event_loop: Py<PyAny>, future: Py<PyAny>, deliver: Deliver) {
    let (ok, value) = match deliver(py) {
        Ok(v) => (true, v),
        Err(e) => (false, e.into_value(py).into_any()),
    };
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let Ok(resolve) = RESOLVE.get_or_try_init(py, || {
        wrap_pyfunction!(resolve, py).map(|f| f.into_any().unbind())
    }) else {
        return;
    };
    // Fails only when the loop is closed: then nobody is waiting for the answer.
    let _ = event_loop.call_method1(py, "call_soon_threadsafe", (resolve, future, ok, value));
}

/// Runs on the loop's thread: sets the result or exception unless the future is done
/// (cancelled while the answer was on its way).
#[pyfunction]
fn resolve(future: &Bound<'_, PyAny>, ok: bool, value: Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let method = if ok { "set_result" } else { "set_exception" };
    future.call_method1(method, (value,))?;
    Ok(())
}
