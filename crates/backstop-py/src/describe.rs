//! How Python values are shown in `__repr__`s and error messages.

use pyo3::prelude::*;
use pyo3::types::PyString;

/// The Python type name of `obj`, for error messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".to_owned())
}

/// Python's `repr` of a string, for `__repr__`s.
pub(crate) fn repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_string())
}

/// [`repr`] of an optional string (`None` when absent).
pub(crate) fn repr_opt(py: Python<'_>, s: Option<&str>) -> PyResult<String> {
    s.map_or_else(|| Ok("None".to_owned()), |s| repr(py, s))
}
