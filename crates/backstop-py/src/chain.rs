//! The native fallback chain behind `backstop.resilience.FallbackChain`: built from the
//! tutorial's `(llm, breaker)` pairs or `(llm, breaker, weight)` triples.

use std::sync::Arc;
use std::time::Duration;

use backstop::{FallbackChain, FallbackChainBuilder, Provider, ProviderOptions};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::breaker::Breaker;
use crate::bridge::{Call, start};
use crate::describe::type_name;
use crate::duration::opt_seconds;
use crate::errors::{all_failed, build_error, config_error};
use crate::inbox::Inbox;
use crate::llms::Llm;
use crate::prompt::request;
use crate::results::{FallbackResult, fallback_result};
use crate::runtime::block_on;
use crate::stream::NativeStream;

/// A built chain and the Python objects it was built from.
#[pyclass(module = "backstop._native", frozen)]
pub(crate) struct NativeChain {
    chain: FallbackChain,
    cancel_counts_as_timeout: bool,
    weighted: bool,
    /// The caller's `(llm, breaker[, weight])` tuples, as given.
    providers: Py<PyTuple>,
}

/// One parsed `providers` entry.
struct Entry {
    llm: Arc<dyn Provider>,
    breaker: backstop::CircuitBreaker,
    weight: f64,
}

fn entry(function: &str, weighted: bool, i: usize, item: &Bound<'_, PyAny>) -> PyResult<Entry> {
    let shape = if weighted {
        "an (llm, breaker, weight) tuple"
    } else {
        "an (llm, breaker) tuple"
    };
    let tuple = item.cast::<PyTuple>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{function}: providers[{i}] must be {shape}, got {}",
            type_name(item)
        ))
    })?;
    match (weighted, tuple.len()) {
        (false, 2) | (true, 3) => {}
        (false, 3) => {
            return Err(PyTypeError::new_err(format!(
                "{function}: providers[{i}] has 3 items; a priority chain takes (llm, breaker) \
                 pairs (weights are for weighted_fallback_chain)"
            )));
        }
        (true, 2) => {
            return Err(PyTypeError::new_err(format!(
                "{function}: providers[{i}] has no weight; write (llm, breaker, 0.7) (the \
                 tutorial's `weight=0.7` inside a tuple is not valid Python)"
            )));
        }
        (_, n) => {
            return Err(PyTypeError::new_err(format!(
                "{function}: providers[{i}] has {n} items; it must be {shape}"
            )));
        }
    }
    let llm = tuple.get_item(0)?;
    let llm = llm.cast::<Llm>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{function}: providers[{i}][0] must be an LLM (OpenAILLM, AnthropicLLM, GroqLLM, \
             ...), got {}",
            type_name(&llm)
        ))
    })?;
    let breaker = tuple.get_item(1)?;
    let breaker = breaker.cast::<Breaker>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{function}: providers[{i}][1] must be a CircuitBreaker, got {}",
            type_name(&breaker)
        ))
    })?;
    let weight = if weighted {
        let w = tuple.get_item(2)?;
        let weight: f64 = w.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{function}: providers[{i}][2] (the weight) must be a number, got {}",
                type_name(&w)
            ))
        })?;
        if !(weight.is_finite() && weight > 0.0) {
            return Err(PyValueError::new_err(format!(
                "{function}: providers[{i}] has weight {weight}; weights must be finite and \
                 greater than 0"
            )));
        }
        weight
    } else {
        1.0
    };
    Ok(Entry {
        llm: Arc::clone(&llm.get().provider),
        breaker: breaker.get().inner.clone(),
        weight,
    })
}

