//! `backstop._native`: the extension module under the `backstop` Python package
//! (distribution `backstop-llm`). The pure-Python files in `python/backstop/` lay it out as the
//! tutorial's modules (`backstop.llms.openai`, `backstop.resilience`, ...), define the exception
//! classes and the async methods; everything else runs on the Rust core, on one Tokio runtime
//! per process (`runtime.rs`), with the GIL released while waiting.

mod breaker;
mod bridge;
mod chain;
mod describe;
mod duration;
mod errors;
mod inbox;
mod llms;
mod prompt;
mod results;
mod runtime;
mod stream;
mod testing;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<llms::Config>()?;
    m.add_class::<llms::Llm>()?;
    m.add_class::<llms::OpenAi>()?;
    m.add_class::<llms::Anthropic>()?;
    m.add_class::<llms::Groq>()?;
    m.add_class::<llms::Compatible>()?;
    m.add_class::<breaker::Breaker>()?;
    m.add_class::<chain::NativeChain>()?;
    m.add_class::<stream::NativeStream>()?;
    m.add_class::<bridge::Call>()?;
    m.add_class::<inbox::Inbox>()?;
    m.add_class::<results::FallbackResult>()?;
    m.add_class::<results::Usage>()?;
    m.add_class::<results::Attempt>()?;
    m.add_class::<results::Chunk>()?;
    m.add_class::<testing::Step>()?;
    m.add_class::<testing::Scripted>()?;
    m.add_function(wrap_pyfunction!(chain::build_chain, m)?)?;
    m.add_function(wrap_pyfunction!(testing::reply, m)?)?;
    m.add_function(wrap_pyfunction!(testing::fail, m)?)?;
    m.add_function(wrap_pyfunction!(testing::delay, m)?)?;
    m.add_function(wrap_pyfunction!(testing::hang, m)?)?;
    m.add_function(wrap_pyfunction!(testing::chunks, m)?)?;
    m.add_function(wrap_pyfunction!(testing::chunks_then_fail, m)?)?;
    Ok(())
}
