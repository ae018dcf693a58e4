//! Two gateway replicas sharing a real Redis (started, killed and restarted by the tests), in
//! front of the same simulators: shared openings and holds, fleet-bounded probes, key limits
//! across replicas, and Redis outages that fail no request.
//!
//! Opt-in (needs `redis-server` on PATH):
//! `cargo test -p backstop-gateway --features redis-tests --test fleet`.

// Test code: panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

#[path = "../binary/mod.rs"]
mod binary;

mod breakers;
mod limits;
mod outage;
mod redis_server;
mod tls;

use std::time::Duration;

use support::{Spec, TestGateway, chat_body, metric};

/// The promise: every replica honours a published opening within this.
pub const SHARED_WITHIN: Duration = Duration::from_secs(1);

/// Replica A (with its simulators) and replica B in front of the same simulators.
pub async fn replicas(spec: Spec) -> (TestGateway, TestGateway) {
    let a = TestGateway::start_with(spec.clone()).await;
    let b = TestGateway::start_sharing(spec, a.sims.clone()).await;
    (a, b)
}

/// `backstop_state_backend_up` of a replica.
pub async fn backend_up(g: &TestGateway) -> f64 {
    metric(&g.metrics().await, "backstop_state_backend_up")
}

/// Waits until both replicas have reached Redis (or both have lost it).
pub async fn wait_backend(a: &TestGateway, b: &TestGateway, up: bool) {
    let want = if up { 1.0 } else { 0.0 };
    for g in [a, b] {
        support::wait_until(
            Duration::from_secs(10),
            "the state backend gauge",
            || async { backend_up(g).await == want },
        )
        .await;
    }
}

/// A chat request through `g`'s `default` chain; the response's status.
pub async fn ask(g: &TestGateway) -> u16 {
    g.chat(&chat_body("default", "hello"))
        .await
        .status()
        .as_u16()
}
