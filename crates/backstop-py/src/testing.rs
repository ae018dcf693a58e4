//! `backstop.testing`: in-process scripted providers for tests (no network), on the
//! library's `ScriptedProvider`.

use std::sync::Arc;

use backstop::ErrorKind;
use backstop::testing::{ScriptedProvider, Step as RustStep};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::duration::seconds as to_duration;
use crate::llms::Llm;

/// Every kind, so names are parsed with the library's own `as_str`.
const KINDS: [ErrorKind; 14] = [
    ErrorKind::Timeout,
    ErrorKind::Connect,
    ErrorKind::RateLimited { retry_after: None },
    ErrorKind::QuotaExhausted,
    ErrorKind::Overloaded,
    ErrorKind::Server,
    ErrorKind::Auth,
    ErrorKind::InvalidRequest,
    ErrorKind::ContextLengthExceeded,
    ErrorKind::ContentFiltered,
    ErrorKind::Protocol,
    ErrorKind::CircuitOpen,
    ErrorKind::LocalResource,
    ErrorKind::Cancelled,
];

fn parse_kind(name: &str) -> PyResult<ErrorKind> {
    KINDS
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
            PyValueError::new_err(format!(
                "unknown error kind {name:?}; kinds are {}",
                names.join(", ")
            ))
        })
}

/// One scripted call: a reply, a failure, a delay, a hang or a chunked stream.
#[pyclass(module = "backstop.testing", name = "Step", frozen)]
#[derive(Clone)]
pub(crate) struct Step {
    inner: RustStep,
}

#[pymethods]
impl Step {
    fn __repr__(&self) -> String {
        format!("Step({:?})", self.inner)
    }
}

/// Answers with `text` (streamed: one chunk).
#[pyfunction]
pub(crate) fn reply(text: String) -> Step {
    Step {
        inner: RustStep::reply(text),
    }
}

/// Fails with this error kind (`"server"`, `"timeout"`, `"rate_limited"`, ...).
#[pyfunction]
pub(crate) fn fail(kind: &str) -> PyResult<Step> {
    Ok(Step {
        inner: RustStep::fail(parse_kind(kind)?),
    })
}

/// Waits `seconds`, then plays `then`.
#[pyfunction]
pub(crate) fn delay(seconds: f64, then: PyRef<'_, Step>) -> PyResult<Step> {
    Ok(Step {
        inner: RustStep::delay(to_duration("seconds", seconds, false)?, then.inner.clone()),
    })
}

/// Never answers (until the chain's timeout or a cancellation).
#[pyfunction]
pub(crate) fn hang() -> Step {
    Step {
        inner: RustStep::hang(),
    }
}

/// Streams these chunks (non-streamed: their concatenation).
#[pyfunction]
pub(crate) fn chunks(pieces: Vec<String>) -> Step {
    Step {
        inner: RustStep::chunks(pieces),
    }
}

/// Streams these chunks, then fails with `kind` (after the commit point).
#[pyfunction]
pub(crate) fn chunks_then_fail(pieces: Vec<String>, kind: &str) -> PyResult<Step> {
    Ok(Step {
        inner: RustStep::chunks_then_fail(pieces, parse_kind(kind)?),
    })
}

/// An in-process provider that plays `steps` in order; the last repeats. Without steps it
/// answers `"answer from {name}"`. `calls` counts the calls it received.
#[pyclass(module = "backstop.testing", name = "ScriptedLLM", extends = Llm, frozen)]
pub(crate) struct Scripted {
    provider: ScriptedProvider,
}

#[pymethods]
impl Scripted {
    #[new]
    #[pyo3(signature = (name, steps = None))]
    fn new(name: String, steps: Option<Vec<PyRef<'_, Step>>>) -> PyInitializer {
        let mut provider = ScriptedProvider::new(name.clone());
        if let Some(steps) = steps {
            provider = provider.script(steps.iter().map(|s| s.inner.clone()));
        }
        let base = Llm::new(Arc::new(provider.clone()), format!("{name}-model"), None);
        PyClassInitializer::from(base).add_subclass(Scripted { provider })
    }

    /// Appends steps to the script (seen by chains already holding this provider).
    fn push(&self, steps: Vec<PyRef<'_, Step>>) {
        self.provider.push(steps.iter().map(|s| s.inner.clone()));
    }

    /// Calls received so far.
    #[getter]
    fn calls(&self) -> u64 {
        self.provider.calls()
    }
}

type PyInitializer = PyClassInitializer<Scripted>;
