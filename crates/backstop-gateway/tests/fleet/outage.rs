//! Redis is never what takes the gateway down: killed mid-run, down at start-up, back later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backstop::BreakerState;
use backstop_gateway::state::breakers::{PROBE_GRACE, REREAD};
use backstop_sim::Fault;

use crate::redis_server::{RedisServer, free_port};
use crate::support::{CLIENT_KEY, Spec, TestGateway, chat_body, wait_until};
use crate::{SHARED_WITHIN, ask, replicas, wait_backend};

fn spec(url: String, extra: &str) -> Spec {
    Spec {
        failure_threshold: 2,
        recovery: "30s",
        redis_url: Some(url),
        server_extra: extra.to_owned(),
        auth: !extra.is_empty(),
        ..Spec::default()
    }
}

/// A's primary fails until A's breaker for `openai` opens.
async fn open_on_a(a: &TestGateway) {
    a.sim("openai").set_random(Fault::Status(500), 1.0);
    for _ in 0..10 {
        assert_eq!(ask(a).await, 200);
        if a.app.breaker("openai").unwrap().state() == BreakerState::Open {
            break;
        }
    }
    assert_eq!(a.app.breaker("openai").unwrap().state(), BreakerState::Open);
}

/// A opens its breaker for `openai`; B must follow within [`SHARED_WITHIN`].
async fn opening_is_shared(a: &TestGateway, b: &TestGateway) {
    open_on_a(a).await;
    wait_until(SHARED_WITHIN, "replica B honouring A's opening", || async {
        b.app.breaker("openai").unwrap().state() == BreakerState::Open
    })
    .await;
}

/// Requests through both replicas until `stop`; every status seen.
fn traffic(
    a: &Arc<TestGateway>,
    b: &Arc<TestGateway>,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<u16>> {
    let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            seen.push(ask(&a).await);
            seen.push(ask(&b).await);
        }
        seen
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_no_request_and_sharing_resumes_when_it_is_back() {
    let mut redis = RedisServer::start().await;
    let (a, b) = replicas(spec(redis.url(), "")).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    wait_backend(&a, &b, true).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(&a, &b, &stop);
    redis.kill();
    wait_backend(&a, &b, false).await;
    redis.restart().await;
    wait_backend(&a, &b, true).await;
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    assert!(
        seen.len() >= 4,
        "too little traffic to mean anything: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| *s == 200),
        "requests failed while Redis was away: {seen:?}"
    );
    opening_is_shared(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_while_redis_is_down_serves_then_joins_when_it_appears() {
    let port = free_port();
    let (a, b) = replicas(spec(format!("redis://127.0.0.1:{port}"), "")).await;
    for _ in 0..3 {
        assert_eq!(ask(&a).await, 200);
        assert_eq!(ask(&b).await, 200);
    }
    wait_backend(&a, &b, false).await;
    let _redis = RedisServer::start_on(port).await;
    wait_backend(&a, &b, true).await;
    opening_is_shared(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_decided_while_redis_is_down_reaches_the_others_once_it_is_back() {
    let mut redis = RedisServer::start().await;
    let (a, b) = replicas(spec(redis.url(), "")).await;
    wait_backend(&a, &b, true).await;
    redis.kill();
    wait_backend(&a, &b, false).await;
    open_on_a(&a).await;
    // Nothing carries the opening while Redis is away: B still sends its own traffic.
    tokio::time::sleep(REREAD * 2).await;
    assert_eq!(
        b.app.breaker("openai").unwrap().state(),
        BreakerState::Closed
    );
    redis.restart().await;
    wait_backend(&a, &b, true).await;
    // A sends it on its first re-read that reaches Redis; B applies the message.
    wait_until(
        REREAD + SHARED_WITHIN,
        "replica B honouring the opening A decided while Redis was down",
        || async { b.app.breaker("openai").unwrap().state() == BreakerState::Open },
    )
    .await;
    let open_for = b.app.breaker("openai").unwrap().time_to_admit();
    assert!(
        open_for > Duration::from_secs(20) && open_for <= Duration::from_secs(30) + PROBE_GRACE,
        "B holds the opening for what is left of A's 30 s and the grace, not anew: {open_for:?}"
    );
}

async fn limited_count(g: &TestGateway, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let r = g
            .client
            .post(g.at("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat_body("default", "hello"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {}
            s => panic!("unexpected status {s}"),
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_limits_fall_back_to_each_process_while_redis_is_down_and_are_shared_again_after() {
    const N: usize = 3;
    let mut redis = RedisServer::start().await;
    let (a, b) = replicas(spec(
        redis.url(),
        &format!("key_limits = {{ requests_per_minute = {N} }}\n"),
    ))
    .await;
    wait_backend(&a, &b, true).await;
    redis.kill();
    wait_backend(&a, &b, false).await;
    assert_eq!(limited_count(&a, 2 * N).await, N, "A alone: its own limit");
    assert_eq!(limited_count(&b, 2 * N).await, N, "B alone: its own limit");
    redis.restart().await;
    wait_backend(&a, &b, true).await;
    let mut ok = 0;
    for i in 0..2 * N {
        ok += limited_count(if i % 2 == 0 { &a } else { &b }, 1).await;
    }
    assert_eq!(
        ok, N,
        "shared again once Redis is back (it restarted empty)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_error_deny_refuses_limited_requests_while_redis_is_unreachable() {
    let port = free_port();
    let spec = Spec {
        state_extra: "on_redis_error = \"deny\"\n".to_owned(),
        ..spec(
            format!("redis://127.0.0.1:{port}"),
            "key_limits = { requests_per_minute = 100 }\n",
        )
    };
    let a = TestGateway::start_with(spec).await;
    let r = a
        .client
        .post(a.at("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat_body("default", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "state_backend_unavailable", "{body}");
    let _redis = RedisServer::start_on(port).await;
    wait_until(
        Duration::from_secs(10),
        "admitted once Redis is reachable",
        || async {
            let r = a
                .client
                .post(a.at("/v1/chat/completions"))
                .bearer_auth(CLIENT_KEY)
                .json(&chat_body("default", "hello"))
                .send()
                .await
                .unwrap();
            r.status() == 200
        },
    )
    .await;
}
