//! The provider classes (`backstop.llms.*`) and `LLMConfig`.
//!
//! Keys and base URLs come from the same environment variables as the Rust providers
//! (`OPENAI_API_KEY` / `OPENAI_BASE_URL`, `ANTHROPIC_*`, `GROQ_*`), read when the object is
//! created; explicit `api_key=` / `base_url=` win.

use std::sync::Arc;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiCompatible, OpenAiLlm};
use backstop::{LlmConfig, Provider};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::describe::repr;
use crate::duration::opt_seconds;

/// Sampling settings shared by the providers of a chain (`None`: the API's default).
#[pyclass(module = "backstop", name = "LLMConfig", frozen)]
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) inner: LlmConfig,
}

#[pymethods]
impl Config {
    #[new]
    #[pyo3(signature = (temperature = None, max_tokens = None, top_p = None, stop = None))]
    fn new(
        temperature: Option<f32>,
        max_tokens: Option<i64>,
        top_p: Option<f32>,
        stop: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut inner = LlmConfig::default();
        if let Some(t) = temperature {
            if !(t.is_finite() && t >= 0.0) {
                return Err(PyValueError::new_err(format!(
                    "temperature must be a number from 0, got {t}"
                )));
            }
            inner.temperature = Some(t);
        }
        if let Some(n) = max_tokens {
            let n = u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                PyValueError::new_err(format!("max_tokens must be an integer from 1, got {n}"))
            })?;
            inner.max_tokens = Some(n);
        }
        if let Some(p) = top_p {
            if !(p.is_finite() && p > 0.0 && p <= 1.0) {
                return Err(PyValueError::new_err(format!(
                    "top_p must be above 0 and at most 1, got {p}"
                )));
            }
            inner.top_p = Some(p);
        }
        if let Some(stop) = stop {
            inner.stop = match stop.extract::<String>() {
                Ok(one) => vec![one],
                Err(_) => stop
                    .extract::<Vec<String>>()
                    .map_err(|_| PyValueError::new_err("stop must be a str or a list of str"))?,
            };
        }
        Ok(Config { inner })
    }

    #[getter]
    fn temperature(&self) -> Option<f32> {
        self.inner.temperature
    }
    #[getter]
    fn max_tokens(&self) -> Option<u32> {
        self.inner.max_tokens
    }
    #[getter]
    fn top_p(&self) -> Option<f32> {
        self.inner.top_p
    }
    #[getter]
    fn stop(&self) -> Vec<String> {
        self.inner.stop.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let c = &self.inner;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "None".to_owned());
        let stop = c
            .stop
            .iter()
            .map(|s| repr(py, s))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(format!(
            "LLMConfig(temperature={}, max_tokens={}, top_p={}, stop=[{}])",
            opt(c.temperature.map(|t| t.to_string())),
            opt(c.max_tokens.map(|t| t.to_string())),
            opt(c.top_p.map(|t| t.to_string())),
            stop.join(", ")
        ))
    }
}

/// The base of every provider class: what a chain needs from it.
#[pyclass(module = "backstop.llms", name = "LLM", subclass, frozen)]
pub(crate) struct Llm {
    pub(crate) provider: Arc<dyn Provider>,
    model: String,
    base_url: Option<String>,
}

impl Llm {
    pub(crate) fn new(
        provider: Arc<dyn Provider>,
        model: String,
        base_url: Option<String>,
    ) -> Self {
        Llm {
            provider,
            model,
            base_url,
        }
    }
}

#[pymethods]
impl Llm {
    /// The model sent with every request.
    #[getter]
    fn model(&self) -> &str {
        &self.model
    }
    /// The base URL in use (after the environment and `base_url=`); `None` for in-process
    /// providers.
    #[getter]
    fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }
    /// The provider's name (`openai`, `anthropic`, `groq`, ...).
    #[getter]
    fn provider(&self) -> &str {
        self.provider.name()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let class = slf.get_type().name()?;
        let this = slf.get();
        let py = slf.py();
        let model = repr(py, &this.model)?;
        Ok(match &this.base_url {
            Some(url) => format!("{class}(model={model}, base_url={})", repr(py, url)?),
            None => format!("{class}(model={model})"),
        })
    }
}