/// Builds the chain for `fallback_chain` / `weighted_fallback_chain` (backstop/resilience.py).
#[pyfunction]
#[pyo3(signature = (
    providers,
    retries_per_provider,
    weighted,
    *,
    timeout = None,
    attempt_timeout = None,
    name = None,
    cancel_counts_as_timeout = true,
))]
#[allow(clippy::too_many_arguments)] // the Python signature
pub(crate) fn build_chain(
    py: Python<'_>,
    providers: &Bound<'_, PyAny>,
    retries_per_provider: i64,
    weighted: bool,
    timeout: Option<f64>,
    attempt_timeout: Option<f64>,
    name: Option<String>,
    cancel_counts_as_timeout: bool,
) -> PyResult<NativeChain> {
    let function = if weighted {
        "weighted_fallback_chain"
    } else {
        "fallback_chain"
    };
    if providers.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{function}: providers must be a list of tuples, got a str"
        )));
    }
    let items = providers.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{function}: providers must be a list of tuples, got {}",
            type_name(providers)
        ))
    })?;
    let given = PyList::empty(py);
    let mut entries = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        entries.push(entry(function, weighted, i, &item)?);
        given.append(item)?;
    }
    if entries.is_empty() {
        return Err(config_error(
            py,
            format!("{function}: providers is empty; a chain needs at least one provider"),
        ));
    }
    let retries = u32::try_from(retries_per_provider).map_err(|_| {
        PyValueError::new_err(format!(
            "retries_per_provider must be an integer from 0, got {retries_per_provider}"
        ))
    })?;
    let timeout = opt_seconds("timeout", timeout, true)?;
    let attempt_timeout = opt_seconds("attempt_timeout", attempt_timeout, true)?;
    let options = ProviderOptions::default();
    let built = if weighted {
        let mut b = FallbackChain::weighted();
        for e in entries {
            b = b.provider_with(e.llm, e.breaker, e.weight, options);
        }
        settings(b, retries, timeout, attempt_timeout, name).build()
    } else {
        let mut b = FallbackChain::builder();
        for e in entries {
            b = b.provider_with(e.llm, e.breaker, options);
        }
        settings(b, retries, timeout, attempt_timeout, name).build()
    };
    Ok(NativeChain {
        chain: built.map_err(|e| build_error(py, &e))?,
        cancel_counts_as_timeout,
        weighted,
        providers: PyTuple::new(py, given)?.unbind(),
    })
}

#[pymethods]
impl NativeChain {
    /// Starts `agenerate`: its result is set on `future`, of the loop that owns `inbox`.
    #[pyo3(signature = (inbox, future, prompt, timeout = None))]
    fn start_generate(
        &self,
        py: Python<'_>,
        inbox: PyRef<'_, Inbox>,
        future: Bound<'_, PyAny>,
        prompt: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Call> {
        let req = request(prompt, timeout, self.cancel_counts_as_timeout)?;
        let chain = self.chain.clone();
        start(
            py,
            &inbox,
            future,
            async move { chain.generate_request(&req).await },
            |py, outcome| match outcome {
                Ok(r) => fallback_result(py, r).map(Py::into_any),
                Err(e) => Err(all_failed(py, &e)),
            },
        )
    }

    /// The blocking form: waits with the GIL released (Ctrl-C interrupts it).
    #[pyo3(signature = (prompt, timeout = None))]
    fn generate(
        &self,
        py: Python<'_>,
        prompt: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<FallbackResult>> {
        let req = request(prompt, timeout, self.cancel_counts_as_timeout)?;
        let chain = &self.chain;
        match block_on(py, chain.generate_request(&req))? {
            Ok(r) => fallback_result(py, r),
            Err(e) => Err(all_failed(py, &e)),
        }
    }

    /// A stream that opens on its first `start_next`.
    #[pyo3(signature = (prompt, timeout = None))]
    fn open_stream(
        &self,
        prompt: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<NativeStream> {
        let req = request(prompt, timeout, self.cancel_counts_as_timeout)?;
        Ok(NativeStream::new(self.chain.clone(), req))
    }

    #[getter]
    fn name(&self) -> &str {
        self.chain.name()
    }

    #[getter]
    fn weighted(&self) -> bool {
        self.weighted
    }

    #[getter]
    fn cancel_counts_as_timeout(&self) -> bool {
        self.cancel_counts_as_timeout
    }

    /// The `(llm, breaker[, weight])` tuples the chain was built from, in order.
    #[getter]
    fn providers(&self, py: Python<'_>) -> Py<PyTuple> {
        self.providers.clone_ref(py)
    }
}

/// The chain-wide settings both strategies take from the Python call.
fn settings<S>(
    b: FallbackChainBuilder<S>,
    retries: u32,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    name: Option<String>,
) -> FallbackChainBuilder<S> {
    let mut b = b.retries_per_provider(retries);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if let Some(t) = attempt_timeout {
        b = b.attempt_timeout(t);
    }
    if let Some(n) = name {
        b = b.name(n);
    }
    b
}
