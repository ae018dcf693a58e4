//! The native side of `chain.astream(prompt)`: opens the chain's stream on the first `anext`
//! (failover until the first content chunk), then hands out one chunk per `anext`.

use std::sync::{Arc, Mutex, MutexGuard};

use backstop::{
    AllProvidersFailed, Attempt as RustAttempt, ChatRequest, Chunk as RustChunk, FallbackChain,
    FallbackStream, ProviderError,
};
use futures_util::StreamExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bridge::{Call, start};
use crate::errors::{all_failed, stream_failed};
use crate::inbox::Inbox;
use crate::results::{attempt_list, chunk};
use crate::runtime::runtime;

enum State {
    /// Not opened yet: the first `anext` opens it.
    Unopened(FallbackChain, Box<ChatRequest>),
    Open(Box<FallbackStream>),
    /// An `anext` is running (it holds the stream).
    InUse,
    Done,
}

/// What the committed stream said, for the Python object's properties.
#[derive(Default)]
struct Info {
    provider_used: Option<String>,
    model: Option<String>,
    attempts: Vec<RustAttempt>,
}

struct Shared {
    state: Mutex<State>,
    info: Mutex<Info>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one `anext` produced.
enum Next {
    Chunk(RustChunk),
    End,
    /// Nothing answered before the first chunk.
    Failed(AllProvidersFailed),
    /// The committed stream broke (after its first chunk).
    Broke(String, ProviderError),
}

/// Marks the stream done if an `anext` is dropped mid-way (cancelled): the stream went with it.
struct DoneIfDropped(Arc<Shared>);

impl Drop for DoneIfDropped {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        if matches!(*state, State::InUse) {
            *state = State::Done;
        }
    }
}

#[pyclass(module = "backstop._native", frozen)]
pub(crate) struct NativeStream {
    shared: Arc<Shared>,
}

impl NativeStream {
    pub(crate) fn new(chain: FallbackChain, request: ChatRequest) -> Self {
        NativeStream {
            shared: Arc::new(Shared {
                state: Mutex::new(State::Unopened(chain, Box::new(request))),
                info: Mutex::new(Info::default()),
            }),
        }
    }
}

async fn next(shared: Arc<Shared>, taken: State) -> Next {
    let _done_if_dropped = DoneIfDropped(Arc::clone(&shared));
    let mut stream = match taken {
        State::Unopened(chain, request) => match chain.stream_request(&request).await {
            Ok(stream) => {
                let mut info = lock(&shared.info);
                info.provider_used = Some(stream.provider_used().to_owned());
                info.model = stream.model().map(str::to_owned);
                info.attempts = stream.attempts().to_vec();
                Box::new(stream)
            }
            Err(e) => {
                *lock(&shared.state) = State::Done;
                return Next::Failed(e);
            }
        },
        State::Open(stream) => stream,
        State::InUse | State::Done => {
            *lock(&shared.state) = State::Done;
            return Next::End;
        }
    };
    let item = stream.next().await;
    let provider = stream.current_provider().to_owned();
    match item {
        Some(Ok(c)) => {
            let mut state = lock(&shared.state);
            // Unless `close()` ended the stream meanwhile.
            if matches!(*state, State::InUse) {
                *state = State::Open(stream);
            }
            Next::Chunk(c)
        }
        Some(Err(e)) => {
            *lock(&shared.state) = State::Done;
            Next::Broke(provider, e)
        }
        None => {
            *lock(&shared.state) = State::Done;
            Next::End
        }
    }
}

#[pymethods]
impl NativeStream {
    /// Starts the next `anext`: `future` (of the loop that owns `inbox`) gets a `Chunk`, or
    /// `None` at the end.
    fn start_next(
        &self,
        py: Python<'_>,
        inbox: PyRef<'_, Inbox>,
        future: Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        let taken = std::mem::replace(&mut *lock(&self.shared.state), State::InUse);
        if matches!(taken, State::InUse) {
            return Err(PyRuntimeError::new_err(
                "anext(): another anext() on this stream is still running",
            ));
        }
        let shared = Arc::clone(&self.shared);
        start(py, &inbox, future, next(shared, taken), |py, n| match n {
            Next::Chunk(c) => chunk(py, c).map(Py::into_any),
            Next::End => Ok(py.None()),
            Next::Failed(e) => Err(all_failed(py, &e)),
            Next::Broke(provider, e) => Err(stream_failed(py, &provider, &e)),
        })
    }

    /// Ends the stream now (the provider's connection is closed).
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let old = std::mem::replace(&mut *lock(&self.shared.state), State::Done);
            // A running anext owns the stream; it drops it when it sees `Done`.
            let guard = runtime().ok().map(|rt| rt.enter());
            drop(old);
            drop(guard);
        });
    }

    /// The breaker name of the provider that committed (`None` before the first chunk).
    #[getter]
    fn provider_used(&self) -> Option<String> {
        lock(&self.shared.info).provider_used.clone()
    }

    #[getter]
    fn model(&self) -> Option<String> {
        lock(&self.shared.info).model.clone()
    }

    /// Attempts up to the commit point.
    #[getter]
    fn attempts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let attempts = lock(&self.shared.info).attempts.clone();
        attempt_list(py, &attempts)
    }
}
