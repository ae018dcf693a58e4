//! The process's one Tokio runtime, and the sync bridge (`generate()`) onto it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// The runtime and the process that built it (a forked child inherits the memory, not the
/// worker threads).
struct Shared {
    runtime: Runtime,
    pid: u32,
}

static RUNTIME: OnceLock<Result<Shared, String>> = OnceLock::new();

/// How often a blocking `generate()` wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The runtime every call runs on, started on first use.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    let shared = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("backstop-tokio")
            .enable_all()
            .build()
            .map(|runtime| Shared {
                runtime,
                pid: std::process::id(),
            })
            .map_err(|e| format!("backstop could not start its Tokio runtime: {e}"))
    });
    match shared {
        Ok(s) if s.pid == std::process::id() => Ok(&s.runtime),
        Ok(_) => Err(PyRuntimeError::new_err(
            "backstop's runtime was started in the parent before os.fork(); a forked child \
             cannot use it. Create chains and make calls only after forking (or use spawn).",
        )),
        Err(e) => Err(PyRuntimeError::new_err(e.clone())),
    }
}

/// Runs `fut` to completion on the runtime with the GIL released, waking every
/// [`SIGNAL_CHECK`] so Ctrl-C interrupts it (the future is then dropped: a cancellation).
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    // Boxed so that it can be dropped inside the runtime's context when interrupted.
    let mut fut = Box::pin(fut);
    loop {
        let step = py.detach(|| {
            rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, fut.as_mut()).await.ok() })
        });
        if let Some(out) = step {
            return Ok(out);
        }
        if let Err(e) = py.check_signals() {
            let guard = rt.enter();
            drop(fut);
            drop(guard);
            return Err(e);
        }
    }
}