fn nonempty_model(model: String) -> PyResult<String> {
    if model.trim().is_empty() {
        return Err(PyValueError::new_err("model must not be empty"));
    }
    Ok(model)
}

/// Applies the shared keyword arguments to any of the library's HTTP providers.
macro_rules! http_llm {
    ($llm:expr, $config:expr, $api_key:expr, $base_url:expr, $connect:expr) => {{
        let mut llm = $llm;
        if let Some(c) = $config {
            llm = llm.config(c.inner.clone());
        }
        if let Some(k) = $api_key {
            llm = llm.api_key(k);
        }
        if let Some(u) = $base_url {
            llm = llm.base_url(u);
        }
        if let Some(t) = opt_seconds("connect_timeout", $connect, true)? {
            llm = llm.connect_timeout(t);
        }
        let model = llm.model().to_owned();
        let url = llm.current_base_url().to_owned();
        Llm::new(Arc::new(llm), model, Some(url))
    }};
}

/// A Python class for one of the library's named HTTP providers: `(model, config=None, *,
/// api_key=None, base_url=None, connect_timeout=None)`.
macro_rules! named_llm {
    ($(#[$doc:meta])* $ty:ident, $module:literal, $class:literal, $lib:ident) => {
        $(#[$doc])*
        #[pyclass(module = $module, name = $class, extends = Llm, frozen)]
        pub(crate) struct $ty;

        #[pymethods]
        impl $ty {
            #[new]
            #[pyo3(signature = (model, config = None, *, api_key = None, base_url = None, connect_timeout = None))]
            fn new(
                model: String,
                config: Option<PyRef<'_, Config>>,
                api_key: Option<String>,
                base_url: Option<String>,
                connect_timeout: Option<f64>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let llm = $lib::new(nonempty_model(model)?);
                let base = http_llm!(llm, config, api_key, base_url, connect_timeout);
                Ok(PyClassInitializer::from(base).add_subclass($ty))
            }
        }
    };
}

named_llm!(
    /// OpenAI chat completions (`OPENAI_API_KEY`, `OPENAI_BASE_URL`).
    OpenAi, "backstop.llms.openai", "OpenAILLM", OpenAiLlm
);
named_llm!(
    /// Anthropic messages (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`).
    Anthropic, "backstop.llms.anthropic", "AnthropicLLM", AnthropicLlm
);
named_llm!(
    /// Groq's OpenAI-compatible endpoint (`GROQ_API_KEY`, `GROQ_BASE_URL`).
    Groq, "backstop.llms.groq", "GroqLLM", GroqLlm
);

/// Any OpenAI-compatible server (vLLM, Ollama, ...): a key only if `api_key=` or
/// `api_key_env=` gives one.
#[pyclass(module = "backstop.llms.openai", name = "OpenAICompatibleLLM", extends = Llm, frozen)]
pub(crate) struct Compatible;

#[pymethods]
impl Compatible {
    #[new]
    #[pyo3(signature = (base_url, model, config = None, *, api_key = None, api_key_env = None, name = None, connect_timeout = None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn new(
        base_url: String,
        model: String,
        config: Option<PyRef<'_, Config>>,
        api_key: Option<String>,
        api_key_env: Option<String>,
        name: Option<String>,
        connect_timeout: Option<f64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut llm = OpenAiCompatible::new(base_url, nonempty_model(model)?);
        if let Some(var) = api_key_env {
            llm = llm.api_key_env(var);
        }
        if let Some(n) = name {
            llm = llm.name(n);
        }
        let base = http_llm!(llm, config, api_key, None::<String>, connect_timeout);
        Ok(PyClassInitializer::from(base).add_subclass(Compatible))
    }
}
