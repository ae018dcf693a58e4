//! Response bodies as scripts of byte frames, delays and failures. Adjacent bytes are
//! coalesced, so a reply without delays or faults is a single buffer.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;

use crate::state::Shared;

enum Step {
    Data(Bytes),
    Sleep(Duration),
    /// Fail the body: the server drops the connection mid-response.
    Abort,
    /// Send nothing more until shutdown; keep the connection open.
    Stall,
}

/// Builder for a response body.
#[derive(Default)]
pub(crate) struct Script {
    steps: Vec<Step>,
    buf: Vec<u8>,
}

impl Script {
    pub(crate) fn new() -> Self {
        Self {
            steps: Vec::new(),
            buf: Vec::with_capacity(2048),
        }
    }

    /// The pending bytes, to append to.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let bytes = Bytes::from(std::mem::take(&mut self.buf));
            self.steps.push(Step::Data(bytes));
        }
    }

    pub(crate) fn sleep(&mut self, d: Duration) {
        if !d.is_zero() {
            self.flush();
            self.steps.push(Step::Sleep(d));
        }
    }

    pub(crate) fn abort(&mut self) {
        self.flush();
        self.steps.push(Step::Abort);
    }

    pub(crate) fn stall(&mut self) {
        self.flush();
        self.steps.push(Step::Stall);
    }

    /// The body; a plain buffer when the script is just bytes.
    pub(crate) fn into_body(mut self, shared: &Arc<Shared>) -> Body {
        self.flush();
        if self.steps.len() <= 1 && !matches!(self.steps.first(), Some(Step::Abort | Step::Stall)) {
            return match self.steps.pop() {
                Some(Step::Data(b)) => Body::from(b),
                _ => Body::empty(),
            };
        }
        let state = (self.steps.into_iter(), Arc::clone(shared));
        Body::from_stream(futures_util::stream::unfold(
            state,
            |(mut steps, shared)| async move {
                loop {
                    match steps.next()? {
                        Step::Data(b) => return Some((Ok(b), (steps, shared))),
                        Step::Sleep(d) => {
                            if !shared.sleep(d).await {
                                return Some((Err(shutting_down()), (steps, shared)));
                            }
                        }
                        Step::Abort => {
                            // Return Pending once so hyper flushes what it has buffered
                            // (headers, earlier chunks) before the connection drops.
                            tokio::task::yield_now().await;
                            let err = io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "backstop-sim: simulated disconnect",
                            );
                            return Some((Err(err), (steps, shared)));
                        }
                        Step::Stall => {
                            shared.shutdown_signal().await;
                            return Some((Err(shutting_down()), (steps, shared)));
                        }
                    }
                }
            },
        ))
    }
}

fn shutting_down() -> io::Error {
    io::Error::other("backstop-sim: shutting down")
}
