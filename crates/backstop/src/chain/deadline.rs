//! The absolute deadline a chain passes to nested chains, so the provider running when time
//! runs out is charged however deep it sits.
//!
//! A chain runs every attempt inside a task-local scope holding the attempt's absolute end
//! (the earlier of the request deadline and the attempt timeout). A chain nested as a provider
//! reads it and never runs past it, so its own timer fires on the provider it is calling at the
//! same instant as the outer one, and that provider's breaker records the timeout.

use std::future::Future;

use tokio::time::Instant;

tokio::task_local! {
    static OUTER_DEADLINE: Instant;
}

/// The deadline of the chain this one runs inside, if any.
pub(super) fn inherited() -> Option<Instant> {
    OUTER_DEADLINE.try_with(|d| *d).ok()
}

/// Runs `fut` with `deadline` visible to nested chains.
pub(super) async fn scope<F: Future>(deadline: Option<Instant>, fut: F) -> F::Output {
    match deadline {
        Some(d) => OUTER_DEADLINE.scope(d, fut).await,
        None => fut.await,
    }
}

/// The earlier of two optional instants.
pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
