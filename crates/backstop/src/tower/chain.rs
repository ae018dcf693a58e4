//! `FallbackChain` as a tower `Service`, with a `poll_ready` that waits out open breakers.

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use crate::{
    AllProvidersFailed, BoxFuture, ChatRequest, FallbackChain, FallbackResult, FallbackStream,
};

/// How often a chain that is not ready looks again when no open breaker is counting down
/// (every breaker half-open with its probe slots taken: the probes' end has no timer).
pub const PROBE_RECHECK: Duration = Duration::from_millis(100);

/// `Ready` while a provider would be admitted; otherwise `Pending` with a wake-up scheduled
/// for the nearest recovery (see the module docs for why not an error).
fn poll_admission(
    chain: &FallbackChain,
    cx: &mut Context<'_>,
) -> Poll<Result<(), AllProvidersFailed>> {
    if chain.would_admit() {
        return Poll::Ready(Ok(()));
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // No timer to wake the caller with: let the call refuse itself, at once.
        return Poll::Ready(Ok(()));
    };
    let wait = chain.next_recovery_in().unwrap_or(PROBE_RECHECK);
    let waker = cx.waker().clone();
    runtime.spawn(async move {
        tokio::time::sleep(wait).await;
        waker.wake();
    });
    Poll::Pending
}

impl Service<ChatRequest> for FallbackChain {
    type Response = FallbackResult;
    type Error = AllProvidersFailed;
    type Future = BoxFuture<'static, Result<FallbackResult, AllProvidersFailed>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_admission(self, cx)
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        let chain = self.clone();
        Box::pin(async move { chain.generate_request(&request).await })
    }
}

/// A chain as a service that streams: `Service<ChatRequest, Response = FallbackStream>`, with
/// the same readiness as the chain. (A separate type, so that calling `ready()` on the chain
/// itself needs no type annotation.)
#[derive(Debug, Clone)]
pub struct StreamingChain(pub FallbackChain);

impl From<FallbackChain> for StreamingChain {
    fn from(chain: FallbackChain) -> Self {
        StreamingChain(chain)
    }
}

impl Service<ChatRequest> for StreamingChain {
    type Response = FallbackStream;
    type Error = AllProvidersFailed;
    type Future = BoxFuture<'static, Result<FallbackStream, AllProvidersFailed>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_admission(&self.0, cx)
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        let chain = self.0.clone();
        Box::pin(async move { chain.stream_request(&request).await })
    }
}
