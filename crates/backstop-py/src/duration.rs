//! Seconds from Python (`float` or `int`) as `Duration`s, refused by name when not usable.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `value` seconds; `positive` also refuses zero (a timeout of zero would fail every call).
pub(crate) fn seconds(name: &str, value: f64, positive: bool) -> PyResult<Duration> {
    let usable = value.is_finite() && (value > 0.0 || (!positive && value == 0.0));
    let duration = usable
        .then(|| Duration::try_from_secs_f64(value).ok())
        .flatten();
    duration.ok_or_else(|| {
        let want = if positive {
            "a positive number of seconds"
        } else {
            "a number of seconds, 0 or more"
        };
        PyValueError::new_err(format!("{name} must be {want}, got {value}"))
    })
}

/// [`seconds`] for an optional argument.
pub(crate) fn opt_seconds(
    name: &str,
    value: Option<f64>,
    positive: bool,
) -> PyResult<Option<Duration>> {
    value.map(|v| seconds(name, v, positive)).transpose()
}
