//! `FallbackChain` as a tower `Service`, with a `poll_ready` that waits out open breakers.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

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
    let Ok(runtime) = Handle::try_current() else {
        // No timer to wake the caller with: let the call refuse itself, at once.
        return Poll::Ready(Ok(()));
    };
    let wait = chain.next_recovery_in().unwrap_or(PROBE_RECHECK);
    wake_at(&runtime, Instant::now() + wait, cx.waker());
    Poll::Pending
}

/// Wakers waiting for a moment, by runtime and millisecond. Every poll that finds a chain not
/// ready until the same breaker recovers lands in the same slot, so an outage under load
/// (say `LoadShed` polling per request) costs one timer task per moment, not one per poll.
type Slot = (tokio::runtime::Id, u128);
static WAKEUPS: LazyLock<Mutex<HashMap<Slot, Vec<Waker>>>> = LazyLock::new(Default::default);

/// Where the millisecond slots are counted from.
static EPOCH: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);

/// Wakes `waker` at `at` (rounded up to the millisecond, the timer's resolution anyway).
fn wake_at(runtime: &Handle, at: Instant, waker: &Waker) {
    let Some(since) = at.into_std().checked_duration_since(*EPOCH) else {
        // Before the epoch (only with a paused clock): no slot to share, a timer of its own.
        let waker = waker.clone();
        runtime.spawn(async move {
            tokio::time::sleep_until(at).await;
            waker.wake();
        });
        return;
    };
    let ms = since.as_nanos().div_ceil(1_000_000);
    let slot = (runtime.id(), ms);
    let mut wakeups = WAKEUPS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(wakers) = wakeups.get_mut(&slot) {
        // The same task polling again (a `Buffer` worker) need not be stored twice.
        if !wakers.last().is_some_and(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        return;
    }
    wakeups.insert(slot, vec![waker.clone()]);
    drop(wakeups);
    let deadline = Instant::from_std(*EPOCH + Duration::from_nanos(saturating_u64(ms * 1_000_000)));
    runtime.spawn(async move {
        tokio::time::sleep_until(deadline).await;
        let wakers = WAKEUPS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&slot)
            .unwrap_or_default();
        for waker in wakers {
            waker.wake();
        }
    });
}

fn saturating_u64(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// How many timer slots are pending (for the tests).
#[cfg(test)]
fn pending_slots() -> usize {
    WAKEUPS.lock().unwrap_or_else(PoisonError::into_inner).len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CircuitBreaker;
    use crate::testing::ScriptedProvider;

    #[tokio::test(start_paused = true)]
    async fn many_polls_while_a_breaker_is_open_share_one_timer() {
        let breaker = CircuitBreaker::new("a").recovery_timeout(Duration::from_secs(30));
        let chain = FallbackChain::builder()
            .provider(ScriptedProvider::new("a"), breaker.clone())
            .build()
            .unwrap();
        breaker.trip();
        let before = pending_slots();
        let mut polls = Vec::new();
        for _ in 0..100 {
            let mut service = chain.clone();
            polls.push(tokio::spawn(async move {
                std::future::poll_fn(|cx| Service::<ChatRequest>::poll_ready(&mut service, cx))
                    .await
            }));
        }
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pending_slots(), before + 1, "100 pending polls, one slot");
        let tasks = Handle::current().metrics().num_alive_tasks();
        assert_eq!(tasks, 100 + 1, "the 100 polling tasks and one timer task");
        for p in polls {
            p.await.unwrap().unwrap();
        }
        assert_eq!(pending_slots(), before);
    }
}
