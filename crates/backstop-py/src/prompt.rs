//! A prompt from Python (a string, or a list of chat messages) as a `ChatRequest`.

use backstop::{ChatRequest, Message};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::describe::type_name;
use crate::duration::opt_seconds;

/// The request for `prompt`: a `str` is one user message; a list holds messages as
/// `{"role": ..., "content": ...}` dicts or `(role, content)` tuples, roles `system`, `user`
/// and `assistant`. `timeout` is the request's overall deadline in seconds.
pub(crate) fn request(
    prompt: &Bound<'_, PyAny>,
    timeout: Option<f64>,
    cancel_counts_as_timeout: bool,
) -> PyResult<ChatRequest> {
    let mut request = if let Ok(text) = prompt.cast::<PyString>() {
        ChatRequest::user(text.to_cow()?)
    } else if prompt.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(
            "prompt must be a str or a list of messages; got a single dict (wrap it in a list)",
        ));
    } else {
        let items = prompt.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "prompt must be a str or a list of messages, got {}",
                type_name(prompt)
            ))
        })?;
        let mut messages = Vec::new();
        for (i, item) in items.enumerate() {
            messages.push(message(i, &item?)?);
        }
        if messages.is_empty() {
            return Err(PyValueError::new_err(
                "prompt: the list of messages is empty",
            ));
        }
        ChatRequest::new(messages)
    };
    if let Some(t) = opt_seconds("timeout", timeout, true)? {
        request = request.timeout(t);
    }
    Ok(request.drop_counts_as_timeout(cancel_counts_as_timeout))
}

fn message(i: usize, item: &Bound<'_, PyAny>) -> PyResult<Message> {
    let (role, content): (String, String) = if let Ok(d) = item.cast::<PyDict>() {
        let field = |key: &str| -> PyResult<String> {
            d.get_item(key)?
                .ok_or_else(|| PyValueError::new_err(format!("prompt[{i}] has no {key:?}")))?
                .extract::<String>()
                .map_err(|_| PyTypeError::new_err(format!("prompt[{i}][{key:?}] must be a str")))
        };
        (field("role")?, field("content")?)
    } else if let Ok(t) = item.cast::<PyTuple>() {
        t.extract().map_err(|_| {
            PyTypeError::new_err(format!("prompt[{i}] must be a (role, content) pair of str"))
        })?
    } else {
        return Err(PyTypeError::new_err(format!(
            "prompt[{i}] must be a dict with \"role\" and \"content\" or a (role, content) \
             tuple, got {}",
            type_name(item)
        )));
    };
    match role.as_str() {
        "system" => Ok(Message::system(content)),
        "user" => Ok(Message::user(content)),
        "assistant" => Ok(Message::assistant(content)),
        other => Err(PyValueError::new_err(format!(
            "prompt[{i}] has role {other:?}; roles are \"system\", \"user\" and \"assistant\""
        ))),
    }
}
