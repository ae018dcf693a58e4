//! Where finished calls wait for their event loop: one `Inbox` per loop (the Python side keeps
//! them in a `WeakKeyDictionary`), whose socket the loop watches with `add_reader`.
//!
//! Runtime threads never take the GIL: a finished call is queued here with its (still Rust)
//! result, and the first one queued since the last drain writes one byte to wake the loop.
//! The loop thread drains the queue with the GIL it already holds, builds the Python values
//! and sets them on the futures. So completions do not fight the loop for the GIL (a thousand
//! calls finishing at once cost one wake-up, not a thousand GIL hand-offs), and nothing on a
//! runtime thread can touch the interpreter while it shuts down.

#[cfg(not(unix))]
compile_error!("backstop-py needs Unix (Linux, macOS): the loop is woken through a Unix socket");

use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;

/// Builds the Python value (or exception) of a finished call, on the loop thread.
pub(crate) type Deliver = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

struct Shared {
    queue: Mutex<Vec<(Py<PyAny>, Deliver)>>,
    /// A wake-up byte is on its way and the drain that consumes it has not started.
    signalled: AtomicBool,
    writer: UnixStream,
    reader: UnixStream,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Vec<(Py<PyAny>, Deliver)>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One event loop's queue of finished calls.
#[pyclass(module = "backstop._native", frozen)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

/// The runtime-thread side of an inbox.
#[derive(Clone)]
pub(crate) struct Poster(Arc<Shared>);

impl Poster {
    /// Queues a finished call for `future`; wakes the loop unless a wake-up is pending.
    pub(crate) fn post(&self, future: Py<PyAny>, deliver: Deliver) {
        self.0.queue().push((future, deliver));
        if !self.0.signalled.swap(true, Ordering::AcqRel) {
            // Cannot block (non-blocking, and at most one byte is ever unread); a closed loop
            // reads no more anyway.
            let _ = (&self.0.writer).write(&[1]);
        }
    }
}

#[pymethods]
impl Inbox {
    #[new]
    fn new() -> PyResult<Self> {
        let (writer, reader) = UnixStream::pair()?;
        writer.set_nonblocking(true)?;
        reader.set_nonblocking(true)?;
        Ok(Inbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                signalled: AtomicBool::new(false),
                writer,
                reader,
            }),
        })
    }

    /// The socket the loop watches (`loop.add_reader(inbox.fileno(), inbox.drain)`).
    fn fileno(&self) -> i32 {
        self.shared.reader.as_raw_fd()
    }

    /// Called by the loop when the socket is readable: resolves every queued call.
    fn drain(&self, py: Python<'_>) {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.shared.reader).read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
        // Cleared before the queue is taken: a call queued after this wakes the loop again.
        self.shared.signalled.store(false, Ordering::Release);
        let finished = std::mem::take(&mut *self.shared.queue());
        for (future, deliver) in finished {
            resolve(py, future.bind(py), deliver);
        }
    }
}

impl Inbox {
    pub(crate) fn poster(&self) -> Poster {
        Poster(Arc::clone(&self.shared))
    }
}

/// Sets the call's result (or exception) on `future`, unless it is already done (cancelled
/// while the answer was on its way: then nobody is waiting for it).
pub(crate) fn resolve(py: Python<'_>, future: &Bound<'_, PyAny>, deliver: Deliver) {
    let (method, value) = match deliver(py) {
        Ok(v) => ("set_result", v),
        Err(e) => ("set_exception", e.into_value(py).into_any()),
    };
    let done = future
        .call_method0("done")
        .and_then(|d| d.is_truthy())
        .unwrap_or(true);
    if !done {
        // Only fails if the future was resolved meanwhile, which the loop thread rules out.
        let _ = future.call_method1(method, (value,));
    }
}
