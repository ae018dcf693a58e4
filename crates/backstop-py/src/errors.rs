//! Rust errors as instances of the Python exception classes in `backstop/_errors.py`.

use std::time::Duration;

use backstop::{AllProvidersFailed, ChainBuildError, ErrorKind, ProviderError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

use crate::results::attempt_list;

const MODULE: &str = "backstop._errors";

static PROVIDER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STREAM_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ALL_FAILED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The Python class of a provider's error: `ProviderError`, or `StreamError` for a stream
/// that broke after its first chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Class {
    Provider,
    Stream,
}

/// Seconds as a float, for `retry_after` attributes.
fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// A `ProviderError` (or `StreamError`) instance for one provider's error.
pub(crate) fn provider_error<'py>(
    py: Python<'py>,
    class: Class,
    provider: Option<&str>,
    error: &ProviderError,
    attempted: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let cell = match class {
        Class::Provider => &PROVIDER_ERROR,
        Class::Stream => &STREAM_ERROR,
    };
    let name = match class {
        Class::Provider => "ProviderError",
        Class::Stream => "StreamError",
    };
    let retry_after = match error.kind {
        ErrorKind::RateLimited { retry_after } => retry_after,
        _ => None,
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("kind", error.kind.as_str())?;
    kwargs.set_item("provider", provider)?;
    kwargs.set_item("status", error.status)?;
    kwargs.set_item("attempted", attempted)?;
    kwargs.set_item("retry_after", secs(retry_after))?;
    cell.import(py, MODULE, name)?
        .call((error.message.as_str(),), Some(&kwargs))
}

/// `AllProvidersFailedError`: every provider's error, every attempt, the deadline flag.
pub(crate) fn all_failed(py: Python<'_>, failed: &AllProvidersFailed) -> PyErr {
    match all_failed_value(py, failed) {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

fn all_failed_value<'py>(
    py: Python<'py>,
    failed: &AllProvidersFailed,
) -> PyResult<Bound<'py, PyAny>> {
    let errors = PyList::empty(py);
    for f in &failed.errors {
        errors.append(provider_error(
            py,
            Class::Provider,
            Some(&f.provider),
            &f.error,
            f.attempted,
        )?)?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("kind", failed.summary_kind().as_str())?;
    kwargs.set_item("errors", errors)?;
    kwargs.set_item("attempts", attempt_list(py, &failed.attempts)?)?;
    kwargs.set_item("deadline_exceeded", failed.deadline_exceeded)?;
    kwargs.set_item("retry_after", secs(failed.retry_after))?;
    ALL_FAILED
        .import(py, MODULE, "AllProvidersFailedError")?
        .call((failed.to_string(),), Some(&kwargs))
}

/// A `StreamError` raised from a committed stream.
pub(crate) fn stream_failed(py: Python<'_>, provider: &str, error: &ProviderError) -> PyErr {
    match provider_error(py, Class::Stream, Some(provider), error, true) {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

/// `ChainConfigError` (a `ValueError`) for a chain that cannot be built.
pub(crate) fn config_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let value = CONFIG_ERROR
        .import(py, MODULE, "ChainConfigError")
        .and_then(|class| class.call1((message,)));
    match value {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

/// `ChainConfigError` for the library's build error.
pub(crate) fn build_error(py: Python<'_>, e: &ChainBuildError) -> PyErr {
    config_error(py, e.to_string())
}
