//! `CircuitBreaker`: the tutorial's constructor and methods on the library's breaker.

use backstop::{BreakerConfig, BreakerMode, CircuitBreaker as RustBreaker};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use crate::describe::repr;
use crate::duration::{opt_seconds, seconds};

/// One provider's circuit breaker. Every chain it is put in shares its state with this object,
/// so `record_failure()` here is seen by the chain (the tutorial's Step 5).
#[pyclass(module = "backstop.resilience", name = "CircuitBreaker", frozen)]
pub(crate) struct Breaker {
    pub(crate) inner: RustBreaker,
}

/// The library's default minimum of calls in the window for the failure-rate rule.
fn default_minimum_calls() -> u32 {
    match BreakerMode::DEFAULT_RATE {
        BreakerMode::Rate { minimum_calls, .. } => minimum_calls,
        _ => 1,
    }
}

#[pymethods]
impl Breaker {
    /// `failure_threshold` selects the tutorial's count rule; `failure_rate` (with
    /// `minimum_calls`) the failure-rate rule; neither: the library's default failure-rate rule.
    /// `recovery_timeout` alone keeps every open period equal to it (the tutorial's rule);
    /// `max_recovery_timeout` lets them double after each failed probe, up to it.
    #[new]
    #[pyo3(signature = (
        name,
        failure_threshold = None,
        window_seconds = None,
        recovery_timeout = None,
        *,
        max_recovery_timeout = None,
        half_open_probes = None,
        failure_rate = None,
        minimum_calls = None,
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn new(
        name: String,
        failure_threshold: Option<i64>,
        window_seconds: Option<f64>,
        recovery_timeout: Option<f64>,
        max_recovery_timeout: Option<f64>,
        half_open_probes: Option<i64>,
        failure_rate: Option<f64>,
        minimum_calls: Option<i64>,
    ) -> PyResult<Self> {
        if name.trim().is_empty() {
            return Err(PyValueError::new_err(
                "CircuitBreaker name must not be empty",
            ));
        }
        let mut config = BreakerConfig::default();
        match (failure_threshold, failure_rate) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give failure_threshold (count rule) or failure_rate (failure-rate rule), \
                     not both",
                ));
            }
            (Some(n), None) => {
                if minimum_calls.is_some() {
                    return Err(PyValueError::new_err(
                        "minimum_calls belongs to the failure-rate rule; it has no meaning with \
                         failure_threshold",
                    ));
                }
                config.mode = BreakerMode::Count {
                    failure_threshold: at_least_one("failure_threshold", n)?,
                };
            }
            (None, Some(_)) | (None, None) => {}
        }
        if let Some(w) = window_seconds {
            config.window = seconds("window_seconds", w, true)?;
        }
        if let Some(r) = opt_seconds("recovery_timeout", recovery_timeout, false)? {
            config.recovery_timeout = r;
            config.max_recovery_timeout = r;
        }
        if let Some(m) = opt_seconds("max_recovery_timeout", max_recovery_timeout, false)? {
            if m < config.recovery_timeout {
                return Err(PyValueError::new_err(format!(
                    "max_recovery_timeout ({m:?}) must not be below recovery_timeout ({:?})",
                    config.recovery_timeout
                )));
            }
            config.max_recovery_timeout = m;
        }
        if let Some(p) = half_open_probes {
            config.half_open_probes = at_least_one("half_open_probes", p)?;
        }
        let mut breaker = RustBreaker::with_config(name, config);
        if failure_rate.is_some() || minimum_calls.is_some() {
            let rate = match failure_rate {
                Some(r) if r.is_finite() && r > 0.0 && r <= 1.0 => r,
                Some(r) => {
                    return Err(PyValueError::new_err(format!(
                        "failure_rate must be above 0 and at most 1, got {r}"
                    )));
                }
                None => match BreakerMode::DEFAULT_RATE {
                    BreakerMode::Rate { failure_rate, .. } => failure_rate,
                    _ => 0.5,
                },
            };
            let minimum = match minimum_calls {
                Some(m) => at_least_one("minimum_calls", m)?,
                None => default_minimum_calls(),
            };
            breaker = breaker.failure_rate(rate, minimum);
        }
        Ok(Breaker { inner: breaker })
    }

    /// The breaker's name; a chain reports it as `provider_used`.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// `BreakerState.CLOSED`, `OPEN` or `HALF_OPEN` (a str enum: `== "open"` works).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static STATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        STATE
            .import(py, "backstop._state", "BreakerState")?
            .call1((self.inner.state().as_str(),))
    }

    /// Count rule: failures inside the window that open it; `None` in failure-rate mode.
    #[getter]
    fn failure_threshold(&self) -> Option<u32> {
        self.inner.config().failure_threshold()
    }

    /// Failure-rate rule: the share of failures that opens it; `None` in count mode.
    #[getter]
    fn failure_rate(&self) -> Option<f64> {
        match self.inner.config().mode {
            BreakerMode::Rate { failure_rate, .. } => Some(failure_rate),
            _ => None,
        }
    }

    /// Failure-rate rule: calls the window must hold first; `None` in count mode.
    #[getter]
    fn minimum_calls(&self) -> Option<u32> {
        match self.inner.config().mode {
            BreakerMode::Rate { minimum_calls, .. } => Some(minimum_calls),
            _ => None,
        }
    }

    /// `"count"` or `"rate"`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.config().mode.as_str()
    }

    #[getter]
    fn window_seconds(&self) -> f64 {
        self.inner.config().window.as_secs_f64()
    }

    #[getter]
    fn recovery_timeout(&self) -> f64 {
        self.inner.config().recovery_timeout.as_secs_f64()
    }

    #[getter]
    fn max_recovery_timeout(&self) -> f64 {
        self.inner.config().max_recovery_timeout.as_secs_f64()
    }

    #[getter]
    fn half_open_probes(&self) -> u32 {
        self.inner.config().half_open_probes
    }

    /// Records a failure as if a call had failed (closed: counts; half-open: re-opens).
    fn record_failure(&self) {
        self.inner.record_failure();
    }

    /// The tutorial's spelling of [`record_failure`](Self::record_failure).
    fn _record_failure(&self) {
        self.inner.record_failure();
    }

    /// Records a success as if a call had succeeded (half-open: closes).
    fn record_success(&self) {
        self.inner.record_success();
    }

    /// The underscore spelling, like `_record_failure`.
    fn _record_success(&self) {
        self.inner.record_success();
    }

    /// Opens the breaker now, for `recovery_timeout`.
    fn trip(&self) {
        self.inner.trip();
    }

    /// Closes the breaker, forgets past failures and ends any rate-limit hold.
    fn reset(&self) {
        self.inner.reset();
    }

    /// State, counts in the window and times left, as a dict.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        let d = PyDict::new(py);
        d.set_item("name", &s.name)?;
        d.set_item("state", s.state.as_str())?;
        d.set_item("mode", s.config.mode.as_str())?;
        d.set_item("failures_in_window", s.failures_in_window)?;
        d.set_item("calls_in_window", s.calls_in_window)?;
        d.set_item(
            "until_half_open",
            s.until_half_open.map(|d| d.as_secs_f64()),
        )?;
        d.set_item("hold_remaining", s.hold_remaining.map(|d| d.as_secs_f64()))?;
        d.set_item("reopens", s.reopens)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let rule = match self.inner.config().mode {
            BreakerMode::Count { failure_threshold } => {
                format!("failure_threshold={failure_threshold}")
            }
            BreakerMode::Rate {
                failure_rate,
                minimum_calls,
                ..
            } => format!("failure_rate={failure_rate}, minimum_calls={minimum_calls}"),
            _ => String::new(),
        };
        Ok(format!(
            "CircuitBreaker({}, {rule}, state={})",
            repr(py, self.inner.name())?,
            repr(py, self.inner.state().as_str())?
        ))
    }
}

fn at_least_one(name: &str, n: i64) -> PyResult<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be an integer from 1, got {n}")))
}
