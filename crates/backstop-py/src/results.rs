//! What a call returns: `FallbackResult`, `Usage`, `Attempt` and streamed `Chunk`s.

use backstop::{Attempt as RustAttempt, Chunk as RustChunk, FallbackResult as RustResult};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::describe::{repr, repr_opt};
use crate::errors::{Class, provider_error};

/// Token counts of one answer (`None` where the provider did not say).
#[pyclass(module = "backstop", frozen, get_all)]
pub(crate) struct Usage {
    input_tokens: u32,
    output_tokens: u32,
    total_tokens: u32,
    cached_input_tokens: Option<u32>,
    cache_write_input_tokens: Option<u32>,
    reasoning_tokens: Option<u32>,
}

#[pymethods]
impl Usage {
    fn __repr__(&self) -> String {
        format!(
            "Usage(input_tokens={}, output_tokens={}, total_tokens={})",
            self.input_tokens, self.output_tokens, self.total_tokens
        )
    }
}

fn usage(py: Python<'_>, u: Option<backstop::Usage>) -> PyResult<Option<Py<Usage>>> {
    u.map(|u| {
        Py::new(
            py,
            Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                total_tokens: u.total(),
                cached_input_tokens: u.cached_input_tokens,
                cache_write_input_tokens: u.cache_write_input_tokens,
                reasoning_tokens: u.reasoning_tokens,
            },
        )
    })
    .transpose()
}

/// One call (or skip) the chain made: provider, outcome, error, latency in seconds.
#[pyclass(module = "backstop", frozen, get_all)]
pub(crate) struct Attempt {
    provider: String,
    /// `success`, `failed`, `skipped` or `cancelled`.
    outcome: &'static str,
    /// A `ProviderError` for failed and skipped attempts.
    error: Option<Py<PyAny>>,
    latency: f64,
}

#[pymethods]
impl Attempt {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let error = match &self.error {
            Some(e) => e.bind(py).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "Attempt(provider={}, outcome={}, latency={:.6}, error={error})",
            repr(py, &self.provider)?,
            repr(py, self.outcome)?,
            self.latency
        ))
    }
}

/// The chain's attempts as a list of `Attempt`.
pub(crate) fn attempt_list<'py>(
    py: Python<'py>,
    attempts: &[RustAttempt],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for a in attempts {
        let error = a
            .error
            .as_ref()
            .map(|e| provider_error(py, Class::Provider, Some(&a.provider), e, true))
            .transpose()?
            .map(Bound::unbind);
        list.append(Attempt {
            provider: a.provider.clone(),
            outcome: a.outcome.as_str(),
            error,
            latency: a.latency.as_secs_f64(),
        })?;
    }
    Ok(list)
}

/// The first answer the chain got, and who gave it.
#[pyclass(module = "backstop", frozen, get_all)]
pub(crate) struct FallbackResult {
    text: String,
    /// The name of the breaker of the provider that answered.
    provider_used: String,
    model: String,
    usage: Option<Py<Usage>>,
    finish_reason: Option<String>,
    refusal: Option<String>,
    attempts: Py<PyList>,
}

#[pymethods]
impl FallbackResult {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut text: String = self.text.chars().take(40).collect();
        if text.len() < self.text.len() {
            text.push('…');
        }
        Ok(format!(
            "FallbackResult(provider_used={}, model={}, text={})",
            repr(py, &self.provider_used)?,
            repr(py, &self.model)?,
            repr(py, &text)?
        ))
    }
}

/// Converts the chain's answer.
pub(crate) fn fallback_result(py: Python<'_>, r: RustResult) -> PyResult<Py<FallbackResult>> {
    let attempts = attempt_list(py, &r.attempts)?.unbind();
    Py::new(
        py,
        FallbackResult {
            text: r.text,
            provider_used: r.provider_used,
            model: r.model,
            usage: usage(py, r.usage)?,
            finish_reason: r.finish_reason.map(|f| f.as_str().to_owned()),
            refusal: r.refusal,
            attempts,
        },
    )
}

/// One piece of a streamed answer; the last one carries the finish reason (and usage when the
/// provider reports it).
#[pyclass(module = "backstop", frozen, get_all)]
pub(crate) struct Chunk {
    text: String,
    finish_reason: Option<String>,
    usage: Option<Py<Usage>>,
    model: Option<String>,
    refusal: Option<String>,
}

#[pymethods]
impl Chunk {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Chunk(text={}, finish_reason={})",
            repr(py, &self.text)?,
            repr_opt(py, self.finish_reason.as_deref())?
        ))
    }
}

/// Converts one streamed chunk.
pub(crate) fn chunk(py: Python<'_>, c: RustChunk) -> PyResult<Py<Chunk>> {
    Py::new(
        py,
        Chunk {
            text: c.text,
            finish_reason: c.finish_reason.map(|f| f.as_str().to_owned()),
            usage: usage(py, c.usage)?,
            model: c.model,
            refusal: c.refusal,
        },
    )
}
