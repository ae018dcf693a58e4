//! Openings and holds decided by one replica reach the other; probes stay fleet-bounded.

use std::time::Duration;

use backstop::BreakerState;
use backstop_sim::Fault;

use crate::redis_server::RedisServer;
use crate::support::{Spec, TestGateway, chat_body, header, metric, wait_until};
use crate::{SHARED_WITHIN, ask, replicas, wait_backend};

fn spec(redis: &RedisServer, recovery: &'static str) -> Spec {
    Spec {
        failure_threshold: 2,
        recovery,
        redis_url: Some(redis.url()),
        ..Spec::default()
    }
}

/// Sends requests through `g` until its breaker for `openai` is open.
async fn open_on(g: &TestGateway) {
    for _ in 0..10 {
        assert_eq!(
            ask(g).await,
            200,
            "the backup answers while the primary fails"
        );
        if g.app.breaker("openai").unwrap().state() == BreakerState::Open {
            return;
        }
    }
    panic!("the breaker never opened");
}

/// Asserts `b` is open for `openai` within [`SHARED_WITHIN`] and then sends it nothing.
async fn b_follows(a: &TestGateway, b: &TestGateway) {
    wait_until(SHARED_WITHIN, "replica B honouring A's opening", || async {
        b.app.breaker("openai").unwrap().state() == BreakerState::Open
    })
    .await;
    let primary = a.sim("openai");
    let before = primary.request_count();
    for _ in 0..5 {
        let r = b.chat(&chat_body("default", "hello")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-backstop-provider"), Some("anthropic"));
    }
    assert_eq!(
        primary.request_count(),
        before,
        "replica B sent requests to a primary replica A had found down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_on_one_replica_stops_the_others_traffic_within_a_second() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(spec(&redis, "30s")).await;
    wait_backend(&a, &b, true).await;
    a.sim("openai").set_random(Fault::Status(500), 1.0);
    open_on(&a).await;
    b_follows(&a, &b).await;
    assert_eq!(
        a.app.breaker("openai").unwrap().state(),
        BreakerState::Open,
        "A's own opening is not changed by its echo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_hold_on_one_replica_moves_the_others_traffic() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(spec(&redis, "30s")).await;
    wait_backend(&a, &b, true).await;
    let primary = a.sim("openai");
    primary.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(30),
            retry_after_ms: None,
            retry_after_http_date: false,
        },
    );
    assert_eq!(ask(&a).await, 200, "a 429 falls through to the backup");
    wait_until(SHARED_WITHIN, "replica B honouring A's hold", || async {
        b.app.breaker("openai").unwrap().hold().is_held()
    })
    .await;
    let before = primary.request_count();
    for _ in 0..5 {
        let r = b.chat(&chat_body("default", "hello")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-backstop-provider"), Some("anthropic"));
    }
    assert_eq!(
        primary.request_count(),
        before,
        "B called a provider A was told to leave alone"
    );
    assert_eq!(
        b.app.breaker("openai").unwrap().state(),
        BreakerState::Closed,
        "a hold is not an opening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_sends_one_replicas_probes_not_one_set_per_replica() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(spec(&redis, "1s")).await;
    wait_backend(&a, &b, true).await;
    let primary = a.sim("openai");
    primary.set_random(Fault::Status(500), 1.0);
    open_on(&a).await;
    wait_until(SHARED_WITHIN, "replica B honouring A's opening", || async {
        b.app.breaker("openai").unwrap().state() == BreakerState::Open
    })
    .await;
    let before = primary.request_count();
    let a_breaker = a.app.breaker("openai").unwrap().clone();
    // Traffic through B alone until the opening's period is over (A reads half-open): B's
    // copy of the opening ends with it, but B leaves the probe to A, the owner.
    wait_until(
        Duration::from_secs(10),
        "the opening's period passing",
        || async {
            assert_eq!(ask(&b).await, 200);
            a_breaker.state() == BreakerState::HalfOpen
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(ask(&b).await, 200);
    }
    assert_eq!(
        primary.request_count(),
        before,
        "B probed a provider whose opening A owns"
    );
    // Both replicas now, until A has probed twice and failed twice (recovery 1 s, then 2 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while a_breaker.snapshot().reopens < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never probed twice"
        );
        assert_eq!(ask(&b).await, 200);
        assert_eq!(ask(&a).await, 200);
    }
    let probes = primary.request_count() - before;
    assert_eq!(
        probes,
        u64::from(a_breaker.snapshot().reopens),
        "every call to the primary was one of A's probes (half_open_probes = 1)"
    );
    let b_metrics = b.metrics().await;
    assert_eq!(
        metric(
            &b_metrics,
            "backstop_breaker_transitions_total{provider=\"openai\",to=\"half_open\"}"
        ),
        0.0,
        "B never went half-open while A owned the opening:\n{b_metrics}"
    );
    // The primary recovers: A's probe closes it, and the close reaches B.
    primary.clear_faults();
    wait_until(
        Duration::from_secs(10),
        "A's probe closing the breaker",
        || async {
            ask(&a).await;
            a_breaker.state() == BreakerState::Closed
        },
    )
    .await;
    wait_until(
        SHARED_WITHIN,
        "B closing on A's successful probe",
        || async { b.app.breaker("openai").unwrap().state() == BreakerState::Closed },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_opening_one_provider_at_once_leave_the_probes_to_one_owner() {
    let mut redis = RedisServer::start().await;
    // 8 s: the openings must outlast the restart and be sent again while still open.
    let (a, b) = replicas(spec(&redis, "8s")).await;
    wait_backend(&a, &b, true).await;
    redis.kill();
    wait_backend(&a, &b, false).await;
    // With Redis away, each replica opens on its own calls and neither can hear the other:
    // two openings of one provider, both sent when Redis is back, racing for its key.
    let primary = a.sim("openai");
    primary.set_random(Fault::Status(500), 1.0);
    open_on(&a).await;
    open_on(&b).await;
    redis.restart().await;
    wait_backend(&a, &b, true).await;
    // Both send their opening again; Redis keeps the first, and its owner's message makes the
    // other replica wait the grace beyond it.
    let before = primary.request_count();
    let (a_breaker, b_breaker) = (
        a.app.breaker("openai").unwrap().clone(),
        b.app.breaker("openai").unwrap().clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while a_breaker.snapshot().reopens + b_breaker.snapshot().reopens < 1 {
        assert!(tokio::time::Instant::now() < deadline, "no replica probed");
        assert_eq!(ask(&a).await, 200);
        assert_eq!(ask(&b).await, 200);
    }
    // The other replica's own opening ended with the owner's; it must not probe now either.
    let after = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < after {
        assert_eq!(ask(&a).await, 200);
        assert_eq!(ask(&b).await, 200);
    }
    let half_open = |metrics: &str| {
        metric(
            metrics,
            "backstop_breaker_transitions_total{provider=\"openai\",to=\"half_open\"}",
        )
    };
    let (a_metrics, b_metrics) = (a.metrics().await, b.metrics().await);
    let (a_probed, b_probed) = (half_open(&a_metrics) > 0.0, half_open(&b_metrics) > 0.0);
    assert!(
        a_probed != b_probed,
        "exactly one replica owns the opening and probes (A probed: {a_probed}, B probed: \
         {b_probed})"
    );
    let owner = if a_probed { &a_breaker } else { &b_breaker };
    assert_eq!(
        primary.request_count() - before,
        u64::from(owner.snapshot().reopens),
        "every call to the primary after the restart was one of the owner's probes"
    );
}
